//! Per-endpoint upstream connections.
//!
//! HTTP/2: `connections_per_endpoint` shared connections (default 2), each
//! carrying many concurrent streams; a closed one is replaced on next use.
//! HTTP/1.1: keep-alive connections, one request at a time each. The
//! connection of an answer travels with the answer's body ([`H1Conn`]) and
//! goes back to the idle list as soon as that body has been read to the end
//! (no task, no timer); a body dropped early takes its connection with it.
//! Idle connections older than [`H1_IDLE_TIMEOUT`] are closed, and at most
//! [`H1_MAX_IDLE`] are kept.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use metaproxy_core::tls::ClusterTls;
use metaproxy_core::upstream::{self, ConnectError, UpstreamStream};
use tokio::net::TcpStream;
use tracing::debug;

use super::error::HttpError;

/// How long an idle HTTP/1.1 upstream connection is kept.
pub const H1_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most idle HTTP/1.1 connections kept per endpoint.
pub const H1_MAX_IDLE: usize = 256;

/// The body sent upstream: the client's, streamed, or none (bodiless
/// requests, which can be sent again: retries and mirrors).
#[derive(Debug)]
pub enum UpstreamBody {
    /// No body.
    Empty,
    /// The client's body, streamed.
    Client(Incoming),
    /// The client's body, streamed and kept for a retry.
    Replay(super::replay::Cursor<Incoming>),
    /// A whole body already read (a mirror's copy): its data, then trailers.
    Kept(std::collections::VecDeque<Bytes>, Option<http::HeaderMap>),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = super::replay::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            UpstreamBody::Empty => Poll::Ready(None),
            UpstreamBody::Client(b) => Pin::new(b).poll_frame(cx).map(|f| {
                f.map(|r| {
                    r.map_err(|e| Box::new(ClientBodyError(e.into())) as super::replay::BoxError)
                })
            }),
            UpstreamBody::Replay(b) => Pin::new(b).poll_frame(cx),
            UpstreamBody::Kept(chunks, trailers) => Poll::Ready(match chunks.pop_front() {
                Some(data) => Some(Ok(Frame::data(data))),
                None => trailers.take().map(|t| Ok(Frame::trailers(t))),
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Empty => true,
            UpstreamBody::Client(b) => b.is_end_stream(),
            UpstreamBody::Replay(b) => b.is_end_stream(),
            UpstreamBody::Kept(chunks, trailers) => chunks.is_empty() && trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Empty => SizeHint::with_exact(0),
            UpstreamBody::Client(b) => b.size_hint(),
            UpstreamBody::Replay(_) => SizeHint::default(),
            UpstreamBody::Kept(chunks, _) => {
                SizeHint::with_exact(chunks.iter().map(|c| c.len() as u64).sum())
            }
        }
    }
}

/// Reading the client's request body failed (broken chunked framing, a
/// chunk size too large, the client gone): the request's fault, answered
/// `400`, not the upstream's.
#[derive(Debug, thiserror::Error)]
#[error("client request body: {0}")]
pub struct ClientBodyError(#[source] pub super::replay::BoxError);

/// Whether `error` or one of its causes is a [`ClientBodyError`].
pub(crate) fn is_client_body_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<ClientBodyError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// An HTTP/1.1 connection lent to one exchange; [`H1Conn::release`] gives
/// it back once the answer's body has been read to the end.
pub struct H1Conn {
    pool: Arc<HttpPool>,
    sender: http1::SendRequest<UpstreamBody>,
}

impl std::fmt::Debug for H1Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Conn")
            .field("address", &self.pool.address)
            .finish_non_exhaustive()
    }
}

impl H1Conn {
    /// Returns the connection to its pool's idle list (its answer is complete).
    pub fn release(self) {
        self.pool.put_idle_h1(self.sender);
    }
}

/// One endpoint's HTTP connections (kept in `Endpoint::pool`).
pub struct HttpPool {
    address: SocketAddr,
    connect_timeout: Duration,
    h2_slots: Vec<tokio::sync::Mutex<Option<http2::SendRequest<UpstreamBody>>>>,
    h2_next: AtomicUsize,
    h1_idle: Mutex<Vec<(http1::SendRequest<UpstreamBody>, Instant)>>,
    lean_idle: Mutex<Vec<(super::h1::LeanConn, Instant)>>,
    tls: Option<Arc<ClusterTls>>,
}

impl std::fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPool")
            .field("address", &self.address)
            .field("h2_connections", &self.h2_slots.len())
            .finish_non_exhaustive()
    }
}

