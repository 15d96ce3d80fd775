//! The connections of one endpoint, in one of three modes:
//! - `multiplex` and `pipeline`: a few connections shared by every request
//!   (answers matched by id, or in order), created lazily, replaced when they close;
//! - `exclusive`: one request per connection at a time; idle connections are
//!   reused, at most `connections_per_endpoint` are open, and a request waits
//!   (within its timeout) for one to free up.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::debug;

use crate::cluster::{CircuitBreaker, Cluster, Endpoint, Permit, PoolSettings, Resource};
use crate::codec::{Codec, UpstreamMode};
use crate::error::{ErrorKind, ErrorSource, ProxyError};

use super::connection::UpstreamConn;

/// Idle connections of an exclusive pool.
type IdleList<C> = Arc<Mutex<Vec<Arc<UpstreamConn<C>>>>>;

struct Slot<C: Codec> {
    conn: ArcSwapOption<UpstreamConn<C>>,
    connecting: tokio::sync::Mutex<()>,
}

enum Connections<C: Codec> {
    Shared {
        slots: Box<[Slot<C>]>,
        next: AtomicUsize,
    },
    Exclusive {
        idle: IdleList<C>,
        permits: Arc<Semaphore>,
    },
}

/// The connections of one endpoint.
pub struct EndpointPool<C: Codec> {
    address: SocketAddr,
    codec: Arc<C>,
    mode: UpstreamMode,
    connections: Connections<C>,
    connect_timeout: Duration,
    breaker: Arc<CircuitBreaker>,
    tls: Option<Arc<crate::tls::ClusterTls>>,
}

/// A connection lent to one request. In exclusive mode it goes back to the
/// idle list only if [`Lease::finish`] was called (the exchange completed);
/// a connection abandoned mid-exchange (timeout) is closed instead, so a late
/// answer can never reach the next request.
pub struct Lease<C: Codec> {
    conn: Arc<UpstreamConn<C>>,
    giveback: Option<(IdleList<C>, OwnedSemaphorePermit)>,
    finished: bool,
}

impl<C: Codec> Lease<C> {
    /// Marks the exchange complete: the connection may serve another request.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl<C: Codec> Deref for Lease<C> {
    type Target = UpstreamConn<C>;
    fn deref(&self) -> &UpstreamConn<C> {
        &self.conn
    }
}

impl<C: Codec> Drop for Lease<C> {
    fn drop(&mut self) {
        if let Some((idle, _permit)) = self.giveback.take() {
            if self.finished && self.conn.is_usable() {
                if let Ok(mut idle) = idle.lock() {
                    idle.push(self.conn.clone());
                }
            } else {
                self.conn.close();
            }
        }
    }
}

