//! The hyper engine's part of one request (HTTP/2, gRPC, and HTTP/1.1
//! the lean path hands over); core's pipeline runs the rest. The request
//! body streams upstream (kept, up to a bound, when a retry or the mirror
//! may need it again); the answer's body streams back under the route's
//! whole-answer deadline and the stream idle timeout.
//!
//! An HTTP/2 client's request to a plain HTTP/1.1 cluster, with a body of
//! known length up to 256 KiB (most are), goes out on the lean path's
//! connections instead of hyper's client: the head written as bytes, the
//! body read whole first, the answer's head parsed by the lean parser and
//! its body read off the connection as the client's stream takes it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use metaproxy_core::cluster::Endpoint;
use metaproxy_core::codec::ResponseClass;
use metaproxy_core::deadline::LazyDeadline;
use metaproxy_core::filter::{RequestContext, ResponseContext};
use metaproxy_core::metadata::{Metadata, keys};
use metaproxy_core::pipeline::{self, Answered, Delivered, Ending, Exchange, Mirroring, Status};
use metaproxy_core::router::{Route, Target};
use metaproxy_core::snapshot::ListenerRuntime;
use metaproxy_core::{ErrorKind, MessageKind, Origin, ProxyError};
use tracing::{debug, warn};

use super::body::{Held, ProxyBody, Source};
use super::cluster::{class_of, classify, pool_of, settings_of};
use super::h1::{Framing, LeanAnswerBody, MAX_LEAN_BODY};
use super::headers::{apply_mutation, ensure_request_id_header, strip_hop_by_hop};
use super::metadata::{self as md, is_grpc, request_metadata};
use super::outgoing::{Head, HyperCopy, Outgoing, outgoing};
use super::replay::Replayable;
use super::reply::{early_reply, text_reply};
use super::route::{Early, describe};
use super::upgrade::Requested;
use super::upstream::{H1Conn, UpstreamBody};

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
    let started = tokio::time::Instant::now();
    let grpc = is_grpc(req.headers());
    let h2_client = req.version() == Version::HTTP_2;
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
    let rc = RequestContext::new(
        super::HTTP,
        MessageKind::Request,
        metadata,
        conn.connection.clone(),
    );
    let mut exchange = HyperExchange {
        listener: listener.clone(),
        conn,
        grpc,
        h2_client,
        parts: Some(parts),
        body: Some(body),
        sending: None,
        replay: None,
        lean: None,
        retries: false,
        mirror_later: None,
    };
    pipeline::serve(&listener, rc, &mut exchange, &mut None, started).await
}

/// One request of the hyper engine; its reply is the client's response.
struct HyperExchange {
    listener: Arc<ListenerRuntime>,
    conn: Arc<ConnInfo>,
    grpc: bool,
    /// The client speaks HTTP/2.
    h2_client: bool,
    /// The client's request head, until the upstream request is built.
    parts: Option<http::request::Parts>,
    /// The client's body, until the first try takes it.
    body: Option<Incoming>,
    /// The upstream request, once routed.
    sending: Option<Sending>,
    /// The body kept for retries and a late mirror copy.
    replay: Option<Replayable<Incoming>>,
    /// The whole body, read before the first try that went out on the
    /// lean path's connections (every try then does).
    lean: Option<Bytes>,
    /// The route has a retry policy.
    retries: bool,
    /// The headers of a mirror copy sent once the answer's head is here.
    mirror_later: Option<HeaderMap>,
}

/// The upstream request of a routed request.
struct Sending {
    head: Head,
    /// The first try's headers (taken by it).
    first: Option<HeaderMap>,
    /// A copy for retries (only with a retry policy).
    template: Option<HeaderMap>,
    version: Version,
    upgrade: Option<Requested>,
}

/// An upstream answer: hyper's (with its HTTP/1.1 connection), or one
/// the lean path read off its own HTTP/1.1 connection.
enum HyperAnswer {
    Hyper(Response<Incoming>, Option<H1Conn>),
    /// Boxed: the hyper variant, the common one, keeps its size in the
    /// request's future.
    Lean(Box<super::h1::Answer>),
}

impl HyperExchange {
    fn sending(&self) -> Result<&Sending, ProxyError> {
        self.sending.as_ref().ok_or_else(|| {
            ProxyError::internal(ErrorKind::Internal, "request sent before it was built")
        })
    }

