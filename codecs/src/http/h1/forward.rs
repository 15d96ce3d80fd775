//! The lean HTTP/1.1 engine's part of one request (core's pipeline runs
//! the rest): the request is complete in memory (its head and a bounded
//! body), so every try, retry and mirror resends the same encoded bytes;
//! the answer's head is read by our own parser and its body relayed to
//! the client under the route's whole-answer deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::{Bytes, BytesMut};
use metaproxy_core::cluster::{Cluster, Endpoint};
use metaproxy_core::codec::ResponseClass;
use metaproxy_core::deadline::LazyDeadline;
use metaproxy_core::filter::{RequestContext, ResponseContext};
use metaproxy_core::metadata::{Metadata, MetadataView};
use metaproxy_core::pipeline::{
    self, Answered, Delivered, Ending, Exchange, MirrorCopy, Mirroring, Status,
};
use metaproxy_core::router::{Route, Target};
use metaproxy_core::snapshot::ListenerRuntime;
use metaproxy_core::{ErrorKind, MessageKind, Origin, ProxyError};
use tokio::io::AsyncWrite;
use tracing::{debug, warn};

use super::encode::{self, HeaderChanges, RequestParts};
use super::exchange::{Answer, Framing, exchange};
use super::head::Head;
use super::meta::request_metadata;

use super::relay::{relay, write};
use crate::http::cluster::{class_of, pool_of};
use crate::http::metadata as md;
use crate::http::reply::early_reply;
use crate::http::request::ConnInfo;
use crate::http::route::{Early, describe};

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

/// Answers one request on `client`; returns whether the client connection
/// can carry another request.
pub(crate) async fn handle<W: AsyncWrite + Unpin + Send>(
    listener: &ListenerRuntime,
    info: &ConnInfo,
    req: Request,
    client: &mut W,
    work: &mut Workspace,
) -> bool {
    let started = Instant::now();
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
    let rc = RequestContext::new(
        crate::http::HTTP,
        MessageKind::Request,
        metadata,
        info.connection.clone(),
    );
    let mut lean = LeanExchange {
        listener,
        info,
        generated_id: generated.then_some(request_id),
        head_request: req.head.at(&req.head.first) == b"HEAD",
        req,
        upstream_head: Bytes::new(),
        client,
        scratch: &mut work.scratch,
        started,
    };
    pipeline::serve(listener, rc, &mut lean, &mut work.route_deadline, started).await
}

/// One request of the lean path; its reply is whether the client
/// connection can carry another request.
struct LeanExchange<'a, W> {
    listener: &'a ListenerRuntime,
    info: &'a ConnInfo,
    req: Request,
    /// The request id the proxy made up, when the client sent none.
    generated_id: Option<Bytes>,
    head_request: bool,
    /// The upstream request head, once routed.
    upstream_head: Bytes,
    client: &'a mut W,
    scratch: &'a mut BytesMut,
    started: Instant,
}

