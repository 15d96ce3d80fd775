//! One HTTP request's life, mirroring the framed-RPC engine: route → filter
//! chain → (re-route) → target → endpoint → pool → timeout → response
//! filters; local replies on any failure.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use metaproxy_core::cluster::hash_policy;
use metaproxy_core::filter::{FilterAction, RequestContext, ResponseContext};
use metaproxy_core::metadata::{Metadata, MetadataView, keys};
use metaproxy_core::router::RouteAction;
use metaproxy_core::snapshot::ListenerRuntime;
use metaproxy_core::{ErrorKind, ErrorSource, MessageKind, ProxyError};
use tracing::{debug, warn};

use super::body::ProxyBody;
use super::headers::{add_forwarded, apply_mutation, ensure_request_id, strip_hop_by_hop};
use super::metadata::{self as md, is_grpc, request_metadata};
use super::reply::{local_reply, redirect_location, redirect_reply, text_reply};
use super::upstream::HttpPool;
use super::{HttpClusterSettings, UpstreamVersion};

/// What every request of a connection shares.
pub(crate) struct ConnInfo {
    /// `source.ip`, `source.port`, `destination.port`.
    pub connection: Arc<Metadata>,
    /// The client's IP as text.
    pub client_ip: String,
    /// `http` (TLS comes later).
    pub scheme: &'static str,
    /// The listener's idle timeout (bounds streamed bodies' silences).
    pub idle_timeout: Duration,
}

/// Answers one request: never fails (errors become local replies).
pub(crate) async fn handle(
    listener: Arc<ListenerRuntime>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let grpc = is_grpc(req.headers());
    let (mut parts, body) = req.into_parts();
    if parts.headers.len() > listener.limits.max_headers {
        return text_reply(
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HeaderValue::from_static("too_many_headers"),
            format!(
                "metaproxy: too many headers: {} > {}\n",
                parts.headers.len(),
                listener.limits.max_headers
            ),
        );
    }
    ensure_request_id(&mut parts.headers);
    let metadata = request_metadata(&parts, conn.scheme);
    let mut rc = RequestContext::new(
        super::HTTP,
        MessageKind::Request,
        metadata,
        conn.connection.clone(),
    );
    match forward(&listener, &conn, &mut rc, parts, body).await {
        Ok(resp) => resp,
        Err(err) => {
            debug!(
                listener = %listener.name,
                authority = rc.lookup(md::AUTHORITY).unwrap_or(""),
                path = rc.lookup(md::PATH).unwrap_or(""),
                error = %err,
                "local reply"
            );
            local_reply(&err, grpc)
        }
    }
}

