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
use metaproxy_core::cluster::ActiveGuard;
use tokio::time::{Instant, Sleep};

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

/// An upstream body with its idle timer and the endpoint's active-request guard.
pub struct Streamed {
    inner: Incoming,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    _active: Option<ActiveGuard>,
}

#[derive(Debug, thiserror::Error)]
#[error("no body data for {0:?} (idle timeout)")]
struct IdleTimeout(Duration);

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

    /// Streams `inner`; fails the stream when no frame arrives for `idle`;
    /// keeps the endpoint's request counted until the body ends.
    pub fn stream(inner: Incoming, idle: Duration, active: Option<ActiveGuard>) -> Self {
        ProxyBody::Stream(Box::new(Streamed {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            _active: active,
        }))
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
            ProxyBody::Stream(s) => match Pin::new(&mut s.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let deadline = Instant::now() + s.idle;
                    s.timer.as_mut().reset(deadline);
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => match s.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(IdleTimeout(s.idle))))),
                    Poll::Pending => Poll::Pending,
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Stream(s) => s.inner.is_end_stream(),
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
