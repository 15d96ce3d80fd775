//! Per-endpoint upstream connections.
//!
//! Per-endpoint upstream connections, in core's [`Pool`]s.
//!
//! HTTP/2: `connections_per_endpoint` shared connections (default 2), each
//! carrying many concurrent streams; a closed one is replaced on next use.
//! HTTP/1.1: keep-alive connections, one request at a time each. The
//! connection of an answer travels with the answer's body ([`H1Conn`]) and
//! goes back to the idle list as soon as that body has been read to the end
//! (no task, no timer); a body dropped early takes its connection with it.
//! Idle connections older than the cluster's `idle_timeout` are closed.
//! Every connection holds one of the breaker's connection slots, and
//! `max_requests_per_connection` applies to both versions.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use metaproxy_core::ProxyError;
use metaproxy_core::cluster::{Permit, PoolSettings};
use metaproxy_core::tls::ClusterTls;
use metaproxy_core::upstream::{
    self, ConnState, ConnectError, Connector, Exclusive, Pool, PoolOptions, Reuse, Sharing,
    UpstreamStream,
};
use tracing::debug;

use super::conn_tasks::{ConnTasks, drive};
use super::error::HttpError;

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

/// An HTTP/1.1 connection lent to one exchange; [`Exclusive::release`]
/// gives it back once the answer's body has been read to the end.
pub type H1Conn = Exclusive<H1Connector>;

/// One endpoint's HTTP connections (kept in the endpoint's pool slot):
/// shared HTTP/2 connections, hyper's HTTP/1.1 connections, and the lean
/// path's HTTP/1.1 sockets, each a core [`Pool`] under the cluster's
/// circuit breaker.
pub struct HttpPool {
    h2: Pool<H2Connector>,
    h1: Pool<H1Connector>,
    pub(crate) lean: Pool<super::h1::LeanConnector>,
}

impl std::fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPool")
            .field("address", &self.h2.address())
            .finish_non_exhaustive()
    }
}

impl HttpPool {
    /// The pools of `address` under the cluster's `settings`:
    /// `connections_per_endpoint` shared HTTP/2 connections; HTTP/1.1
    /// connections as many as the breaker's `max_connections` allows.
    pub fn new(address: SocketAddr, settings: &PoolSettings) -> Self {
        let dial = Dialer {
            connect_timeout: settings.connect_timeout,
            tls: settings.tls.clone(),
        };
        let options = |sharing| PoolOptions {
            sharing,
            breaker: settings.breaker.clone(),
            idle_timeout: settings.idle_timeout,
        };
        let h2 = Sharing::Shared {
            connections: settings.connections_per_endpoint,
        };
        let h1 = Sharing::Exclusive {
            most_open: usize::MAX,
        };
        let lean = super::h1::LeanConnector {
            connect_timeout: settings.connect_timeout,
        };
        Self {
            h2: Pool::new(H2Connector(dial.clone()), address, &options(h2)),
            h1: Pool::new(H1Connector(dial), address, &options(h1)),
            lean: Pool::new(lean, address, &options(h1)),
        }
    }

    /// The connections that carry a request of `version`.
    pub(crate) fn for_version(&self, version: http::Version) -> HttpConns {
        if version == http::Version::HTTP_2 {
            HttpConns::H2(self.h2.clone())
        } else {
            HttpConns::H1(self.h1.clone())
        }
    }
}

/// The pool one request goes out on.
pub(crate) enum HttpConns {
    /// Shared HTTP/2 connections.
    H2(Pool<H2Connector>),
    /// HTTP/1.1 connections, one exchange at a time.
    H1(Pool<H1Connector>),
}

impl HttpConns {
    /// One exchange: the answer's head and, for HTTP/1.1, its connection.
    pub(crate) async fn send(
        &self,
        req: Request<UpstreamBody>,
    ) -> Result<(Response<Incoming>, Option<H1Conn>), ProxyError> {
        match self {
            HttpConns::H2(pool) => send_h2(pool, req).await.map(|r| (r, None)),
            HttpConns::H1(pool) => send_h1(pool, req).await.map(|(r, c)| (r, Some(c))),
        }
    }
}

/// Opens a connection to an endpoint, TLS when the cluster has it.
#[derive(Clone)]
struct Dialer {
    connect_timeout: Duration,
    tls: Option<Arc<ClusterTls>>,
}