async fn forward(
    listener: &ListenerRuntime,
    conn: &ConnInfo,
    rc: &mut RequestContext,
    mut parts: http::request::Parts,
    body: Incoming,
) -> Result<Response<ProxyBody>, ProxyError> {
    let mut route = listener.routes.find(&*rc);
    let chain = route
        .and_then(|r| r.filters.as_ref())
        .unwrap_or(&listener.filters);
    if !chain.is_empty() {
        if let FilterAction::Reply(e) = chain.on_request(rc).await {
            return Err(e);
        }
        if rc.reroute {
            route = listener.routes.find(&*rc);
        }
    }
    let route = route.ok_or_else(|| {
        ProxyError::new(
            ErrorKind::RouteNotFound,
            ErrorSource::Internal,
            format!(
                "no route for {} {}{} on listener `{}`",
                rc.lookup(md::METHOD).unwrap_or("?"),
                rc.lookup(md::AUTHORITY).unwrap_or(""),
                rc.lookup(md::PATH).unwrap_or("?"),
                listener.name
            ),
        )
    })?;
    rc.route = Some(route.name.clone());
    rc.request_mutation.extend(&route.request_mutation);
    rc.response_mutation.extend(&route.response_mutation);

    let path_and_query = rc.lookup(md::PATH).unwrap_or("/").to_string();
    let authority = rc.lookup(md::AUTHORITY).unwrap_or("").to_string();
    if let RouteAction::Redirect(r) = &route.action {
        let scheme = rc.lookup(md::SCHEME).unwrap_or(conn.scheme);
        let location = redirect_location(r, scheme, &authority, &path_and_query);
        return Ok(redirect_reply(r.code, &location));
    }
    let target = route.action.pick().ok_or_else(|| {
        ProxyError::new(
            ErrorKind::Internal,
            ErrorSource::Internal,
            format!("route `{}` has no target", route.name),
        )
    })?;
    let cluster = &target.cluster;
    let settings = cluster
        .codec
        .clone()
        .downcast::<HttpClusterSettings>()
        .map_err(|_| {
            ProxyError::new(
                ErrorKind::Internal,
                ErrorSource::Internal,
                format!("cluster `{}` is not an HTTP cluster", cluster.name),
            )
        })?;
    let decision = hash_policy::decide(&cluster.hash_policy, &*rc);
    let endpoint = cluster
        .pick(target.subset, decision.hash, &[])
        .ok_or_else(|| {
            let subset = &cluster.subsets[target.subset].name;
            ProxyError::new(
                ErrorKind::NoHealthyUpstream,
                ErrorSource::Internal,
                if subset.is_empty() {
                    format!("cluster `{}` has no endpoint", cluster.name)
                } else {
                    format!(
                        "subset `{subset}` of cluster `{}` has no endpoint",
                        cluster.name
                    )
                },
            )
        })?;
    let active = endpoint.start_request();
    let pool = endpoint
        .pool
        .get_or_init(|| {
            Arc::new(HttpPool::new(
                endpoint.address,
                cluster.pool.connect_timeout,
                cluster.pool.connections_per_endpoint,
            ))
        })
        .clone()
        .downcast::<HttpPool>()
        .map_err(|_| {
            ProxyError::new(
                ErrorKind::Internal,
                ErrorSource::Internal,
                format!(
                    "endpoint {} holds another protocol's pool",
                    endpoint.address
                ),
            )
        })?;

    // The upstream request: rewrites, forwarding headers, mutation, hop-by-hop.
    let mut new_path = path_and_query;
    let mut new_authority = authority;
    if let Some(rw) = &route.rewrite {
        if let Some(p) = &rw.path {
            new_path = p.apply(&new_path);
        }
        if let Some(h) = &rw.host {
            new_authority = h.clone();
        }
    }
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    add_forwarded(headers, &conn.client_ip, conn.scheme);
    let (pseudo, problems) = apply_mutation(headers, &rc.request_mutation);
    for p in problems {
        warn!(route = %route.name, "request mutation: {p}");
    }
    if let Some(p) = pseudo.path {
        new_path = p;
    }
    if let Some(a) = pseudo.authority {
        new_authority = a;
    }
    if new_authority.is_empty() {
        new_authority = endpoint.address.to_string();
    }
    let version = match settings.version {
        UpstreamVersion::Http1 => Version::HTTP_11,
        UpstreamVersion::Http2 => Version::HTTP_2,
        UpstreamVersion::Downstream if parts.version == Version::HTTP_2 => Version::HTTP_2,
        UpstreamVersion::Downstream => Version::HTTP_11,
    };
    let bad = |e: String| ProxyError::new(ErrorKind::BadRequest, ErrorSource::Downstream, e);
    let pq = PathAndQuery::try_from(new_path.as_str())
        .map_err(|e| bad(format!("bad path `{new_path}`: {e}")))?;
    parts.uri = if version == Version::HTTP_2 {
        headers.remove(header::HOST);
        Uri::builder()
            .scheme("http")
            .authority(new_authority.as_str())
            .path_and_query(pq)
            .build()
            .map_err(|e| bad(format!("bad authority `{new_authority}`: {e}")))?
    } else {
        let host = HeaderValue::from_str(&new_authority)
            .map_err(|e| bad(format!("bad host `{new_authority}`: {e}")))?;
        headers.insert(header::HOST, host);
        Uri::from(pq)
    };
    parts.version = version;
    let upstream_req = Request::from_parts(parts, body);

    let timeout = route.timeout;
    let exchange = async {
        if version == Version::HTTP_2 {
            pool.send_h2(upstream_req).await
        } else {
            pool.send_h1(upstream_req).await
        }
    };
    let response = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| {
            ProxyError::new(
                ErrorKind::Timeout,
                ErrorSource::Upstream,
                format!(
                    "no response headers from {} within {timeout:?}",
                    endpoint.address
                ),
            )
        })?
        .map_err(|e| e.into_proxy_error())?;

    let (mut rparts, rbody) = response.into_parts();
    if !chain.is_empty() {
        let mut metadata = Metadata::with_capacity(1 + rparts.headers.len());
        metadata.push(md::STATUS.into(), rparts.status.as_str().into());
        metadata.push(keys::PROTOCOL.into(), super::HTTP.into());
        for (name, value) in &rparts.headers {
            if let Ok(v) = std::str::from_utf8(value.as_bytes()) {
                metadata.push(name.as_str().into(), v.into());
            }
        }
        let view = ResponseContext {
            kind: MessageKind::Response,
            metadata,
        };
        if let FilterAction::Reply(e) = chain.on_response(rc, &view).await {
            return Err(e);
        }
    }
    strip_hop_by_hop(&mut rparts.headers);
    let (_, problems) = apply_mutation(&mut rparts.headers, &rc.response_mutation);
    for p in problems {
        warn!(route = %route.name, "response mutation: {p}");
    }
    if let Some(cookie) = decision.set_cookie
        && let Ok(v) = HeaderValue::from_str(&cookie)
    {
        rparts.headers.append(header::SET_COOKIE, v);
    }
    rparts.version = Version::HTTP_11;
    Ok(Response::from_parts(
        rparts,
        ProxyBody::stream(rbody, conn.idle_timeout, Some(active)),
    ))
}
