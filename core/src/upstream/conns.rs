//! The state behind a [`Pool`](super::Pool): its slots of shared
//! connections or its idle exclusive ones, and how a connection comes
//! back to it or leaves it.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;

use super::connector::{ConnState, Connector};
use crate::cluster::{CircuitBreaker, Permit, Resource};
use crate::error::{ErrorKind, Origin, ProxyError};

/// A shared connection and how many requests it has taken.
pub struct SharedConn<T> {
    pub(super) conn: T,
    pub(super) uses: AtomicU64,
}

impl<T> Deref for SharedConn<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.conn
    }
}

/// One endpoint's pool: its connector, limits and connections.
pub(super) struct Inner<K: Connector> {
    pub(super) connector: K,
    pub(super) address: SocketAddr,
    pub(super) breaker: Arc<CircuitBreaker>,
    pub(super) max_uses: Option<u64>,
    pub(super) idle_timeout: Duration,
    pub(super) conns: Conns<K::Conn>,
}

/// The connections, in the pool's way of sharing.
pub(super) enum Conns<T> {
    Shared {
        slots: Box<[Slot<T>]>,
        next: AtomicUsize,
    },
    Exclusive(ExclusiveConns<T>),
}

/// One shared connection, opened lazily by one request at a time.
pub(super) struct Slot<T> {
    pub(super) conn: ArcSwapOption<SharedConn<T>>,
    pub(super) connecting: tokio::sync::Mutex<()>,
}

/// The exclusive connections of an endpoint: the idle ones, how many are
/// open (idle and lent), and the requests waiting for one.
pub(super) struct ExclusiveConns<T> {
    pub(super) idle: std::sync::Mutex<Vec<Idle<T>>>,
    pub(super) open: AtomicUsize,
    pub(super) most_open: usize,
    pub(super) waiting: AtomicUsize,
    pub(super) freed: Notify,
}

/// An exclusive connection waiting for its next request.
pub(super) struct Idle<T> {
    pub(super) conn: T,
    pub(super) since: Instant,
    pub(super) uses: u64,
}

impl<K: Connector> Inner<K> {
    /// One of the breaker's connection slots.
    pub(super) fn slot(&self) -> Result<Permit, ProxyError> {
        self.breaker
            .try_acquire(Resource::Connection)
            .ok_or_else(|| {
                ProxyError::new(
                    ErrorKind::OverLimit,
                    Origin::Internal,
                    format!("connection limit reached for {}", self.address),
                )
            })
    }

    /// Takes back an exclusive connection whose exchange is complete
    /// (as of `now`): kept idle if it can take another request, else closed.
    pub(super) fn give_back(&self, conn: K::Conn, uses: u64, now: Instant) {
        let Conns::Exclusive(ex) = &self.conns else {
            return;
        };
        let spent = self.max_uses.is_some_and(|max| uses >= max);
        if spent || self.connector.state(&conn) == ConnState::Closed {
            self.close(conn);
            return;
        }
        ex.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Idle {
                conn,
                since: now,
                uses,
            });
        ex.wake();
    }

    /// Closes an exclusive connection and frees its place.
    pub(super) fn close(&self, conn: K::Conn) {
        self.connector.discard(conn);
        if let Conns::Exclusive(ex) = &self.conns {
            ex.open.fetch_sub(1, Ordering::SeqCst);
            ex.wake();
        }
    }
}

impl<T> ExclusiveConns<T> {
    pub(super) fn has_idle(&self) -> bool {
        !self
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Wakes one waiting request, if any (no cost when none waits).
    pub(super) fn wake(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.freed.notify_one();
        }
    }
}

impl<T> SharedConn<T> {
    pub(super) fn new(conn: T) -> Self {
        Self {
            conn,
            uses: AtomicU64::new(0),
        }
    }

    /// Counts one more request; the count before it.
    pub(super) fn count_use(&self) -> u64 {
        self.uses.fetch_add(1, Ordering::Relaxed)
    }
}