impl HttpPool {
    /// A pool for `address` with `h2_connections` shared HTTP/2 connections,
    /// speaking TLS when `tls` is set.
    pub fn new(
        address: SocketAddr,
        connect_timeout: Duration,
        h2_connections: usize,
        tls: Option<Arc<ClusterTls>>,
    ) -> Self {
        Self {
            address,
            connect_timeout,
            h2_slots: (0..h2_connections.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            h2_next: AtomicUsize::new(0),
            h1_idle: Mutex::new(Vec::new()),
            lean_idle: Mutex::new(Vec::new()),
            tls,
        }
    }

    /// The endpoint's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The lean HTTP/1.1 path's idle connections, newest last.
    pub(crate) fn lean_idle(&self) -> &Mutex<Vec<(super::h1::LeanConn, Instant)>> {
        &self.lean_idle
    }

    /// A new connection to the endpoint, TLS when the cluster has it.
    async fn connect(&self) -> Result<TokioIo<UpstreamStream>, HttpError> {
        let tls = self.tls.as_deref();
        match upstream::connect(self.address, self.connect_timeout, tls).await {
            Ok(stream) => Ok(TokioIo::new(stream)),
            Err(ConnectError::Timeout(timeout)) => Err(HttpError::ConnectTimeout {
                address: self.address,
                timeout,
            }),
            Err(ConnectError::Tcp(source)) => Err(HttpError::Connect {
                address: self.address,
                source,
            }),
            Err(ConnectError::Tls(source)) => Err(HttpError::Tls {
                address: self.address,
                source,
            }),
        }
    }

    /// A new TCP connection to the endpoint (no delay), within the
    /// cluster's connect timeout.
    pub(crate) async fn connect_tcp(&self) -> Result<TcpStream, HttpError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.address))
            .await
            .map_err(|_| HttpError::ConnectTimeout {
                address: self.address,
                timeout: self.connect_timeout,
            })?
            .map_err(|source| HttpError::Connect {
                address: self.address,
                source,
            })?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Sends `req` (absolute URI) on a shared HTTP/2 connection.
    pub async fn send_h2(
        &self,
        req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, HttpError> {
        let slot =
            &self.h2_slots[self.h2_next.fetch_add(1, Ordering::Relaxed) % self.h2_slots.len()];
        let mut sender = {
            let mut guard = slot.lock().await;
            match guard.as_ref() {
                Some(s) if !s.is_closed() => s.clone(),
                _ => {
                    let io = self.connect().await?;
                    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                        .timer(TokioTimer::new())
                        .handshake(io)
                        .await
                        .map_err(|source| HttpError::Handshake {
                            address: self.address,
                            source,
                        })?;
                    let address = self.address;
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            debug!(%address, error = %e, "upstream h2 connection ended");
                        }
                    });
                    *guard = Some(sender.clone());
                    sender
                }
            }
        };
        sender.ready().await.map_err(|source| HttpError::Exchange {
            address: self.address,
            source,
        })?;
        sender
            .send_request(req)
            .await
            .map_err(|source| HttpError::Exchange {
                address: self.address,
                source,
            })
    }

    /// The most recently used idle connection that is ready for a request.
    /// Connections still finishing their last exchange stay listed; closed
    /// or expired ones are dropped.
    fn take_idle_h1(&self) -> Option<http1::SendRequest<UpstreamBody>> {
        let mut idle = self.h1_idle.lock().unwrap_or_else(|p| p.into_inner());
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            let (s, _) = &idle[i];
            if s.is_closed() {
                idle.swap_remove(i);
            } else if s.is_ready() {
                let (s, since) = idle.swap_remove(i);
                if since.elapsed() < H1_IDLE_TIMEOUT {
                    return Some(s);
                }
            }
        }
        None
    }

    fn put_idle_h1(&self, sender: http1::SendRequest<UpstreamBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.h1_idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() >= H1_MAX_IDLE {
            // Make room by dropping closed ones; if none, this one is closed.
            idle.retain(|(s, _)| !s.is_closed());
        }
        if idle.len() < H1_MAX_IDLE {
            idle.push((sender, Instant::now()));
        }
    }

    async fn new_h1(&self) -> Result<http1::SendRequest<UpstreamBody>, HttpError> {
        let io = self.connect().await?;
        let (sender, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|source| HttpError::Handshake {
                address: self.address,
                source,
            })?;
        let address = self.address;
        tokio::spawn(async move {
            // With upgrades: a 101 hands the connection to a tunnel.
            if let Err(e) = conn.with_upgrades().await {
                debug!(%address, error = %e, "upstream h1 connection ended");
            }
        });
        Ok(sender)
    }

    /// Sends `req` (origin-form URI, `host` set) on an idle or new
    /// HTTP/1.1 connection; a pooled connection that turns out closed
    /// before the request was written is replaced once. The connection comes
    /// back with the answer: release it when the answer's body is complete.
    pub async fn send_h1(
        self: &Arc<Self>,
        req: Request<UpstreamBody>,
    ) -> Result<(Response<Incoming>, H1Conn), HttpError> {
        let mut req = req;
        loop {
            let (mut sender, pooled) = match self.take_idle_h1() {
                Some(s) => (s, true),
                None => (self.new_h1().await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let conn = H1Conn {
                        pool: self.clone(),
                        sender,
                    };
                    return Ok((resp, conn));
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if pooled => {
                        debug!(address = %self.address, error = %e.error(), "pooled connection closed; retrying on a new one");
                        req = back;
                    }
                    _ => {
                        return Err(HttpError::Exchange {
                            address: self.address,
                            source: e.into_error(),
                        });
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error caused by another, as hyper wraps a body's error.
    #[derive(Debug, thiserror::Error)]
    #[error("exchange failed")]
    struct Wrapper(#[source] Box<dyn std::error::Error + Send + Sync>);

    #[test]
    fn a_client_body_error_is_found_among_the_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad chunk size");
        let body = ClientBodyError(Box::new(io));
        assert!(is_client_body_error(&Wrapper(Box::new(body))));
        let other = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(!is_client_body_error(&Wrapper(Box::new(other))));
        assert!(!is_client_body_error(&Wrapper(Box::new(Wrapper(
            Box::new(std::fmt::Error)
        )))));
    }
}