    /// The first try's body: none, the client's streamed, or the client's
    /// kept for a retry or the mirror (up to a limit).
    fn first_body(&mut self) -> UpstreamBody {
        let Some(body) = self.body.take() else {
            return UpstreamBody::Empty;
        };
        if body.is_end_stream() {
            UpstreamBody::Empty
        } else if self.retries || self.mirror_later.is_some() {
            let (shared, first) = Replayable::new(body);
            self.replay = Some(shared);
            UpstreamBody::Replay(first)
        } else {
            UpstreamBody::Client(body)
        }
    }

    /// Whether a try goes out on the lean path's HTTP/1.1 connections: an
    /// HTTP/2 client's non-gRPC request, without upgrade, to a plain
    /// HTTP/1.1 cluster, with a body of known length up to the lean
    /// path's bound (decided by the first try; every retry follows it).
    fn goes_lean(&self, target: &Target, attempt: u32) -> bool {
        let Some(sending) = &self.sending else {
            return false;
        };
        if !self.h2_client
            || self.grpc
            || sending.version != Version::HTTP_11
            || sending.upgrade.is_some()
            || target.cluster.parts.pool.tls.is_some()
        {
            return false;
        }
        if attempt > 0 {
            return self.lean.is_some();
        }
        self.body.as_ref().is_none_or(|b| {
            b.is_end_stream()
                || b.size_hint()
                    .exact()
                    .is_some_and(|n| n <= MAX_LEAN_BODY as u64)
        })
    }

    /// The client's whole body (read once, at the first lean try).
    async fn lean_body(&mut self) -> Result<Bytes, ProxyError> {
        if let Some(body) = &self.lean {
            return Ok(body.clone());
        }
        let body = match self.body.take() {
            Some(body) if !body.is_end_stream() => Limited::new(body, MAX_LEAN_BODY)
                .collect()
                .await
                .map_err(|e| {
                    ProxyError::new(
                        ErrorKind::BadRequest,
                        Origin::Downstream,
                        format!("client request body: {e}"),
                    )
                    .with_retry(false)
                })?
                .to_bytes(),
            _ => Bytes::new(),
        };
        self.lean = Some(body.clone());
        Ok(body)
    }

    /// One try on the lean path's connections to `endpoint`.
    async fn send_lean(
        &mut self,
        target: &Target,
        endpoint: &Arc<Endpoint>,
    ) -> Result<(HyperAnswer, ResponseClass), ProxyError> {
        let body = self.lean_body().await?;
        let sending = self.sending()?;
        let headers = sending.first.as_ref().ok_or_else(|| {
            ProxyError::internal(ErrorKind::Internal, "request headers already taken")
        })?;
        let request = sending
            .head
            .h1_request(headers, endpoint.address, body.len())?;
        let pool = &pool_of(endpoint, &target.cluster)?.lean;
        let answer = super::h1::exchange(
            pool,
            &request,
            &body,
            sending.head.is_head(),
            std::time::Instant::now(),
        )
        .await?;
        let class = class_of(answer.status, answer.head.header(b"grpc-status"));
        Ok((HyperAnswer::Lean(Box::new(answer)), class))
    }

    /// The kept body as a body to send again (a retry on hyper's client,
    /// the mirror's copy), when the lean path read it.
    fn kept_lean_body(&self) -> Option<UpstreamBody> {
        let body = self.lean.as_ref()?;
        let chunks = if body.is_empty() {
            std::collections::VecDeque::new()
        } else {
            std::collections::VecDeque::from([body.clone()])
        };
        Some(UpstreamBody::Kept(chunks, None))
    }
}

/// The head of an answer the lean parser read, as hyper's response parts.
fn lean_answer_parts(answer: &super::h1::Answer) -> Result<http::response::Parts, String> {
    let head = &answer.head;
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(answer.status).map_err(|e| e.to_string())?;
    let headers = response.headers_mut();
    headers.reserve(head.headers.len());
    for (n, v) in &head.headers {
        let name = HeaderName::from_bytes(head.at(n)).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_maybe_shared(head.bytes.slice(v.clone()))
            .map_err(|e| e.to_string())?;
        headers.append(name, value);
    }
    Ok(response.into_parts().0)
}

impl Exchange for HyperExchange {
    /// The answer's head and body, and its HTTP/1.1 connection.
    type Answer = HyperAnswer;
    type Mirror = HyperCopy;
    type Reply = Response<ProxyBody>;
    const AWAITED: &'static str = "response headers";

    fn describe(&self, rc: &RequestContext) -> String {
        describe(rc)
    }