impl<C: Codec> EndpointPool<C> {
    /// The pool of `endpoint`, created on first use with the cluster's codec.
    pub fn of<'a>(endpoint: &'a Endpoint, cluster: &Cluster) -> Result<&'a Self, ProxyError> {
        let any = match endpoint.pool.get() {
            Some(p) => p,
            None => {
                let codec = cluster.parts.codec.clone().downcast::<C>().map_err(|_| {
                    ProxyError::new(
                        ErrorKind::Internal,
                        ErrorSource::Internal,
                        format!("cluster `{}` speaks another protocol", cluster.parts.name),
                    )
                })?;
                endpoint.pool.get_or_init(|| {
                    Arc::new(EndpointPool::new(
                        endpoint.address,
                        codec,
                        &cluster.parts.pool,
                    ))
                })
            }
        };
        any.downcast_ref::<Self>().ok_or_else(|| {
            ProxyError::new(
                ErrorKind::Internal,
                ErrorSource::Internal,
                format!(
                    "endpoint {} is pooled for another protocol",
                    endpoint.address
                ),
            )
        })
    }

    /// A pool for `address` with `settings`.
    pub fn new(address: SocketAddr, codec: Arc<C>, settings: &PoolSettings) -> Self {
        let size = settings.connections_per_endpoint.max(1);
        let connections = match settings.mode {
            UpstreamMode::Exclusive => Connections::Exclusive {
                idle: Arc::new(Mutex::new(Vec::new())),
                permits: Arc::new(Semaphore::new(size)),
            },
            UpstreamMode::Multiplex | UpstreamMode::Pipeline => Connections::Shared {
                slots: (0..size)
                    .map(|_| Slot {
                        conn: ArcSwapOption::empty(),
                        connecting: tokio::sync::Mutex::new(()),
                    })
                    .collect(),
                next: AtomicUsize::new(0),
            },
        };
        Self {
            address,
            codec,
            mode: settings.mode,
            connections,
            connect_timeout: settings.connect_timeout,
            breaker: settings.breaker.clone(),
            tls: settings.tls.clone(),
        }
    }

    /// The cluster-side codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// Number of open connections (shared modes) or idle ones (exclusive).
    pub fn open_connections(&self) -> usize {
        match &self.connections {
            Connections::Shared { slots, .. } => slots
                .iter()
                .filter(|s| s.conn.load().as_ref().is_some_and(|c| c.is_open()))
                .count(),
            Connections::Exclusive { idle, .. } => idle.lock().map_or(0, |i| i.len()),
        }
    }

    /// A connection for one request.
    pub async fn acquire(&self) -> Result<Lease<C>, ProxyError> {
        match &self.connections {
            Connections::Shared { slots, next } => {
                let conn = self.shared(slots, next).await?;
                Ok(Lease {
                    conn,
                    giveback: None,
                    finished: false,
                })
            }
            Connections::Exclusive { idle, permits } => {
                let permit = match permits.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        // Every connection is busy: wait, counted as pending.
                        let _pending = self.pending()?;
                        permits.clone().acquire_owned().await.map_err(|_| {
                            ProxyError::new(
                                ErrorKind::Internal,
                                ErrorSource::Internal,
                                "pool closed",
                            )
                        })?
                    }
                };
                let reused = {
                    let mut idle = idle.lock().map_err(|_| {
                        ProxyError::new(ErrorKind::Internal, ErrorSource::Internal, "pool poisoned")
                    })?;
                    let mut found = None;
                    while let Some(c) = idle.pop() {
                        if c.is_usable() {
                            found = Some(c);
                            break;
                        }
                    }
                    found
                };
                let conn = match reused {
                    Some(c) => c,
                    None => self.connect().await?,
                };
                Ok(Lease {
                    conn,
                    giveback: Some((idle.clone(), permit)),
                    finished: false,
                })
            }
        }
    }

    async fn shared(
        &self,
        slots: &[Slot<C>],
        next: &AtomicUsize,
    ) -> Result<Arc<UpstreamConn<C>>, ProxyError> {
        let slot = &slots[next.fetch_add(1, Ordering::Relaxed) % slots.len()];
        if let Some(conn) = slot.conn.load_full().filter(|c| c.is_usable()) {
            return Ok(conn);
        }
        let _pending = self.pending()?;
        let _guard = slot.connecting.lock().await;
        if let Some(conn) = slot.conn.load_full().filter(|c| c.is_usable()) {
            return Ok(conn);
        }
        match self.connect().await {
            Ok(conn) => {
                slot.conn.store(Some(conn.clone()));
                Ok(conn)
            }
            // Another slot may still have a live connection.
            Err(e) => slots
                .iter()
                .find_map(|s| s.conn.load_full().filter(|c| c.is_usable()))
                .ok_or(e),
        }
    }

    /// Counts a request waiting for a connection, or refuses it over the cap.
    fn pending(&self) -> Result<Permit, ProxyError> {
        self.breaker.try_acquire(Resource::Pending).ok_or_else(|| {
            ProxyError::new(
                ErrorKind::OverLimit,
                ErrorSource::Internal,
                format!(
                    "too many requests waiting for a connection to {}",
                    self.address
                ),
            )
        })
    }

    async fn connect(&self) -> Result<Arc<UpstreamConn<C>>, ProxyError> {
        let fail = |why: super::stream::ConnectError| {
            ProxyError::new(
                ErrorKind::ConnectFailure,
                ErrorSource::Upstream,
                format!("cannot connect to {}: {why}", self.address),
            )
            .with_cause(why)
        };
        let permit = self
            .breaker
            .try_acquire(Resource::Connection)
            .ok_or_else(|| {
                ProxyError::new(
                    ErrorKind::OverLimit,
                    ErrorSource::Internal,
                    format!("connection limit reached for {}", self.address),
                )
            })?;
        let stream =
            super::stream::connect(self.address, self.connect_timeout, self.tls.as_deref())
                .await
                .map_err(fail)?;
        debug!(address = %self.address, mode = ?self.mode, "upstream connection opened");
        let in_order = self.mode != UpstreamMode::Multiplex;
        Ok(UpstreamConn::start(
            self.codec.clone(),
            stream,
            self.address,
            in_order,
            Some(permit),
            self.breaker.limits.max_requests_per_connection,
        ))
    }
}
