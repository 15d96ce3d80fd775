//! The body type the proxy answers with: a local reply's few bytes, or the
//! upstream's body (hyper's, or one the lean path reads off an HTTP/1.1
//! connection) streamed through with an idle timer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use metaproxy_core::cluster::{ActiveGuard, Permit};
use tokio::time::{Instant, Sleep};
use tracing::debug;

use super::grpc_cut::{MessageBoundary, status_trailers};
use super::h1::{ChunkError, LeanAnswerBody, Piece};
use super::upstream::H1Conn;

/// The error a streamed body ends with.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: empty, a small local reply, or an upstream body.
pub enum ProxyBody {
    /// No body.
    Empty,
    /// A local reply's text (taken on first poll).
    Full(Option<Bytes>),
    /// The upstream's body, streamed frame by frame (data and trailers).
    Stream(Box<Streamed>),
}

/// What an upstream answer holds until its body is done: the endpoint's
/// active-request count, the cluster's request permit (circuit breaker),
/// and the HTTP/1.1 connection (back to the pool when the body is complete).
#[derive(Debug, Default)]
pub struct Held {
    /// The endpoint's active-request guard.
    pub active: Option<ActiveGuard>,
    /// The circuit breaker's request permit.
    pub permit: Option<Permit>,
    /// The HTTP/1.1 connection the answer arrives on.
    pub conn: Option<H1Conn>,
}

/// Where an upstream body comes from.
pub enum Source {
    /// hyper's client (HTTP/2 upstreams, HTTP/1.1 over TLS or upgrades).
    Hyper(Incoming),
    /// The lean path's HTTP/1.1 connection (boxed: the hyper variant,
    /// the common one, keeps its size).
    Lean(Box<LeanAnswerBody>),
}

impl From<Incoming> for Source {
    fn from(body: Incoming) -> Self {
        Source::Hyper(body)
    }
}

