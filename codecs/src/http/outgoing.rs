//! The request an HTTP cluster's endpoint gets (built once per request by
//! the hyper engine, copied for retries and the mirror): the route's
//! rewrites, an allowed upgrade, the forwarding headers, the request
//! mutation, hop-by-hop headers removed; and the mirror's copy of it.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;
use http::header::{self, HeaderValue};
use http::uri::{self, Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Uri, Version};
use http_body_util::BodyExt;
use metaproxy_core::cluster::{Cluster, Endpoint};
use metaproxy_core::filter::RequestContext;
use metaproxy_core::metadata::MetadataView;
use metaproxy_core::pipeline::MirrorCopy;
use metaproxy_core::router::Route;
use metaproxy_core::{ErrorKind, Origin, ProxyError};
use tracing::warn;

use super::cluster::{pool_of, settings_of};
use super::headers::{add_forwarded, apply_mutation, strip_hop_by_hop};
use super::metadata as md;
use super::request::ConnInfo;
use super::upgrade;
use super::upstream::UpstreamBody;
use super::{HttpClusterSettings, UpstreamVersion};

fn error(kind: ErrorKind, origin: Origin, message: String) -> ProxyError {
    ProxyError::new(kind, origin, message)
}

/// The upstream request, ready to send but for the endpoint.
pub(crate) struct Outgoing {
    /// Method, path, authority, the client's version.
    pub head: Head,
    /// The headers (the first try takes them; retries and the mirror copy).
    pub headers: HeaderMap,
    /// The upgrade the route relays, when the client asked for one.
    pub upgrade: Option<upgrade::Requested>,
}

/// Builds the upstream request from the client's `parts` on `route` (to
/// a cluster of `settings`); an upgrade the route does not relay is
/// refused (403).
pub(crate) fn outgoing(
    mut parts: http::request::Parts,
    route: &Route,
    rc: &RequestContext,
    conn: &ConnInfo,
    settings: &HttpClusterSettings,
) -> Result<Outgoing, ProxyError> {
    let path_and_query = rc.lookup(md::PATH).unwrap_or("/");
    // The upstream request: rewrites, forwarding headers, mutation, hop-by-hop.
    // The client's path and authority are reused as they are (no copy)
    // unless something changes them.
    let mut new_path: Option<String> = None;
    let mut new_authority = rc
        .metadata
        .value(md::AUTHORITY)
        .cloned()
        .unwrap_or_default();
    if let Some(rw) = &route.rewrite {
        if let Some(p) = &rw.path {
            new_path = Some(p.apply(path_and_query));
        }
        if let Some(h) = &rw.host {
            new_authority = h.as_str().into();
        }
    }
    if new_path.is_none() && parts.uri.path_and_query().map(|p| p.as_str()) != Some(path_and_query)
    {
        new_path = Some(path_and_query.to_string());
    }
    // A WebSocket handshake on a route that relays it (never to an
    // HTTP/2 upstream, which would need extended CONNECT); an upgrade the
    // route does not relay is refused, as Envoy does.
    let upgrade = match upgrade::asked(&mut parts, route) {
        upgrade::Asked::Nothing => None,
        upgrade::Asked::Relayed(u) => {
            Some(u).filter(|_| settings.version != UpstreamVersion::Http2)
        }
        upgrade::Asked::Refused(protocol) => {
            return Err(error(
                ErrorKind::PermissionDenied,
                Origin::Downstream,
                format!(
                    "upgrade to `{protocol}` is not allowed on route `{}`",
                    route.name
                ),
            ));
        }
    };
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    if let Some(u) = &upgrade {
        u.carry(headers);
    }
    add_forwarded_ip(headers, &conn.client_ip, conn.scheme);
    if !rc.request_mutation.is_empty() {
        let (pseudo, problems) = apply_mutation(headers, &rc.request_mutation);
        for p in problems {
            warn!(route = %route.name, "request mutation: {p}");
        }
        if let Some(p) = pseudo.path {
            new_path = Some(p);
        }
        if let Some(a) = pseudo.authority {
            new_authority = a.into();
        }
    }
    let path = match new_path {
        Some(p) => PathAndQuery::try_from(p.as_str()).map_err(|e| {
            error(
                ErrorKind::BadRequest,
                Origin::Downstream,
                format!("bad path `{p}`: {e}"),
            )
        })?,
        None => parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    };
    let head = Head {
        method: parts.method,
        path,
        authority: new_authority,
        client_version: parts.version,
    };
    let headers = parts.headers;
    Ok(Outgoing {
        head,
        headers,
        upgrade,
    })
}

