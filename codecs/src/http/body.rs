//! The body type the proxy answers with: a local reply's few bytes, or the
//! upstream's body streamed through with an idle timer.

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

/// An upstream body with its idle timer and what the exchange holds.
pub struct Streamed {
    inner: Incoming,
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

/// The error a streamed body yields after `idle` without data.
pub(crate) fn idle_error(idle: Duration) -> BodyError {
    Box::new(IdleTimeout(idle))
}

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
    pub fn stream(inner: Incoming, idle: Duration, ends_by: Instant, held: Held) -> Self {
        ProxyBody::Stream(Box::new(Streamed {
            inner,
            idle,
            ends_by,
            timer: None,
            ended: false,
            held,
            first: None,
        }))
    }

    /// [`ProxyBody::stream`] whose first frame (or error) was already read.
    pub fn stream_after(
        first: Option<Result<Frame<Bytes>, BodyError>>,
        inner: Incoming,
        (idle, ends_by): (Duration, Instant),
        held: Held,
    ) -> Self {
        let mut body = Self::stream(inner, idle, ends_by, held);
        if let ProxyBody::Stream(s) = &mut body {
            s.first = first;
        }
        body
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
            ProxyBody::Stream(s) if s.first.is_some() => Poll::Ready(s.first.take()),
            ProxyBody::Stream(s) => match Pin::new(&mut s.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(timer) = s.timer.as_mut() {
                        timer
                            .as_mut()
                            .reset((Instant::now() + s.idle).min(s.ends_by));
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Ready(None) => {
                    s.ended = true;
                    // The exchange is over: the connection can serve the
                    // next request while the client still reads this one.
                    if let Some(conn) = s.held.conn.take() {
                        conn.release();
                    }
                    s.held.permit = None;
                    s.held.active = None;
                    Poll::Ready(None)
                }
                Poll::Pending => {
                    let wake = (Instant::now() + s.idle).min(s.ends_by);
                    let timer = s
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(wake)));
                    match timer.as_mut().poll(cx) {
                        Poll::Ready(()) if Instant::now() >= s.ends_by => {
                            Poll::Ready(Some(Err(Box::new(AnswerTimeout))))
                        }
                        Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(IdleTimeout(s.idle))))),
                        Poll::Pending => Poll::Pending,
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Stream(s) => s.first.is_none() && s.inner.is_end_stream(),
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
