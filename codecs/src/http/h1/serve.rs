//! The lean path's connection loop: read a request head (idle timeout
//! before its first byte, header-read timeout after), answer bad input
//! itself (400, 408, 431), read a bounded body, forward, repeat. Anything
//! the lean path does not do (HTTP/2 prior knowledge, HTTP/1.0, chunked or
//! large request bodies, `Expect`, upgrades, listeners that route to
//! HTTP/2 clusters) is handed to hyper with the bytes already read, for
//! the rest of the connection.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http::header::HeaderValue;
use metaproxy_core::listener::ListenerContext;
use metaproxy_core::snapshot::{ListenerRuntime, Snapshot};
use metaproxy_core::{ErrorKind, Origin, ProxyError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Duration, Instant};
use tracing::debug;

use super::encode::local_answer;
use super::forward::{Request, Workspace, handle};
use super::head::{Head, HeadError, MAX_LEAN_BODY, MAX_LEAN_HEADERS, parse_request};
use super::pool::reserve;
use super::spare;
use crate::http::reply::{local_reply, text_reply};
use crate::http::request::ConnInfo;
use crate::http::route::all_targets_http1;
use metaproxy_core::deadline::LazyDeadline;

/// The HTTP/2 connection preface a prior-knowledge client starts with.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How long a connection closed after a bad request may keep sending
/// before it is dropped (so the error answer is not lost to a reset).
const LINGER: Duration = Duration::from_secs(1);
/// How much a lingering connection may still send.
const LINGER_BYTES: usize = 256 * 1024;

/// How a connection left the lean path.
pub(crate) enum Handoff {
    /// It is over.
    Done,
    /// hyper serves the rest: the socket and the bytes already read.
    Hyper(TcpStream, Bytes),
}

/// The listener as of now, and whether the lean path serves it (cached
/// per config version: while the snapshot is the same one, no lookup).
struct Current {
    cached: Option<(Arc<ListenerRuntime>, bool)>,
    snapshot: Option<Arc<Snapshot>>,
}

impl Current {
    /// The idle timeout as of the last request (the current config before
    /// the first one): waiting for a request costs no config lookup.
    fn idle_timeout(&self, ctx: &ListenerContext) -> Option<Duration> {
        match &self.cached {
            Some((l, _)) => Some(l.limits.idle_timeout),
            None => ctx
                .snapshot
                .load()
                .listener(&ctx.name)
                .map(|l| l.limits.idle_timeout),
        }
    }

    fn get(&mut self, ctx: &ListenerContext) -> Option<(Arc<ListenerRuntime>, bool)> {
        let snapshot = ctx.snapshot.load();
        if let (Some(seen), Some((listener, lean))) = (&self.snapshot, &self.cached)
            && Arc::ptr_eq(seen, &snapshot)
        {
            return Some((listener.clone(), *lean));
        }
        let listener = snapshot.listener(&ctx.name).cloned()?;
        self.snapshot = Some(Arc::clone(&snapshot));
        let lean = match &self.cached {
            Some((l, lean)) if Arc::ptr_eq(l, &listener) => *lean,
            _ => {
                let lean = all_targets_http1(&listener);
                self.cached = Some((listener.clone(), lean));
                lean
            }
        };
        Some((listener, lean))
    }
}