/// The upstream request head, before the endpoint (and so the authority
/// fallback) and the upstream HTTP version are known.
pub(crate) struct Head {
    method: Method,
    path: PathAndQuery,
    /// Empty when the client sent none: the endpoint's address is used.
    authority: ByteString,
    /// The client's HTTP version (`protocol: http` clusters follow it).
    client_version: Version,
}

impl Head {
    /// The upstream version for a cluster of `settings`.
    pub(crate) fn version(&self, settings: &HttpClusterSettings) -> Version {
        match settings.version {
            UpstreamVersion::Http1 => Version::HTTP_11,
            UpstreamVersion::Http2 => Version::HTTP_2,
            UpstreamVersion::Downstream if self.client_version == Version::HTTP_2 => {
                Version::HTTP_2
            }
            UpstreamVersion::Downstream => Version::HTTP_11,
        }
    }

    /// Whether the request is a `HEAD` (its answer has no body).
    pub(crate) fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }

    /// The HTTP/1.1 request head for `endpoint`, written as bytes for the
    /// lean path's connections (`host`: the authority, else the endpoint's
    /// address; `body_len`: the whole body's length).
    pub(crate) fn h1_request(
        &self,
        headers: &HeaderMap,
        endpoint: SocketAddr,
        body_len: usize,
    ) -> Result<Bytes, ProxyError> {
        let fallback;
        let host: &[u8] = if self.authority.is_empty() {
            fallback = endpoint.to_string();
            fallback.as_bytes()
        } else {
            self.authority.as_bytes()
        };
        // What a `Host` value may not hold (as `HeaderValue` checks).
        if host
            .iter()
            .any(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f)
        {
            return Err(error(
                ErrorKind::BadRequest,
                Origin::Downstream,
                format!("bad host `{}`", String::from_utf8_lossy(host)),
            ));
        }
        Ok(super::h1::request_head_of(
            self.method.as_str().as_bytes(),
            self.path.as_str().as_bytes(),
            host,
            headers,
            body_len,
        ))
    }

    /// The request for `endpoint` over `version`.
    pub(crate) fn request(
        &self,
        mut headers: HeaderMap,
        version: Version,
        endpoint: SocketAddr,
        body: UpstreamBody,
    ) -> Result<Request<UpstreamBody>, ProxyError> {
        let authority = if self.authority.is_empty() {
            Bytes::from(endpoint.to_string())
        } else {
            self.authority.as_bytes().clone()
        };
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            let text = String::from_utf8_lossy(&authority);
            error(
                ErrorKind::BadRequest,
                Origin::Downstream,
                format!("bad {what} `{text}`: {e}"),
            )
        };
        let uri = if version == Version::HTTP_2 {
            headers.remove(header::HOST);
            let mut uri = uri::Parts::default();
            uri.scheme = Some(Scheme::HTTP);
            uri.authority = Some(
                Authority::from_maybe_shared(authority.clone())
                    .map_err(|e| bad("authority", &e))?,
            );
            uri.path_and_query = Some(self.path.clone());
            Uri::from_parts(uri).map_err(|e| bad("authority", &e))?
        } else {
            if headers.get(header::HOST).map(HeaderValue::as_bytes) != Some(&authority[..]) {
                let host = HeaderValue::from_maybe_shared(authority.clone())
                    .map_err(|e| bad("host", &e))?;
                headers.insert(header::HOST, host);
            }
            Uri::from(self.path.clone())
        };
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = version;
        *req.headers_mut() = headers;
        Ok(req)
    }
}