impl Source {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self {
            Source::Hyper(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|e| Box::new(e) as BodyError))),
            Source::Lean(body) => body.poll_piece(cx).map(|p| {
                p.map(|r| match r {
                    Ok(Piece::Data(data)) => Ok(Frame::data(data)),
                    Ok(Piece::Trailers(trailers)) => Ok(Frame::trailers(trailers)),
                    Err(e) => Err(Box::new(e) as BodyError),
                })
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Source::Hyper(body) => body.is_end_stream(),
            Source::Lean(body) => body.is_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Source::Hyper(body) => body.size_hint(),
            Source::Lean(body) => body
                .remaining()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

/// An upstream body with its idle timer and what the exchange holds.
pub struct Streamed {
    inner: Source,
    idle: Duration,
    /// The whole answer's deadline (the route timeout).
    ends_by: Instant,
    /// Armed only once the body has to wait for data (most small answers
    /// never do), then reset by every frame.
    timer: Option<Pin<Box<Sleep>>>,
    ended: bool,
    held: Held,
    /// A frame (or the error) read ahead (the first of a chunked answer),
    /// given first.
    first: Option<Result<Frame<Bytes>, BodyError>>,
    /// A gRPC answer's message framing: cut between two messages, it ends
    /// with a `grpc-status` (see [`super::grpc_cut`]).
    grpc: Option<MessageBoundary>,
    /// Ended by the proxy with gRPC status trailers.
    cut: bool,
}

impl Drop for Streamed {
    fn drop(&mut self) {
        if let Some(conn) = self.held.conn.take()
            && (self.ended || self.inner.is_end_stream())
        {
            conn.release();
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no body data for {0:?} (stream idle timeout)")]
struct IdleTimeout(Duration);

#[derive(Debug, thiserror::Error)]
#[error("answer not complete within the route timeout")]
struct AnswerTimeout;

impl fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyBody::Empty => f.write_str("Empty"),
            ProxyBody::Full(b) => write!(f, "Full({})", b.as_ref().map_or(0, |b| b.len())),
            ProxyBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl ProxyBody {
    /// A body of `text`.
    pub fn full(text: impl Into<Bytes>) -> Self {
        let b = text.into();
        if b.is_empty() {
            ProxyBody::Empty
        } else {
            ProxyBody::Full(Some(b))
        }
    }

    /// Streams `inner`; fails the stream when no frame arrives for `idle`
    /// or when it is not over by `ends_by` (the route timeout); keeps
    /// `held` until the body ends or is dropped (an HTTP/1.1 connection
    /// goes back to its pool only if the body was complete).
    pub fn stream(inner: impl Into<Source>, idle: Duration, ends_by: Instant, held: Held) -> Self {
        ProxyBody::Stream(Box::new(Streamed {
            inner: inner.into(),
            idle,
            ends_by,
            timer: None,
            ended: false,
            held,
            first: None,
            grpc: None,
            cut: false,
        }))
    }

    /// Marks a gRPC answer: cut between two messages, it ends with trailers
    /// carrying a `grpc-status` instead of a stream reset.
    pub fn ending_grpc_cuts_with_status(mut self) -> Self {
        if let ProxyBody::Stream(s) = &mut self {
            s.grpc = Some(MessageBoundary::default());
        }
        self
    }

    /// Reads the first frame ahead (under the body's timers), so that a
    /// chunked answer whose framing is broken from its first line is
    /// refused (a 502) rather than relayed as a head and a cut body: that
    /// error is returned; any other outcome is kept and given first.
    pub(crate) async fn read_ahead(&mut self) -> Result<(), BodyError> {
        let ProxyBody::Stream(s) = self else {
            return Ok(());
        };
        let first = std::future::poll_fn(|cx| s.poll_upstream(cx)).await;
        match first {
            Some(Err(e)) if is_bad_framing(&*e) => Err(e),
            first => {
                s.first = first;
                Ok(())
            }
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ProxyBody::Empty => Poll::Ready(None),
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Stream(s) => s.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Stream(s) => s.cut || (s.first.is_none() && s.inner.is_end_stream()),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ProxyBody::Stream(s) => s.inner.size_hint(),
        }
    }
}

impl Streamed {
    /// The next frame: the one read ahead, else the upstream's; a gRPC
    /// answer failing between two messages ends with status trailers.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.cut {
            return Poll::Ready(None);
        }
        let polled = match self.first.take() {
            Some(first) => Poll::Ready(Some(first)),
            None => self.poll_upstream(cx),
        };
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(grpc), Some(data)) = (self.grpc.as_mut(), frame.data_ref()) {
                    grpc.relayed(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(self.failed(e))),
            other => other,
        }
    }

    /// The upstream's next frame, under the idle and whole-answer timers.
    fn poll_upstream(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(timer) = self.timer.as_mut() {
                    timer
                        .as_mut()
                        .reset((Instant::now() + self.idle).min(self.ends_by));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => {
                self.ended = true;
                // The exchange is over: the connection can serve the next
                // request while the client still reads this one.
                if let Some(conn) = self.held.conn.take() {
                    conn.release();
                }
                self.held.permit = None;
                self.held.active = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let wake = (Instant::now() + self.idle).min(self.ends_by);
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(wake)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) if Instant::now() >= self.ends_by => {
                        Poll::Ready(Some(Err(Box::new(AnswerTimeout))))
                    }
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(IdleTimeout(self.idle))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    /// How the body ends after `e`: status trailers for a gRPC answer
    /// relayed up to a message boundary (the upstream stream is dropped,
    /// hence cancelled), else the error (the client's stream is reset).
    fn failed(&mut self, e: BodyError) -> Result<Frame<Bytes>, BodyError> {
        if !self.grpc.as_ref().is_some_and(MessageBoundary::at_boundary) {
            return Err(e);
        }
        // Route timeout: DEADLINE_EXCEEDED; the upstream gone or silent:
        // UNAVAILABLE.
        let status = if e.is::<AnswerTimeout>() { 4 } else { 14 };
        debug!(error = %e, status, "gRPC answer cut by the proxy; ending it with status trailers");
        self.cut = true;
        self.held.permit = None;
        self.held.active = None;
        Ok(Frame::trailers(status_trailers(
            status,
            &format!("metaproxy: answer cut: {e}"),
        )))
    }
}

/// Whether a body error is the answer's chunk framing breaking the grammar
/// (the lean path's decoder says so; hyper's reports it as invalid input or
/// data), not the connection failing.
fn is_bad_framing(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<ChunkError>() {
            return true;
        }
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