impl Dialer {
    async fn open(&self, address: SocketAddr) -> Result<TokioIo<UpstreamStream>, HttpError> {
        let tls = self.tls.as_deref();
        match upstream::connect(address, self.connect_timeout, tls).await {
            Ok(stream) => Ok(TokioIo::new(stream)),
            Err(ConnectError::Timeout(timeout)) => {
                Err(HttpError::ConnectTimeout { address, timeout })
            }
            Err(ConnectError::Tcp(source)) => Err(HttpError::Connect { address, source }),
            Err(ConnectError::Tls(source)) => Err(HttpError::Tls { address, source }),
        }
    }
}

/// Opens shared HTTP/2 connections (hyper's, driven by a task that holds
/// the breaker's connection slot).
pub struct H2Connector(Dialer);

impl Connector for H2Connector {
    type Conn = http2::SendRequest<UpstreamBody>;

    async fn connect(&self, address: SocketAddr, slot: Permit) -> Result<Self::Conn, ProxyError> {
        let io = self
            .0
            .open(address)
            .await
            .map_err(HttpError::into_proxy_error)?;
        // The connection's driver and its streams' futures run on the
        // connection's task (see `conn_tasks`).
        let (tasks, exec) = ConnTasks::new();
        let (sender, conn) = http2::Builder::new(exec)
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(|source| HttpError::Handshake { address, source }.into_proxy_error())?;
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = drive(conn, tasks).await {
                debug!(%address, error = %e, "upstream h2 connection ended");
            }
        });
        Ok(sender)
    }

    fn state(&self, conn: &Self::Conn) -> ConnState {
        if conn.is_closed() {
            ConnState::Closed
        } else {
            ConnState::Ready
        }
    }
}

/// Opens hyper's HTTP/1.1 connections (with upgrades: a 101 hands the
/// connection to a tunnel).
pub struct H1Connector(Dialer);

impl Connector for H1Connector {
    type Conn = http1::SendRequest<UpstreamBody>;

    async fn connect(&self, address: SocketAddr, slot: Permit) -> Result<Self::Conn, ProxyError> {
        let io = self
            .0
            .open(address)
            .await
            .map_err(HttpError::into_proxy_error)?;
        let (sender, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|source| HttpError::Handshake { address, source }.into_proxy_error())?;
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = conn.with_upgrades().await {
                debug!(%address, error = %e, "upstream h1 connection ended");
            }
        });
        Ok(sender)
    }

    /// A connection still finishing its last exchange stays idle.
    fn state(&self, conn: &Self::Conn) -> ConnState {
        if conn.is_closed() {
            ConnState::Closed
        } else if conn.is_ready() {
            ConnState::Ready
        } else {
            ConnState::Busy
        }
    }
}

/// Sends `req` (absolute URI) on a shared HTTP/2 connection.
async fn send_h2(
    pool: &Pool<H2Connector>,
    req: Request<UpstreamBody>,
) -> Result<Response<Incoming>, ProxyError> {
    let address = pool.address();
    let exchange = |source| HttpError::Exchange { address, source }.into_proxy_error();
    let mut sender = (**pool.acquire_shared().await?).clone();
    sender.ready().await.map_err(exchange)?;
    sender.send_request(req).await.map_err(exchange)
}

/// Sends `req` (origin-form URI, `host` set) on an idle or new HTTP/1.1
/// connection; a pooled connection that turns out closed before the
/// request was written is replaced once. The connection comes back with
/// the answer: release it when the answer's body is complete.
async fn send_h1(
    pool: &Pool<H1Connector>,
    req: Request<UpstreamBody>,
) -> Result<(Response<Incoming>, H1Conn), ProxyError> {
    let address = pool.address();
    let mut req = req;
    let mut reuse = Reuse::Idle;
    loop {
        let mut conn = pool.acquire_exclusive(reuse, Instant::now()).await?;
        let pooled = conn.reused();
        match conn.try_send_request(req).await {
            Ok(resp) => return Ok((resp, conn)),
            Err(mut e) => match e.take_message() {
                Some(back) if pooled => {
                    debug!(%address, error = %e.error(), "pooled connection closed; retrying on a new one");
                    req = back;
                    reuse = Reuse::New;
                }
                _ => {
                    return Err(HttpError::Exchange {
                        address,
                        source: e.into_error(),
                    }
                    .into_proxy_error());
                }
            },
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
