//! One HTTP request's life, mirroring the framed-RPC engine: route → filter
//! chain → (re-route) → target → circuit breaker → mirror → tries (endpoint
//! pick, pool, per-try timeout, outlier outcome, retries with backoff) under
//! the route timeout → response filters; local replies on any failure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use metaproxy_core::cluster::{Cluster, Endpoint};
use metaproxy_core::codec::ResponseClass;
use metaproxy_core::filter::{LocalResponse, RequestContext, ResponseContext};
use metaproxy_core::metadata::{Metadata, MetadataView, keys};
use metaproxy_core::pipeline::{
    Ending, Finished, Routed, finish, on_response, route_timeout, spawn_mirror,
};
use metaproxy_core::router::Target;
use metaproxy_core::snapshot::ListenerRuntime;
use metaproxy_core::{ErrorKind, ErrorSource, MessageKind, ProxyError};
use tracing::{debug, warn};

use super::body::{Held, ProxyBody};
use super::headers::{add_forwarded, apply_mutation, ensure_request_id_header, strip_hop_by_hop};
use super::metadata::{self as md, is_grpc, request_metadata};
use super::replay::Replayable;
use super::reply::{local_reply, redirect_reply, text_reply};
use super::route::Early;

use super::upstream::{HttpPool, UpstreamBody};
use super::{HttpClusterSettings, UpstreamVersion};