/// Serves HTTP/1.1 requests on `stream` until the connection ends or
/// needs hyper.
pub(crate) async fn serve(
    mut stream: TcpStream,
    read: Bytes,
    ctx: &ListenerContext,
    info: &ConnInfo,
) -> Handoff {
    // Bytes protocol detection read already are the start of the first head.
    let mut buf = BytesMut::new();
    if !read.is_empty() {
        buf = spare::read_buffer();
        buf.extend_from_slice(&read);
    }
    let mut work = Workspace::default();
    let mut idle_deadline: Option<LazyDeadline> = None;
    let mut current = Current {
        cached: None,
        snapshot: None,
    };
    let mut first = true;
    // The connection's own child of the listener's token: its waiter is
    // registered once, and the per-request checks lock this connection's
    // token only, never one shared with the other workers. Each idle wait
    // polls it first, so a request is not started after shutdown began.
    let own = ctx.shutdown.child_token();
    let mut shutdown = std::pin::pin!(own.cancelled());
    loop {
        if buf.is_empty() {
            let Some(idle) = current.idle_timeout(ctx) else {
                return Handoff::Done;
            };
            // No buffer is held while the connection waits: an idle
            // keep-alive connection costs its task and its socket only.
            spare::return_read_buffer(std::mem::take(&mut buf));
            spare::return_scratch_buffer(std::mem::take(&mut work.scratch));
            let deadline = LazyDeadline::arm(&mut idle_deadline, Instant::now() + idle);
            tokio::select! {
                biased;
                () = &mut shutdown => return Handoff::Done,
                r = read_when_ready(&mut stream, &mut buf) => match r {
                    Ok(n) if n > 0 => {}
                    Ok(_) => return Handoff::Done,
                    Err(e) => {
                        debug!(listener = %ctx.name, error = %e, "client read failed");
                        return Handoff::Done;
                    }
                },
                () = deadline.expired() => {
                    debug!(listener = %ctx.name, ?idle, "idle timeout");
                    return Handoff::Done;
                }
            }
        }
        // The config as of this request's first byte.
        let Some((listener, lean)) = current.get(ctx) else {
            let err = ProxyError::new(
                ErrorKind::RouteNotFound,
                Origin::Internal,
                "listener removed",
            );
            let _ = stream
                .write_all(&local_answer(local_reply(&err, false), true))
                .await;
            return Handoff::Done;
        };
        if !lean {
            return Handoff::Hyper(stream, buf.freeze());
        }
        let limits = &listener.limits;
        // The head must arrive within this; read only when a head is split
        // over several reads.
        let mut head_deadline = None;
        let mut deadline =
            || *head_deadline.get_or_insert_with(|| Instant::now() + limits.header_read_timeout);
        if first {
            first = false;
            match read_preface(&mut stream, &mut buf, deadline()).await {
                Some(true) => return Handoff::Hyper(stream, buf.freeze()),
                Some(false) => {}
                None => return Handoff::Done,
            }
        }
        let head = loop {
            match parse_request(&mut buf, limits.max_headers) {
                Ok(Some(head)) if head.bytes.len() > limits.max_header_bytes => {
                    return refuse(stream, head_too_large(limits.max_header_bytes)).await;
                }
                Ok(Some(head)) => break head,
                Ok(None) if buf.len() >= limits.max_header_bytes => {
                    return refuse(stream, head_too_large(limits.max_header_bytes)).await;
                }
                Ok(None) => {
                    reserve(&mut buf);
                    match tokio::time::timeout_at(deadline(), stream.read_buf(&mut buf)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        Ok(_) => return Handoff::Done,
                        Err(_) => {
                            debug!(listener = %ctx.name, "request head not received in time");
                            let resp = text_reply(
                                StatusCode::REQUEST_TIMEOUT,
                                HeaderValue::from_static("header_read_timeout"),
                                "metaproxy: request head not received in time\n".into(),
                            );
                            return refuse(stream, resp).await;
                        }
                    }
                }
                Err(HeadError::TooManyHeaders) if limits.max_headers > MAX_LEAN_HEADERS => {
                    return Handoff::Hyper(stream, buf.freeze());
                }
                Err(HeadError::TooManyHeaders) => {
                    let resp = text_reply(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        HeaderValue::from_static("too_many_headers"),
                        format!("metaproxy: more than {} headers\n", limits.max_headers),
                    );
                    return refuse(stream, resp).await;
                }
                Err(HeadError::Malformed(why)) => {
                    debug!(listener = %ctx.name, why, "malformed request head");
                    let resp = text_reply(
                        StatusCode::BAD_REQUEST,
                        HeaderValue::from_static("bad_request"),
                        format!("metaproxy: {why}\n"),
                    );
                    return refuse(stream, resp).await;
                }
            }
        };
        let Some(length) = lean_body_length(&head) else {
            // hyper takes it from this request's head on.
            let mut again = BytesMut::with_capacity(head.bytes.len() + buf.len());
            again.extend_from_slice(&head.bytes);
            again.extend_from_slice(&buf);
            return Handoff::Hyper(stream, again.freeze());
        };
        while buf.len() < length {
            reserve(&mut buf);
            match tokio::time::timeout(limits.idle_timeout, stream.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => {
                    debug!(listener = %ctx.name, "client went away in the middle of a body");
                    return Handoff::Done;
                }
            }
        }
        let body = buf.split_to(length).freeze();
        let close = head.connection_has(b"close");
        if work.scratch.capacity() == 0 {
            work.scratch = spare::scratch_buffer();
        }
        let request = Request { head, body, close };
        let keep = handle(&listener, info, request, &mut stream, &mut work).await;
        drop(listener);
        // A pipelined request waits in `buf`: it is not started after
        // shutdown began (an empty `buf` goes through the idle wait, which
        // checks first).
        if !keep || (!buf.is_empty() && own.is_cancelled()) {
            return Handoff::Done;
        }
    }
}

/// Waits until the client sends something, then reads it into a buffer
/// from the worker's stock. The read goes through `AsyncRead`, which marks the socket
/// drained after a short read: the next wait for readiness then goes to
/// the reactor directly instead of costing a `recv` that would block.
async fn read_when_ready(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<usize> {
    stream.readable().await?;
    *buf = spare::read_buffer();
    stream.read_buf(buf).await
}

/// Reads until the bytes either are or cannot be the HTTP/2 preface:
/// `Some(true)` for HTTP/2, `None` when the client left or stalled.
async fn read_preface(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    deadline: Instant,
) -> Option<bool> {
    loop {
        let n = buf.len().min(PREFACE.len());
        if buf[..n] != PREFACE[..n] {
            return Some(false);
        }
        if n == PREFACE.len() {
            return Some(true);
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    }
}

/// The body length when the lean path can serve this request, `None` when
/// hyper should.
fn lean_body_length(head: &Head) -> Option<usize> {
    let method = head.at(&head.first);
    let target = head.at(&head.second);
    let simple = head.minor == 1
        && method != b"CONNECT"
        && target.first() == Some(&b'/')
        && head.count(b"host") == 1
        && head.header(b"transfer-encoding").is_none()
        && head.header(b"expect").is_none()
        && head.header(b"upgrade").is_none();
    if !simple {
        return None;
    }
    match head.content_length() {
        Ok(None) => Some(0),
        Ok(Some(n)) if n <= MAX_LEAN_BODY as u64 => usize::try_from(n).ok(),
        _ => None,
    }
}

fn head_too_large(limit: usize) -> http::Response<crate::http::ProxyBody> {
    text_reply(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        HeaderValue::from_static("header_too_large"),
        format!("metaproxy: request head larger than {limit} bytes\n"),
    )
}

/// Answers a request the proxy will not read further, then closes
/// gracefully: the client's remaining bytes are read and dropped for a
/// moment so that closing does not reset the connection (which would lose
/// the answer).
async fn refuse(mut stream: TcpStream, resp: http::Response<crate::http::ProxyBody>) -> Handoff {
    let _ = stream.write_all(&local_answer(resp, true)).await;
    let _ = stream.shutdown().await;
    let linger = async {
        let mut sink = [0u8; 8192];
        let mut total = 0;
        while total < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(n) if n > 0 => total += n,
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, linger).await;
    Handoff::Done
}
