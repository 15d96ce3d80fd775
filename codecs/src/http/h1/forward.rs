//! One HTTP/1.1 request on the lean path: metadata → shared routing step
//! (filters, route, redirect) → target → circuit breaker → mirror → tries
//! (endpoint pick, per-try timeout, outlier outcome, retries) under the
//! route timeout → response filters → the answer relayed to the client.
//! The request is complete in memory (its head and a bounded body), so
//! every try, retry and mirror resends the same encoded bytes.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::{Bytes, BytesMut};
use metaproxy_core::cluster::{ActiveGuard, Cluster, Endpoint};
use metaproxy_core::filter::{RequestContext, ResponseContext};
use metaproxy_core::metadata::{Metadata, MetadataView};
use metaproxy_core::pipeline::{
    Ending, Finished, Routed, finish, on_response, route_timeout, spawn_mirror,
};
use metaproxy_core::router::{Route, Target};
use metaproxy_core::snapshot::ListenerRuntime;
use metaproxy_core::{ErrorKind, ErrorSource, MessageKind, ProxyError};
use tokio::io::AsyncWrite;
use tracing::{debug, warn};

use super::deadline::LazyDeadline;
use super::encode::{self, HeaderChanges, RequestParts};
use super::exchange::{Answer, exchange};
use super::head::Head;
use super::meta::request_metadata;

use super::relay::{relay, write};
use crate::http::metadata as md;
use crate::http::reply::{local_reply, redirect_reply};
use crate::http::request::{ConnInfo, class_of, filter_reply, pool_of};
use crate::http::route::{Early, route_request};

/// A request read by the connection loop.
pub(crate) struct Request {
    /// Its head.
    pub head: Head,
    /// Its whole body.
    pub body: Bytes,
    /// The client asked to close after the answer.
    pub close: bool,
}

/// What a client connection lends each of its requests.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    /// Where the upstream request head, the answer head and a generated
    /// request id are written (each split off as `Bytes`).
    pub scratch: BytesMut,
    /// The route timeout, re-armed lazily from one request to the next.
    pub route_deadline: Option<LazyDeadline>,
}

/// How the answer went, for metrics and the access log.
enum Done {
    /// The upstream's answer was relayed (`complete`: to its end).
    Relayed { status: u16, complete: bool },
    /// The proxy answers itself.
    Early(Early),
}

/// Answers one request on `client`; returns whether the client connection
/// can carry another request.
pub(crate) async fn handle<W: AsyncWrite + Unpin>(
    listener: &ListenerRuntime,
    info: &ConnInfo,
    req: Request,
    client: &mut W,
    work: &mut Workspace,
) -> bool {
    let started = Instant::now();
    let metrics = &listener.metrics;
    metrics.requests_active.inc();
    let sent_id = req.head.may_have(b"x-request-id").then(|| {
        req.head
            .headers
            .iter()
            .find(|(n, v)| req.head.at(n) == b"x-request-id" && !v.is_empty())
    });
    let (request_id, generated) = match sent_id.flatten() {
        Some((_, v)) => (req.head.bytes.slice(v.clone()), false),
        None => {
            work.scratch
                .extend_from_slice(&crate::http::headers::request_id_bytes());
            (work.scratch.split().freeze(), true)
        }
    };
    let metadata = request_metadata(&req.head, info.scheme, &request_id, generated);
    let mut rc = RequestContext::new(
        crate::http::HTTP,
        MessageKind::Request,
        metadata,
        info.connection.clone(),
    );
    let mut target = None;
    let generated = generated.then_some(&request_id[..]);
    let done = forward(
        listener,
        info,
        &mut rc,
        &req,
        generated,
        client,
        work,
        started,
        &mut target,
    )
    .await;
    metrics.requests_active.dec();
    let mut keep = !req.close;
    let (ending, mut status): (Ending, Option<u16>) = match &done {
        Done::Relayed { status, complete } => {
            keep &= *complete;
            (
                Ending::Upstream {
                    error: *status >= 500,
                },
                Some(*status),
            )
        }
        Done::Early(Early::Error(e)) => (Ending::Failed(e.kind), None),
        Done::Early(Early::Respond(r)) => (Ending::Filter, Some(r.status)),
        Done::Early(Early::Redirect(code, _)) => (Ending::Redirect, Some(*code)),
    };
    if let Done::Early(early) = done {
        let resp = match early {
            Early::Error(e) => {
                debug!(
                    listener = %listener.name,
                    authority = rc.lookup(md::AUTHORITY).unwrap_or(""),
                    path = rc.lookup(md::PATH).unwrap_or(""),
                    error = %e.chain(),
                    "local reply"
                );
                local_reply(&e, false)
            }
            Early::Respond(r) => filter_reply(r),
            Early::Redirect(code, location) => redirect_reply(code, &location),
        };
        status = Some(resp.status().as_u16());
        let bytes = encode::local_answer(resp, !keep);
        if write(client, bytes, Bytes::new(), info.idle_timeout)
            .await
            .is_err()
        {
            keep = false;
        }
    }
    // Formatted on the stack: no allocation per request.
    let mut digits = itoa::Buffer::new();
    let status = status.map(|s| digits.format(s));
    finish(
        listener,
        crate::http::HTTP,
        &Finished {
            request: &rc,
            target,
            ending,
            status,
            started: started.into_std(),
        },
    );
    keep
}