    fn prepare(
        &mut self,
        route: &Route,
        target: &Target,
        rc: &mut RequestContext,
    ) -> Result<(), ProxyError> {
        let settings = settings_of(&target.cluster)?;
        let parts = self.parts.take().ok_or_else(|| {
            ProxyError::internal(ErrorKind::Internal, "request head already taken")
        })?;
        let Outgoing {
            head,
            headers,
            upgrade,
        } = outgoing(parts, route, rc, &self.conn, &settings)?;
        self.retries = route.retry.is_some();
        self.sending = Some(Sending {
            version: head.version(&settings),
            head,
            template: self.retries.then(|| headers.clone()),
            first: Some(headers),
            upgrade,
        });
        Ok(())
    }

    fn mirror_copy(&mut self, _: &Route, _: &RequestContext) -> Mirroring<HyperCopy> {
        let (Some(sending), Some(body)) = (&self.sending, &self.body) else {
            return Mirroring::Never;
        };
        let Some(headers) = sending.first.as_ref().filter(|_| sending.upgrade.is_none()) else {
            return Mirroring::Never;
        };
        // A bodiless request is copied now; a streamed body is kept while
        // it is sent and copied once the answer's head is here (a gRPC
        // call, say), if the whole body was read by then.
        if body.is_end_stream() {
            Mirroring::Now(HyperCopy::new(
                &sending.head,
                headers.clone(),
                UpstreamBody::Empty,
            ))
        } else {
            self.mirror_later = Some(headers.clone());
            Mirroring::AfterAnswer
        }
    }

    fn mirror_copy_after_answer(&mut self) -> Option<HyperCopy> {
        let headers = self.mirror_later.take()?;
        let body = match self.kept_lean_body() {
            Some(body) => body,
            None => {
                let (chunks, trailers) = self.replay.as_ref().and_then(Replayable::copy)?;
                UpstreamBody::Kept(chunks.into(), trailers)
            }
        };
        Some(HyperCopy::new(&self.sending.as_ref()?.head, headers, body))
    }

    async fn send(
        &mut self,
        target: &Target,
        endpoint: &Arc<Endpoint>,
        attempt: u32,
        _: &RequestContext,
    ) -> Result<(Self::Answer, ResponseClass), ProxyError> {
        if self.goes_lean(target, attempt) {
            return self.send_lean(target, endpoint).await;
        }
        let (headers, body) = if attempt == 0 {
            let body = self.first_body();
            let headers = self.sending.as_mut().and_then(|s| s.first.take());
            (headers.unwrap_or_default(), body)
        } else {
            // Retries resend a copy of the head and the kept body.
            let body = match self.replay.as_ref().and_then(Replayable::cursor) {
                Some(cursor) => UpstreamBody::Replay(cursor),
                None => self.kept_lean_body().unwrap_or(UpstreamBody::Empty),
            };
            let headers = self.sending()?.template.clone().unwrap_or_default();
            (headers, body)
        };
        let sending = self.sending()?;
        let conns = pool_of(endpoint, &target.cluster)?.for_version(sending.version);
        let req = sending
            .head
            .request(headers, sending.version, endpoint.address, body)?;
        let (resp, conn) = conns.send(req).await?;
        // An answer whose framing hyper read one way and another parser
        // could read another is not relayed, nor sent again; dropping it
        // (its connection never released to the pool) discards the
        // upstream connection.
        if matches!(resp.version(), Version::HTTP_10 | Version::HTTP_11)
            && let Err(e) = super::h1::check_parsed_answer(resp.version(), resp.headers())
        {
            return Err(ProxyError::new(
                ErrorKind::UpstreamReset,
                Origin::Upstream,
                format!(
                    "bad answer head from {}: malformed head: {e}",
                    endpoint.address
                ),
            )
            .with_retry(false));
        }
        let class = classify(resp.status(), resp.headers());
        Ok((HyperAnswer::Hyper(resp, conn), class))
    }

    fn can_replay(&self) -> bool {
        // A body too large to keep cannot be sent again.
        self.replay.as_ref().is_none_or(Replayable::can_replay)
    }

    fn view(&self, answer: &Self::Answer) -> ResponseContext {
        let resp = match answer {
            HyperAnswer::Hyper(resp, _) => resp,
            HyperAnswer::Lean(answer) => return super::h1::answer_view(answer),
        };
        let mut metadata = Metadata::with_capacity(2 + resp.headers().len());
        metadata.push(md::STATUS.into(), resp.status().as_str().into());
        metadata.push(keys::PROTOCOL.into(), super::HTTP.into());
        for (name, value) in resp.headers() {
            if let Ok(v) = std::str::from_utf8(value.as_bytes()) {
                metadata.push(name.as_str().into(), v.into());
            }
        }
        ResponseContext {
            kind: MessageKind::Response,
            metadata,
        }
    }

