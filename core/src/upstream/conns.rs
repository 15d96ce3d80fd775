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
/// open (idle and lent), and the requests waiting for one. Idle
/// connections are kept per worker ([`crate::workers::place`]): a
/// connection goes back to the list of the worker that used it, whose
/// reactor it is registered with, and each worker takes from its own list,
/// so workers share no lock on the request path; only a request that
/// finds the endpoint at its connection cap looks at the other lists.
pub(super) struct ExclusiveConns<T> {
    pub(super) idle: Box<[IdleList<T>]>,
    pub(super) open: AtomicUsize,
    pub(super) most_open: usize,
    pub(super) waiting: AtomicUsize,
    pub(super) freed: Notify,
}

/// One worker's idle connections (a cache line of its own, so workers
/// taking and giving back do not share one).
#[repr(align(128))]
pub(super) struct IdleList<T>(pub(super) std::sync::Mutex<Vec<Idle<T>>>);

impl<T> IdleList<T> {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle<T>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
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
        ex.own().lock().push(Idle {
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
    /// Empty lists, one per worker.
    pub(super) fn idle_lists() -> Box<[IdleList<T>]> {
        (0..crate::workers::places())
            .map(|_| IdleList(std::sync::Mutex::new(Vec::new())))
            .collect()
    }

    /// This worker's idle list.
    pub(super) fn own(&self) -> &IdleList<T> {
        &self.idle[crate::workers::place() % self.idle.len()]
    }

    /// Whether any worker has an idle connection.
    pub(super) fn has_idle(&self) -> bool {
        self.idle.iter().any(|l| !l.lock().is_empty())
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