#[allow(clippy::too_many_arguments)]
async fn forward<'a, W: AsyncWrite + Unpin>(
    listener: &'a ListenerRuntime,
    info: &ConnInfo,
    rc: &mut RequestContext,
    req: &Request,
    generated_id: Option<&[u8]>,
    client: &mut W,
    work: &mut Workspace,
    started: Instant,
    target_out: &mut Option<&'a Target>,
) -> Done {
    let Routed {
        route,
        chain,
        target,
        hash: decision,
    } = match route_request(listener, rc, info.scheme).await {
        Ok(r) => r,
        Err(early) => return Done::Early(early),
    };
    *target_out = Some(target);
    let request = match upstream_request(&mut work.scratch, route, rc, req, info, generated_id) {
        Ok(r) => r,
        Err(e) => return Done::Early(Early::Error(e)),
    };
    let _permit = match metaproxy_core::pipeline::admit(target) {
        Ok(p) => p,
        Err(e) => return Done::Early(Early::Error(e)),
    };
    if let Some(mirror) = route.mirror.as_ref().filter(|m| m.sample()) {
        let (request, body, limit) = (request.clone(), req.body.clone(), route.timeout);
        spawn_mirror(mirror, limit, move |cluster, endpoint| {
            mirror_copy(cluster, endpoint, request, body, limit)
        });
    }
    let head_request = req.head.at(&req.head.first) == b"HEAD";
    let tries = tries(
        route,
        target,
        &request,
        &req.body,
        head_request,
        decision.hash,
        rc,
        started.into_std(),
    );
    let deadline = LazyDeadline::arm(&mut work.route_deadline, started + route.timeout);
    let tried = tokio::select! {
        biased;
        r = tries => Some(r),
        () = deadline.expired() => None,
    };
    let (answer, _active) = match tried {
        Some(Ok(a)) => a,
        Some(Err(e)) => return Done::Early(Early::Error(e)),
        None => {
            let e = route_timeout(route, target, "response headers");
            return Done::Early(Early::Error(e));
        }
    };
    if let Err(early) = on_response(chain, rc, || answer_view(&answer)).await {
        return Done::Early(Early::of(early, rc, info.scheme));
    }
    let changes = HeaderChanges::of(&rc.response_mutation);
    for p in &changes.problems {
        warn!(route = %route.name, "response mutation: {p}");
    }
    let close = req.close || answer.framing == super::exchange::Framing::Close;
    let head = encode::answer_head(
        &mut work.scratch,
        &answer.head,
        &changes,
        decision.set_cookie.as_deref(),
        close,
    );
    let Answer {
        status,
        framing,
        reusable,
        conn: mut upstream,
        ..
    } = answer;
    // The route timeout bounds the whole answer: the body must be over by
    // the same deadline as the head; silences are bounded on their own.
    let stream_idle = listener.limits.stream_idle_timeout;
    match relay(
        &mut upstream,
        framing,
        head,
        client,
        stream_idle,
        Some(deadline),
    )
    .await
    {
        Ok(()) => {
            if reusable {
                upstream.release_at(started.into_std());
            }
            Done::Relayed {
                status,
                complete: !close,
            }
        }
        // Nothing reached the client: it gets an error answer instead, and
        // the upstream connection (dropped here) is not reused.
        Err(e @ super::error::RelayError::Refused(_)) => {
            Done::Early(Early::Error(ProxyError::new(
                ErrorKind::UpstreamReset,
                ErrorSource::Upstream,
                format!("{e} from {}", upstream.address()),
            )))
        }
        Err(e) => {
            debug!(route = %route.name, error = %e, "answer relay stopped");
            Done::Relayed {
                status,
                complete: false,
            }
        }
    }
}