/// What every request of a connection shares.
pub(crate) struct ConnInfo {
    /// `source.ip`, `source.port`, `destination.port`.
    pub connection: Arc<Metadata>,
    /// The client's IP, ready for `x-forwarded-for`.
    pub client_ip: HeaderValue,
    /// `http` (TLS comes later).
    pub scheme: &'static str,
    /// The listener's idle timeout (bounds streamed bodies' silences and
    /// upgraded connections' quiet).
    pub idle_timeout: Duration,
    /// Cancelled when the proxy shuts down (ends upgraded connections).
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// Answers one request: never fails (errors become local replies).
pub(crate) async fn handle(
    listener: Arc<ListenerRuntime>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let grpc = is_grpc(req.headers());
    if matches!(req.version(), Version::HTTP_10 | Version::HTTP_11)
        && let Err(e) = super::h1::check_parsed_request(req.version(), req.headers())
    {
        debug!(listener = %listener.name, why = %e, "request framing refused");
        let mut resp = text_reply(
            StatusCode::BAD_REQUEST,
            HeaderValue::from_static("bad_request"),
            format!("metaproxy: {e}\n"),
        );
        // hyper closes the connection after an answer saying so.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
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
    ensure_request_id_header(&mut parts.headers);
    let metadata = request_metadata(&parts, conn.scheme);
    let mut rc = RequestContext::new(
        super::HTTP,
        MessageKind::Request,
        metadata,
        conn.connection.clone(),
    );
    let started = std::time::Instant::now();
    listener.metrics.requests_active.inc();
    let mut target = None;
    let result = forward(&listener, &conn, &mut rc, parts, body, &mut target).await;
    listener.metrics.requests_active.dec();
    let (ending, resp) = match result {
        Ok((resp, answered)) => {
            let ending = match answered {
                Answered::Filter => Ending::Filter,
                Answered::Redirect => Ending::Redirect,
                Answered::Upstream => Ending::Upstream {
                    error: resp.status().is_server_error(),
                },
            };
            (ending, resp)
        }
        Err(err) => {
            debug!(
                listener = %listener.name,
                authority = rc.lookup(md::AUTHORITY).unwrap_or(""),
                path = rc.lookup(md::PATH).unwrap_or(""),
                error = %err.chain(),
                "local reply"
            );
            (Ending::Failed(err.kind), local_reply(&err, grpc))
        }
    };
    finish(
        &listener,
        super::HTTP,
        &Finished {
            request: &rc,
            target,
            ending,
            status: Some(resp.status().as_str()),
            started,
        },
    );
    resp
}
fn error(kind: ErrorKind, origin: ErrorSource, message: String) -> ProxyError {
    ProxyError::new(kind, origin, message)
}

/// A filter's complete HTTP answer.
pub(crate) fn filter_reply(r: LocalResponse) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &r.headers {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

/// The upstream request head, before the endpoint (and so the authority
/// fallback) and the upstream HTTP version are known.
struct Head {
    method: Method,
    path: PathAndQuery,
    /// Empty when the client sent none: the endpoint's address is used.
    authority: String,
    /// The client's HTTP version (`protocol: http` clusters follow it).
    client_version: Version,
}

impl Head {
    /// The upstream version for a cluster of `settings`.
    fn version(&self, settings: &HttpClusterSettings) -> Version {
        match settings.version {
            UpstreamVersion::Http1 => Version::HTTP_11,
            UpstreamVersion::Http2 => Version::HTTP_2,
            UpstreamVersion::Downstream if self.client_version == Version::HTTP_2 => {
                Version::HTTP_2
            }
            UpstreamVersion::Downstream => Version::HTTP_11,
        }
    }

    /// The request for `endpoint` over `version`.
    fn request(
        &self,
        mut headers: HeaderMap,
        version: Version,
        endpoint: SocketAddr,
        body: UpstreamBody,
    ) -> Result<Request<UpstreamBody>, ProxyError> {
        let fallback;
        let authority = if self.authority.is_empty() {
            fallback = endpoint.to_string();
            fallback.as_str()
        } else {
            self.authority.as_str()
        };
        let bad = |e: String| error(ErrorKind::BadRequest, ErrorSource::Downstream, e);
        let uri = if version == Version::HTTP_2 {
            headers.remove(header::HOST);
            Uri::builder()
                .scheme("http")
                .authority(authority)
                .path_and_query(self.path.clone())
                .build()
                .map_err(|e| bad(format!("bad authority `{authority}`: {e}")))?
        } else {
            if headers.get(header::HOST).map(HeaderValue::as_bytes) != Some(authority.as_bytes()) {
                let host = HeaderValue::from_str(authority)
                    .map_err(|e| bad(format!("bad host `{authority}`: {e}")))?;
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

pub(crate) fn settings_of(cluster: &Cluster) -> Result<Arc<HttpClusterSettings>, ProxyError> {
    cluster
        .parts
        .codec
        .clone()
        .downcast::<HttpClusterSettings>()
        .map_err(|_| {
            error(
                ErrorKind::Internal,
                ErrorSource::Internal,
                format!("cluster `{}` is not an HTTP cluster", cluster.parts.name),
            )
        })
}

/// The endpoint's HTTP pools, made on first use with the cluster's settings.
pub(crate) fn pool_of<'a>(
    endpoint: &'a Endpoint,
    cluster: &Cluster,
) -> Result<&'a HttpPool, ProxyError> {
    endpoint.pool_of(|| Ok(HttpPool::new(endpoint.address, &cluster.parts.pool)))
}

/// How an answer counts for retries and outlier detection: 503 (and a gRPC
/// trailers-only UNAVAILABLE) is "unavailable", any other 5xx a server error.
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap) -> ResponseClass {
    class_of(
        status.as_u16(),
        headers.get("grpc-status").map(HeaderValue::as_bytes),
    )
}

/// [`classify`] from the status code and the `grpc-status` header's value.
pub(crate) fn class_of(status: u16, grpc_status: Option<&[u8]>) -> ResponseClass {
    match status {
        503 => ResponseClass::Unavailable,
        500..=599 => ResponseClass::ServerError,
        _ if grpc_status == Some(b"14") => ResponseClass::Unavailable,
        _ => ResponseClass::Success,
    }
}

/// Who produced an answer, for metrics and the access log (the same
/// labels as the lean path's).
#[derive(Debug, Clone, Copy)]
enum Answered {
    /// The upstream.
    Upstream,
    /// A filter's own response.
    Filter,
    /// A redirect route.
    Redirect,
}

/// An answer the proxy gives without the upstream's.
fn early_answer(early: Early) -> Result<(Response<ProxyBody>, Answered), ProxyError> {
    match early {
        Early::Error(e) => Err(e),
        Early::Respond(r) => Ok((filter_reply(r), Answered::Filter)),
        Early::Redirect(code, location) => {
            Ok((redirect_reply(code, &location), Answered::Redirect))
        }
    }
}

/// Routes and forwards; the answer comes with who produced it.
async fn forward<'a>(
    listener: &'a Arc<ListenerRuntime>,
    conn: &ConnInfo,
    rc: &mut RequestContext,
    mut parts: http::request::Parts,
    body: Incoming,
    target_out: &mut Option<&'a Target>,
) -> Result<(Response<ProxyBody>, Answered), ProxyError> {
    let Routed {
        route,
        chain,
        target,
        hash: decision,
    } = match super::route::route_request(listener, rc, conn.scheme).await {
        Ok(r) => r,
        Err(early) => return early_answer(early),
    };
    let path_and_query = rc.lookup(md::PATH).unwrap_or("/");
    let authority = rc.lookup(md::AUTHORITY).unwrap_or("");
    *target_out = Some(target);
    let cluster = &target.cluster;
    let settings = settings_of(cluster)?;

    // The upstream request: rewrites, forwarding headers, mutation, hop-by-hop.
    // The client's path is reused as is (no copy) unless something changes it.
    let mut new_path: Option<String> = None;
    let mut new_authority = authority.to_string();
    if let Some(rw) = &route.rewrite {
        if let Some(p) = &rw.path {
            new_path = Some(p.apply(path_and_query));
        }
        if let Some(h) = &rw.host {
            new_authority = h.clone();
        }
    }
    if new_path.is_none() && parts.uri.path_and_query().map(|p| p.as_str()) != Some(path_and_query)
    {
        new_path = Some(path_and_query.to_string());
    }
    // A WebSocket handshake on a route that relays it (never to an
    // HTTP/2 upstream, which would need extended CONNECT); an upgrade the
    // route does not relay is refused, as Envoy does.
    let upgrade = match super::upgrade::asked(&mut parts, route) {
        super::upgrade::Asked::Nothing => None,
        super::upgrade::Asked::Relayed(u) => {
            Some(u).filter(|_| settings.version != UpstreamVersion::Http2)
        }
        super::upgrade::Asked::Refused(protocol) => {
            return Err(error(
                ErrorKind::PermissionDenied,
                ErrorSource::Downstream,
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
            new_authority = a;
        }
    }
    let path = match new_path {
        Some(p) => PathAndQuery::try_from(p.as_str()).map_err(|e| {
            error(
                ErrorKind::BadRequest,
                ErrorSource::Downstream,
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

    let permit = metaproxy_core::pipeline::admit(target)?;

    // A bodiless request is mirrored and retried as is. With a retry
    // policy or a mirror, a streamed body is kept (up to a limit): for the
    // retries, and for the mirror's copy (a gRPC call, say), sent once the
    // answer's head is here if the whole body was read by then.
    let bodiless = body.is_end_stream();
    let mirror = route
        .mirror
        .as_ref()
        .filter(|m| upgrade.is_none() && m.sample());
    if bodiless && let Some(mirror) = mirror {
        let copy = MirrorCopy::new(&head, headers.clone(), UpstreamBody::Empty);
        spawn_mirror(mirror, route.timeout, move |c, e| copy.send(c, e));
    }
    let mirror_later = mirror.filter(|_| !bodiless).map(|m| (m, headers.clone()));
    let policy = route.retry.as_ref();
    let (body, replay) = match (bodiless, policy.is_some() || mirror_later.is_some()) {
        (true, _) => (UpstreamBody::Empty, None),
        (false, false) => (UpstreamBody::Client(body), None),
        (false, true) => {
            let (shared, first) = Replayable::new(body);
            (UpstreamBody::Replay(first), Some(shared))
        }
    };
    let kept = replay.clone();
    let tries = tries(
        target,
        &settings,
        &head,
        headers,
        (body, replay),
        decision.hash,
        policy,
        &mut rc.upstream,
    );
    // The route timeout bounds the whole answer: its head here, its body
    // in the streamed body; silences inside the body are bounded too.
    let ends_by = tokio::time::Instant::now() + route.timeout;
    let stream_idle = listener.limits.stream_idle_timeout;
    let (response, mut held) = tokio::time::timeout(route.timeout, tries)
        .await
        .map_err(|_| route_timeout(route, target, "response headers"))??;
    held.permit = Some(permit);
    if let Some((mirror, headers)) = mirror_later {
        match kept.as_ref().and_then(Replayable::copy) {
            Some((chunks, trailers)) => {
                let body = UpstreamBody::Kept(chunks.into(), trailers);
                let copy = MirrorCopy::new(&head, headers, body);
                spawn_mirror(mirror, route.timeout, move |c, e| copy.send(c, e));
            }
            None => debug!(route = %route.name, "body not complete or too large: not mirrored"),
        }
    }

    let (mut rparts, mut rbody) = response.into_parts();
    // An answer whose framing hyper read one way and another parser could
    // read another is not relayed; dropping it (and its connection, never
    // released to the pool) discards the upstream connection.
    if matches!(rparts.version, Version::HTTP_10 | Version::HTTP_11)
        && let Err(e) = super::h1::check_parsed_answer(rparts.version, &rparts.headers)
    {
        let from = rc.upstream.map(|a| a.to_string()).unwrap_or_default();
        return Err(error(
            ErrorKind::UpstreamReset,
            ErrorSource::Upstream,
            format!("bad answer head from {from}: malformed head: {e}"),
        ));
    }
    // A chunked answer's head waits for its first chunk: broken chunk
    // framing from the start is a 502, not an answer cut after its head.
    // Any other failure (the upstream gone, silent) reaches the client as
    // before: the head, then a cut body.
    let mut first = None;
    if rparts.headers.contains_key(header::TRANSFER_ENCODING) {
        match tokio::time::timeout_at(
            (tokio::time::Instant::now() + stream_idle).min(ends_by),
            rbody.frame(),
        )
        .await
        {
            Ok(Some(Err(e))) if is_bad_framing(&e) => {
                let from = rc.upstream.map(|a| a.to_string()).unwrap_or_default();
                return Err(error(
                    ErrorKind::UpstreamReset,
                    ErrorSource::Upstream,
                    format!("bad chunked answer from {from}: {e}"),
                ));
            }
            Ok(Some(r)) => first = Some(r.map_err(|e| Box::new(e) as super::body::BodyError)),
            Ok(None) => {}
            Err(_) => first = Some(Err(super::body::idle_error(stream_idle))),
        }
    }
    let view = || {
        let mut metadata = Metadata::with_capacity(2 + rparts.headers.len());
        metadata.push(md::STATUS.into(), rparts.status.as_str().into());
        metadata.push(keys::PROTOCOL.into(), super::HTTP.into());
        for (name, value) in &rparts.headers {
            if let Ok(v) = std::str::from_utf8(value.as_bytes()) {
                metadata.push(name.as_str().into(), v.into());
            }
        }
        ResponseContext {
            kind: MessageKind::Response,
            metadata,
        }
    };
    if let Err(early) = on_response(chain, rc, view).await {
        return early_answer(Early::of(early, rc, conn.scheme));
    }
    let switching = rparts.status == StatusCode::SWITCHING_PROTOCOLS;
    let upstream_protocol = rparts.headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut rparts.headers);
    if !rc.response_mutation.is_empty() {
        let (_, problems) = apply_mutation(&mut rparts.headers, &rc.response_mutation);
        for p in problems {
            warn!(route = %route.name, "response mutation: {p}");
        }
    }
    if switching {
        // The upstream switched protocols: only to an upgrade asked for.
        let from = rc.upstream.map(|a| a.to_string()).unwrap_or_default();
        let pending = rparts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let (Some(upgrade), Some(pending)) = (upgrade, pending) else {
            return Err(error(
                ErrorKind::UpstreamReset,
                ErrorSource::Upstream,
                format!(
                    "101 Switching Protocols from {from} to a request that asked for no upgrade"
                ),
            ));
        };
        upgrade.switch(
            &mut rparts.headers,
            upstream_protocol,
            pending,
            held,
            listener.clone(),
            conn.shutdown.clone(),
        );
        rparts.version = Version::HTTP_11;
        return Ok((
            Response::from_parts(rparts, ProxyBody::full(bytes::Bytes::new())),
            Answered::Upstream,
        ));
    }
    if let Some(cookie) = decision.set_cookie
        && let Ok(v) = HeaderValue::from_str(&cookie)
    {
        rparts.headers.append(header::SET_COOKIE, v);
    }
    rparts.version = Version::HTTP_11;
    Ok((
        Response::from_parts(
            rparts,
            ProxyBody::stream_after(first, rbody, (stream_idle, ends_by), held),
        ),
        Answered::Upstream,
    ))
}

/// Whether a body error is hyper refusing the chunked framing (its decoder
/// reports those as invalid input or data), not the connection failing.
fn is_bad_framing(e: &hyper::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            );
        }
        cause = c.source();
    }
    false
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

/// The first try and the retries the route's policy allows (bodiless
/// requests, and bodies kept for replay while under the limit), each on a
/// fresh pick that avoids endpoints already tried; every outcome feeds
/// outlier detection.
#[allow(clippy::too_many_arguments)]
async fn tries(
    target: &Target,
    settings: &HttpClusterSettings,
    head: &Head,
    headers: HeaderMap,
    (body, replay): (UpstreamBody, Option<Replayable<Incoming>>),
    hash: Option<u64>,
    policy: Option<&metaproxy_core::router::RetryPolicy>,
    upstream: &mut Option<SocketAddr>,
) -> Result<(Response<Incoming>, Held), ProxyError> {
    let cluster = &target.cluster;
    let version = head.version(settings);
    // Retries resend a copy of the head; the first try takes the original.
    let template = policy.map(|_| headers.clone());
    let mut first = Some((headers, body));
    let replay = &replay;
    let one_try = |endpoint: &Arc<Endpoint>, _attempt: u32| {
        let (headers, body) = match first.take() {
            Some(f) => f,
            None => {
                let body = match replay.as_ref().and_then(Replayable::cursor) {
                    Some(cursor) => UpstreamBody::Replay(cursor),
                    None => UpstreamBody::Empty,
                };
                (template.clone().unwrap_or_default(), body)
            }
        };
        let prepared = pool_of(endpoint, cluster).and_then(|pool| {
            Ok((
                pool.for_version(version),
                head.request(headers, version, endpoint.address, body)?,
            ))
        });
        async move {
            let (conns, req) = prepared?;
            let (resp, conn) = conns.send(req).await?;
            let class = classify(resp.status(), resp.headers());
            Ok(((resp, conn), class))
        }
    };
    // A body too large to keep cannot be sent again.
    let replayable = || replay.as_ref().is_none_or(Replayable::can_replay);
    let done = metaproxy_core::pipeline::run_tries(
        target,
        policy,
        hash,
        "response headers",
        upstream,
        one_try,
        replayable,
    )
    .await;
    done.map(|t| {
        let (resp, conn) = t.answer;
        (
            resp,
            Held {
                active: Some(t.active),
                permit: None,
                conn,
            },
        )
    })
}

/// A mirror copy of a request (`body`: none, or the kept request body),
/// sent by core's mirror step; its answer is read and dropped (so an
/// HTTP/1.1 connection can be reused).
struct MirrorCopy {
    head: Head,
    headers: HeaderMap,
    body: UpstreamBody,
}

impl MirrorCopy {
    fn new(head: &Head, headers: HeaderMap, body: UpstreamBody) -> MirrorCopy {
        let head = Head {
            method: head.method.clone(),
            path: head.path.clone(),
            authority: head.authority.clone(),
            client_version: head.client_version,
        };
        MirrorCopy {
            head,
            headers,
            body,
        }
    }

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