/// Appends the client's address to `x-forwarded-for` (its value prepared
/// once per connection) and sets `x-forwarded-proto` when absent.
fn add_forwarded_ip(headers: &mut HeaderMap, client_ip: &HeaderValue, scheme: &'static str) {
    if headers.contains_key(&super::headers::FORWARDED_FOR) {
        if let Ok(ip) = client_ip.to_str() {
            add_forwarded(headers, ip, scheme);
        }
        return;
    }
    headers.insert(super::headers::FORWARDED_FOR, client_ip.clone());
    if !headers.contains_key(&super::headers::FORWARDED_PROTO) {
        headers.insert(
            super::headers::FORWARDED_PROTO,
            HeaderValue::from_static(scheme),
        );
    }
}

/// A mirror copy of a request (`body`: none, or the kept request body),
/// sent by core's mirror step; its answer is read and dropped (so an
/// HTTP/1.1 connection can be reused).
pub(crate) struct HyperCopy {
    head: Head,
    headers: HeaderMap,
    body: UpstreamBody,
}

impl HyperCopy {
    pub(crate) fn new(head: &Head, headers: HeaderMap, body: UpstreamBody) -> HyperCopy {
        let head = Head {
            method: head.method.clone(),
            path: head.path.clone(),
            authority: head.authority.clone(),
            client_version: head.client_version,
        };
        HyperCopy {
            head,
            headers,
            body,
        }
    }
}

impl MirrorCopy for HyperCopy {
    async fn send(self, cluster: Arc<Cluster>, endpoint: Arc<Endpoint>) -> Result<(), ProxyError> {
        let settings = settings_of(&cluster)?;
        let version = self.head.version(&settings);
        let conns = pool_of(&endpoint, &cluster)?.for_version(version);
        let req = self
            .head
            .request(self.headers, version, endpoint.address, self.body)?;
        let (resp, conn) = conns.send(req).await?;
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                return Ok(());
            }
        }
        if let Some(conn) = conn {
            conn.release();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(authority: &str) -> Head {
        Head {
            method: Method::GET,
            path: PathAndQuery::from_static("/a?b=1"),
            authority: authority.into(),
            client_version: Version::HTTP_11,
        }
    }

    /// The request for `authority` over `version`, the client's `Host`
    /// header being `host`.
    fn request(
        authority: &str,
        host: Option<&'static str>,
        version: Version,
    ) -> Result<Request<UpstreamBody>, ProxyError> {
        let mut headers = HeaderMap::new();
        if let Some(h) = host {
            headers.insert(header::HOST, HeaderValue::from_static(h));
        }
        let endpoint = "10.0.0.7:8080".parse().unwrap();
        head(authority).request(headers, version, endpoint, UpstreamBody::Empty)
    }

    #[test]
    fn an_http2_request_carries_the_authority_in_its_uri_and_no_host() {
        let req = request("shop.example", Some("shop.example"), Version::HTTP_2).unwrap();
        assert_eq!(req.uri(), "http://shop.example/a?b=1");
        assert!(req.headers().get(header::HOST).is_none());
        // No authority from the client: the endpoint's address.
        let req = request("", None, Version::HTTP_2).unwrap();
        assert_eq!(req.uri(), "http://10.0.0.7:8080/a?b=1");
    }

    #[test]
    fn an_http1_request_gets_the_authority_as_its_host() {
        let req = request("new.example:81", Some("old.example"), Version::HTTP_11).unwrap();
        assert_eq!(req.uri(), "/a?b=1");
        assert_eq!(req.headers()[header::HOST], "new.example:81");
    }

    #[test]
    fn an_authority_that_cannot_be_sent_is_a_bad_request() {
        // A control character: neither a `Host` value nor an authority.
        for version in [Version::HTTP_11, Version::HTTP_2] {
            let e = request("a\u{1}b.example", None, version).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadRequest, "{version:?}: {e}");
            assert!(e.message.contains("b.example"), "{e}");
        }
        // Non-ASCII: not an authority (a `Host` may carry it, as before).
        let e = request("caf\u{e9}.example", None, Version::HTTP_2).unwrap_err();
        assert!(e.message.contains("bad authority `café.example`"), "{e}");
    }
}