    async fn deliver(
        &mut self,
        answered: Answered<'_, Self::Answer>,
        rc: &mut RequestContext,
        _: &mut LazyDeadline,
    ) -> Result<Delivered<Self::Reply>, ProxyError> {
        let Answered {
            route,
            answer,
            active,
            permit,
            set_cookie,
            ends_by,
            ..
        } = answered;
        // Named only in an error's text: formatted only then.
        let from = || rc.upstream.map(|a| a.to_string()).unwrap_or_default();
        let (mut rparts, source, conn, chunked) = match answer {
            HyperAnswer::Hyper(response, conn) => {
                let (parts, body) = response.into_parts();
                let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
                (parts, Source::Hyper(body), conn, chunked)
            }
            HyperAnswer::Lean(answer) => {
                let parts = lean_answer_parts(&answer).map_err(|e| {
                    ProxyError::new(
                        ErrorKind::UpstreamReset,
                        Origin::Upstream,
                        format!("bad answer head from {}: {e}", from()),
                    )
                })?;
                let chunked = answer.framing == Framing::Chunked;
                let body = LeanAnswerBody::new(answer.conn, answer.framing, answer.reusable);
                (parts, Source::Lean(Box::new(body)), None, chunked)
            }
        };
        let held = Held {
            active: Some(active),
            permit: Some(permit),
            conn,
        };
        let stream_idle = self.listener.limits.stream_idle_timeout;
        let status = rparts.status;
        let switching = status == StatusCode::SWITCHING_PROTOCOLS;
        let upstream_protocol = rparts.headers.get(header::UPGRADE).cloned();
        strip_hop_by_hop(&mut rparts.headers);
        if !rc.response_mutation.is_empty() {
            let (_, problems) = apply_mutation(&mut rparts.headers, &rc.response_mutation);
            for p in problems {
                warn!(route = %route.name, "response mutation: {p}");
            }
        }
        let body = if switching {
            // The upstream switched protocols: only to an upgrade asked for.
            let pending = rparts.extensions.remove::<hyper::upgrade::OnUpgrade>();
            let upgrade = self.sending.as_mut().and_then(|s| s.upgrade.take());
            let (Some(upgrade), Some(pending)) = (upgrade, pending) else {
                return Err(ProxyError::new(
                    ErrorKind::UpstreamReset,
                    Origin::Upstream,
                    format!(
                        "101 Switching Protocols from {} to a request that asked for no upgrade",
                        from()
                    ),
                ));
            };
            upgrade.switch(
                &mut rparts.headers,
                upstream_protocol,
                pending,
                held,
                self.listener.clone(),
                self.conn.shutdown.clone(),
            );
            ProxyBody::full(bytes::Bytes::new())
        } else {
            let mut body = ProxyBody::stream(source, stream_idle, ends_by, held);
            // A chunked answer's head waits for its first chunk: broken
            // chunk framing from the start is a 502, not an answer cut
            // after its head. Any other failure (the upstream gone,
            // silent) reaches the client as before: the head, then a cut
            // body.
            if chunked && let Err(e) = body.read_ahead().await {
                return Err(ProxyError::new(
                    ErrorKind::UpstreamReset,
                    Origin::Upstream,
                    format!("bad chunked answer from {}: {e}", from()),
                ));
            }
            if let Some(cookie) = set_cookie
                && let Ok(v) = HeaderValue::from_str(&super::headers::set_cookie_value(&cookie))
            {
                rparts.headers.append(header::SET_COOKIE, v);
            }
            if self.grpc && is_grpc(&rparts.headers) {
                body.ending_grpc_cuts_with_status()
            } else {
                body
            }
        };
        rparts.version = Version::HTTP_11;
        Ok(Delivered {
            reply: Response::from_parts(rparts, body),
            ending: Ending::Upstream {
                error: status.is_server_error(),
            },
            status: Status::Code(status.as_u16()),
        })
    }

    async fn refuse(
        &mut self,
        early: pipeline::Early<'_>,
        rc: &RequestContext,
    ) -> Delivered<Self::Reply> {
        let (reply, ending) = early_reply(Early::of(early, rc, self.conn.scheme), self.grpc);
        let status = Status::Code(reply.status().as_u16());
        Delivered {
            reply,
            ending,
            status,
        }
    }
}
