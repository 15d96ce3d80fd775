//! Per-endpoint upstream connections.
//!
//! HTTP/2: `connections_per_endpoint` shared connections (default 2), each
//! carrying many concurrent streams; a closed one is replaced on next use.
//! HTTP/1.1: keep-alive connections, one request at a time each; a
//! connection goes back to the idle list once its response body has been
//! read to the end, and idle connections older than [`H1_IDLE_TIMEOUT`]
//! are closed. At most [`H1_MAX_IDLE`] idle connections are kept.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tracing::debug;

use super::error::HttpError;

/// How long an idle HTTP/1.1 upstream connection is kept.
pub const H1_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most idle HTTP/1.1 connections kept per endpoint.
pub const H1_MAX_IDLE: usize = 256;

/// The body sent upstream: the client's, streamed.
pub type UpstreamBody = Incoming;

/// One endpoint's HTTP connections (kept in `Endpoint::pool`).
pub struct HttpPool {
    address: SocketAddr,
    connect_timeout: Duration,
    h2_slots: Vec<tokio::sync::Mutex<Option<http2::SendRequest<UpstreamBody>>>>,
    h2_next: AtomicUsize,
    h1_idle: Mutex<Vec<(http1::SendRequest<UpstreamBody>, Instant)>>,
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
    /// A pool for `address` with `h2_connections` shared HTTP/2 connections.
    pub fn new(address: SocketAddr, connect_timeout: Duration, h2_connections: usize) -> Self {
        Self {
            address,
            connect_timeout,
            h2_slots: (0..h2_connections.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            h2_next: AtomicUsize::new(0),
            h1_idle: Mutex::new(Vec::new()),
        }
    }

    async fn connect(&self) -> Result<TokioIo<TcpStream>, HttpError> {
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
        Ok(TokioIo::new(stream))
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

    fn take_idle_h1(&self) -> Option<http1::SendRequest<UpstreamBody>> {
        let mut idle = self.h1_idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((s, since)) = idle.pop() {
            if s.is_ready() && !s.is_closed() && since.elapsed() < H1_IDLE_TIMEOUT {
                return Some(s);
            }
        }
        None
    }

    fn put_idle_h1(&self, sender: http1::SendRequest<UpstreamBody>) {
        let mut idle = self.h1_idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|(s, since)| !s.is_closed() && since.elapsed() < H1_IDLE_TIMEOUT);
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
            if let Err(e) = conn.await {
                debug!(%address, error = %e, "upstream h1 connection ended");
            }
        });
        Ok(sender)
    }

    /// Sends `req` (origin-form URI, `host` set) on an idle or new
    /// HTTP/1.1 connection; a pooled connection that turns out closed
    /// before the request was written is replaced once.
    pub async fn send_h1(
        self: &Arc<Self>,
        req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, HttpError> {
        let mut req = req;
        let mut pooled = true;
        loop {
            let mut sender = match self.take_idle_h1() {
                Some(s) => s,
                None => {
                    pooled = false;
                    self.new_h1().await?
                }
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let pool = self.clone();
                    tokio::spawn(async move {
                        if sender.ready().await.is_ok() {
                            pool.put_idle_h1(sender);
                        }
                    });
                    return Ok(resp);
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