/// The answer's head as response metadata for the filters.
fn answer_view(answer: &Answer) -> ResponseContext {
    let head = &answer.head;
    let mut metadata = Metadata::with_capacity(2 + head.headers.len());
    metadata.insert(md::STATUS, answer.status.to_string());
    metadata.insert(metaproxy_core::metadata::keys::PROTOCOL, crate::http::HTTP);
    for (n, v) in &head.headers {
        let (Ok(n), Ok(v)) = (
            bytestring::ByteString::try_from(head.bytes.slice(n.clone())),
            bytestring::ByteString::try_from(head.bytes.slice(v.clone())),
        ) else {
            continue;
        };
        metadata.push(n, v);
    }
    ResponseContext {
        kind: MessageKind::Response,
        metadata,
    }
}

/// The upstream request head (written to `scratch`): rewrites, forwarding
/// headers, mutation.
fn upstream_request(
    scratch: &mut BytesMut,
    route: &Route,
    rc: &RequestContext,
    req: &Request,
    info: &ConnInfo,
    generated_id: Option<&[u8]>,
) -> Result<Bytes, ProxyError> {
    let head = &req.head;
    let sent = head.at(&head.second);
    let path_and_query = rc.lookup(md::PATH).unwrap_or("/");
    let mut path: Option<String> = None;
    let mut host: Option<String> = None;
    if let Some(rw) = &route.rewrite {
        if let Some(p) = &rw.path {
            path = Some(p.apply(path_and_query));
        }
        host.clone_from(&rw.host);
    }
    if path.is_none() && path_and_query.as_bytes() != sent {
        path = Some(path_and_query.to_string());
    }
    let changes = HeaderChanges::of(&rc.request_mutation);
    for p in &changes.problems {
        warn!(route = %route.name, "request mutation: {p}");
    }
    if let Some(p) = changes.path {
        path = Some(p.to_string());
    }
    if let Some(a) = changes.authority {
        host = Some(a.to_string());
    }
    let path = path.as_deref().map_or(sent, str::as_bytes);
    let bad = |what: &str| {
        ProxyError::new(
            ErrorKind::BadRequest,
            ErrorSource::Downstream,
            format!("bad {what} after rewrite"),
        )
    };
    if path.first() != Some(&b'/') || path.iter().any(|b| *b <= b' ' || *b == 0x7f) {
        return Err(bad("path"));
    }
    if host
        .as_deref()
        .is_some_and(|h| h.is_empty() || h.bytes().any(|b| b <= b' ' || b == 0x7f))
    {
        return Err(bad("host"));
    }
    Ok(encode::request_head(
        scratch,
        head,
        &RequestParts {
            path,
            host: host.as_deref().map(str::as_bytes),
            client_ip: info.client_ip.as_bytes(),
            scheme: info.scheme,
            request_id: generated_id,
            changes: &changes,
            body_len: req.body.len(),
        },
    ))
}

/// The first try and the retries the route's policy allows (the shared
/// loop in [`metaproxy_core::pipeline::run_tries`]); every try resends the
/// same encoded request.
#[allow(clippy::too_many_arguments)]
async fn tries(
    route: &Route,
    target: &Target,
    request: &Bytes,
    body: &Bytes,
    head_request: bool,
    hash: Option<u64>,
    rc: &mut RequestContext,
    started: std::time::Instant,
) -> Result<(Answer, ActiveGuard), ProxyError> {
    let cluster = &target.cluster;
    let one_try = |endpoint: &Arc<Endpoint>, _attempt: u32| {
        let pool = pool_of(endpoint, cluster).map(|p| p.lean.clone());
        async move {
            let answer = exchange(&pool?, request, body, head_request, started).await?;
            let class = class_of(answer.status, answer.head.header(b"grpc-status"));
            Ok((answer, class))
        }
    };
    let done = metaproxy_core::pipeline::run_tries(
        target,
        route.retry.as_ref(),
        hash,
        "response headers",
        &mut rc.upstream,
        one_try,
        || true,
    )
    .await?;
    Ok((done.answer, done.active))
}

/// One mirror copy, sent by core's mirror step; its answer is read and
/// dropped (so the connection can be reused).
async fn mirror_copy(
    cluster: Arc<Cluster>,
    endpoint: Arc<Endpoint>,
    request: Bytes,
    body: Bytes,
    limit: Duration,
) -> Result<(), ProxyError> {
    let pool = &pool_of(&endpoint, &cluster)?.lean;
    let now = std::time::Instant::now();
    let answer = exchange(pool, &request, &body, false, now).await?;
    let Answer {
        framing,
        reusable,
        conn: mut upstream,
        ..
    } = answer;
    let mut sink = tokio::io::sink();
    if relay(&mut upstream, framing, Bytes::new(), &mut sink, limit, None)
        .await
        .is_ok()
        && reusable
    {
        upstream.release_at(now);
    }
    Ok(())
}