impl<W: AsyncWrite + Unpin + Send> Exchange for LeanExchange<'_, W> {
    type Answer = Answer;
    type Mirror = LeanCopy;
    type Reply = bool;
    const AWAITED: &'static str = "response headers";

    fn describe(&self, rc: &RequestContext) -> String {
        describe(rc)
    }

    fn prepare(
        &mut self,
        route: &Route,
        _: &Target,
        rc: &mut RequestContext,
    ) -> Result<(), ProxyError> {
        self.upstream_head = upstream_request(
            self.scratch,
            route,
            rc,
            &self.req,
            self.info,
            self.generated_id.as_deref(),
        )?;
        Ok(())
    }

    fn mirror_copy(&mut self, route: &Route, _: &RequestContext) -> Mirroring<LeanCopy> {
        Mirroring::Now(LeanCopy {
            request: self.upstream_head.clone(),
            body: self.req.body.clone(),
            limit: route.timeout,
        })
    }

    async fn send(
        &mut self,
        target: &Target,
        endpoint: &Arc<Endpoint>,
        _: u32,
        _: &RequestContext,
    ) -> Result<(Answer, ResponseClass), ProxyError> {
        let pool = pool_of(endpoint, &target.cluster)?.lean.clone();
        let started = self.started.into_std();
        let answer = exchange(
            &pool,
            &self.upstream_head,
            &self.req.body,
            self.head_request,
            started,
        )
        .await?;
        let class = class_of(answer.status, answer.head.header(b"grpc-status"));
        Ok((answer, class))
    }

    fn view(&self, answer: &Answer) -> ResponseContext {
        answer_view(answer)
    }

    async fn deliver(
        &mut self,
        answered: Answered<'_, Answer>,
        rc: &mut RequestContext,
        deadline: &mut LazyDeadline,
    ) -> Result<Delivered<bool>, ProxyError> {
        let Answered {
            route,
            answer,
            active: _active,
            permit: _permit,
            set_cookie,
            ..
        } = answered;
        let changes = HeaderChanges::of(&rc.response_mutation);
        for p in &changes.problems {
            warn!(route = %route.name, "response mutation: {p}");
        }
        // A close-delimited answer is re-chunked for a client that keeps
        // its connection: only the upstream's connection ends with it.
        let close = self.req.close;
        let rechunk = answer.framing == Framing::Close && !close;
        let head = encode::answer_head(
            self.scratch,
            &answer.head,
            &changes,
            set_cookie
                .as_ref()
                .map(crate::http::headers::set_cookie_value)
                .as_deref(),
            close,
            rechunk,
        );
        let Answer {
            status,
            framing,
            reusable,
            conn: mut upstream,
            ..
        } = answer;
        // The route timeout bounds the whole answer: the body must be over
        // by the same deadline as the head; silences are bounded on their own.
        let stream_idle = self.listener.limits.stream_idle_timeout;
        let relayed = relay(
            &mut upstream,
            framing,
            head,
            &mut *self.client,
            stream_idle,
            Some(deadline),
            rechunk,
        )
        .await;
        let complete = match relayed {
            Ok(()) => {
                if reusable {
                    upstream.release_at(self.started.into_std());
                }
                !close
            }
            // Nothing reached the client: it gets an error answer instead,
            // and the upstream connection (dropped here) is not reused.
            Err(e @ super::error::RelayError::Refused(_)) => {
                return Err(ProxyError::new(
                    ErrorKind::UpstreamReset,
                    Origin::Upstream,
                    format!("{e} from {}", upstream.address()),
                ));
            }
            Err(e) => {
                debug!(route = %route.name, error = %e, "answer relay stopped");
                false
            }
        };
        Ok(Delivered {
            reply: complete,
            ending: Ending::Upstream {
                error: status >= 500,
            },
            status: Status::Code(status),
        })
    }

    async fn refuse(&mut self, early: pipeline::Early<'_>, rc: &RequestContext) -> Delivered<bool> {
        let (resp, ending) = early_reply(Early::of(early, rc, self.info.scheme), false);
        let status = resp.status().as_u16();
        let mut keep = !self.req.close;
        let bytes = encode::local_answer(resp, !keep);
        if write(
            &mut *self.client,
            bytes,
            Bytes::new(),
            self.info.idle_timeout,
        )
        .await
        .is_err()
        {
            keep = false;
        }
        Delivered {
            reply: keep,
            ending,
            status: Status::Code(status),
        }
    }
}

/// The answer's head as response metadata for the filters.
pub(crate) fn answer_view(answer: &Answer) -> ResponseContext {
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
            Origin::Downstream,
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

/// One mirror copy of a lean request, sent by core's mirror step; its
/// answer is read and dropped (so the connection can be reused).
struct LeanCopy {
    request: Bytes,
    body: Bytes,
    limit: Duration,
}

impl MirrorCopy for LeanCopy {
    async fn send(self, cluster: Arc<Cluster>, endpoint: Arc<Endpoint>) -> Result<(), ProxyError> {
        let pool = &pool_of(&endpoint, &cluster)?.lean;
        let now = std::time::Instant::now();
        let answer = exchange(pool, &self.request, &self.body, false, now).await?;
        let Answer {
            framing,
            reusable,
            conn: mut upstream,
            ..
        } = answer;
        let mut sink = tokio::io::sink();
        if relay(
            &mut upstream,
            framing,
            Bytes::new(),
            &mut sink,
            self.limit,
            None,
            false,
        )
        .await
        .is_ok()
            && reusable
        {
            upstream.release_at(now);
        }
        Ok(())
    }
}
