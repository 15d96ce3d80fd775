//! One endpoint's upstream connections, for every protocol. A
//! [`Connector`] says how to open a connection and whether one can take a
//! request; the pool decides when to open, reuse, share and close them,
//! under the cluster's circuit breaker.
//!
//! Two ways to share ([`Sharing`]):
//! - **shared**: a few connections carry every request at once
//!   (multiplexed or pipelined RPC, HTTP/2); each slot is connected lazily,
//!   by one request while the others wait for it, and replaced when its
//!   connection closes or has carried its quota; when the protocol counts
//!   the requests a connection carries, a request takes an idle
//!   connection, else opens an empty slot, else joins the least loaded;
//! - **exclusive**: one request per connection at a time (HTTP/1.1, RPC
//!   servers that answer one call at a time); idle connections are reused
//!   newest first and closed after the idle timeout; when every connection
//!   is busy and no other may be opened, a request waits for one to come
//!   back, counted as pending.
//!
//! In both, every open connection holds one of the breaker's connection
//! slots and every request waiting for a connection one of its pending
//! slots; over either cap a request is refused at once (`OverLimit`,
//! counted as an overflow). After `max_requests_per_connection` requests a
//! connection takes no more: it finishes what it carries and is replaced.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;

use super::conns::{Conns, ExclusiveConns, Idle, IdleList, Inner, Slot};
use crate::cluster::{CircuitBreaker, Permit, Resource};
use crate::error::{ErrorKind, Origin, ProxyError};

pub use super::connector::{ConnState, Connector};
pub use super::conns::SharedConn;
pub use super::lease::{Exclusive, Lease};

/// How requests share an endpoint's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// This many connections, each carrying any number of requests at once.
    Shared {
        /// Connections per endpoint (at least 1).
        connections: usize,
    },
    /// One request per connection at a time.
    Exclusive {
        /// Most connections open to this endpoint at once (the breaker's
        /// connection cap applies besides).
        most_open: usize,
    },
}

/// Settings of one endpoint's pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// How requests share connections.
    pub sharing: Sharing,
    /// The cluster's circuit breaker: connection and pending caps, and
    /// requests per connection.
    pub breaker: Arc<CircuitBreaker>,
    /// An exclusive connection idle this long is closed instead of reused.
    pub idle_timeout: Duration,
}

/// The connections of one endpoint (a cheap handle: clones share them).
pub struct Pool<K: Connector> {
    pub(super) inner: Arc<Inner<K>>,
}

impl<K: Connector> Clone for Pool<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// Whether an exclusive request may take an idle connection or needs a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// The newest idle connection that is ready, else a new one.
    Idle,
    /// A new connection (an idle one just turned out stale).
    New,
}

impl<K: Connector> Pool<K> {
    /// An empty pool for `address`.
    pub fn new(connector: K, address: SocketAddr, options: &PoolOptions) -> Self {
        let conns = match options.sharing {
            Sharing::Shared { connections } => Conns::Shared {
                slots: (0..connections.max(1))
                    .map(|_| Slot {
                        conn: ArcSwapOption::empty(),
                        connecting: tokio::sync::Mutex::new(()),
                    })
                    .collect(),
                next: AtomicUsize::new(0),
            },
            Sharing::Exclusive { most_open } => Conns::Exclusive(ExclusiveConns {
                idle: ExclusiveConns::idle_lists(),
                open: AtomicUsize::new(0),
                most_open: most_open.max(1),
                waiting: AtomicUsize::new(0),
                freed: Notify::new(),
            }),
        };
        Self {
            inner: Arc::new(Inner {
                connector,
                address,
                breaker: options.breaker.clone(),
                max_uses: options.breaker.limits.max_requests_per_connection,
                idle_timeout: options.idle_timeout,
                conns,
            }),
        }
    }

    /// The connector.
    pub fn connector(&self) -> &K {
        &self.inner.connector
    }

    /// The endpoint's address.
    pub fn address(&self) -> SocketAddr {
        self.inner.address
    }

    /// Open connections: live shared ones, or exclusive ones idle and lent.
    pub fn open_connections(&self) -> usize {
        match &self.inner.conns {
            Conns::Shared { slots, .. } => slots
                .iter()
                .filter(|s| {
                    s.conn
                        .load()
                        .as_ref()
                        .is_some_and(|c| self.inner.connector.state(&c.conn) != ConnState::Closed)
                })
                .count(),
            Conns::Exclusive(ex) => ex.open.load(Ordering::SeqCst),
        }
    }

    /// A connection for one request, in the pool's way of sharing.
    pub async fn acquire(&self) -> Result<Lease<K>, ProxyError> {
        match &self.inner.conns {
            Conns::Shared { .. } => self.acquire_shared().await.map(Lease::Shared),
            Conns::Exclusive(_) => self
                .acquire_exclusive(Reuse::Idle, Instant::now())
                .await
                .map(Lease::Exclusive),
        }
    }

    /// A shared connection (the pool must be shared).
    pub async fn acquire_shared(&self) -> Result<Arc<SharedConn<K::Conn>>, ProxyError> {
        let Conns::Shared { slots, next } = &self.inner.conns else {
            return Err(self.misuse("shared"));
        };
        let start = next.fetch_add(1, Ordering::Relaxed);
        let slot = &slots[self.pick_slot(slots, start)];
        if let Some(conn) = self.take_share(slot) {
            return Ok(conn);
        }
        // Opening is rare: its future (a connector's handshake, kilobytes)
        // lives on the heap, so every request's future stays small.
        Box::pin(self.open_shared(slots, slot)).await
    }

    /// Opens the connection of `slot` (unless another request did while
    /// this one waited for the slot's lock).
    async fn open_shared(
        &self,
        slots: &[Slot<K::Conn>],
        slot: &Slot<K::Conn>,
    ) -> Result<Arc<SharedConn<K::Conn>>, ProxyError> {
        let _pending = self.pending()?;
        let _connecting = slot.connecting.lock().await;
        if let Some(conn) = self.take_share(slot) {
            return Ok(conn);
        }
        let opened = match self.inner.slot() {
            Ok(permit) => self
                .inner
                .connector
                .connect(self.inner.address, permit)
                .await
                .map(|c| Arc::new(SharedConn::new(c))),
            Err(e) => Err(e),
        };
        match opened {
            Ok(conn) => {
                conn.count_use();
                slot.conn.store(Some(conn.clone()));
                Ok(conn)
            }
            // Another slot may still have a live connection.
            Err(e) => slots.iter().find_map(|s| self.take_share(s)).ok_or(e),
        }
    }

    /// The slot a shared request goes to. Round robin from `start` when
    /// the connector does not count requests in flight; otherwise the
    /// first idle connection from `start`, else a slot with no open
    /// connection (it is opened: the pool grows before it doubles up),
    /// else the least loaded connection.
    fn pick_slot(&self, slots: &[Slot<K::Conn>], start: usize) -> usize {
        let n = slots.len();
        let mut empty = None;
        let mut least: Option<(usize, usize)> = None;
        for step in 0..n {
            let i = (start + step) % n;
            let guard = slots[i].conn.load();
            let Some(shared) = guard.as_ref() else {
                empty.get_or_insert(i);
                continue;
            };
            let connector = &self.inner.connector;
            if connector.state(&shared.conn) == ConnState::Closed {
                empty.get_or_insert(i);
                continue;
            }
            let Some(load) = connector.in_flight(&shared.conn) else {
                return start % n;
            };
            if load == 0 {
                return i;
            }
            if least.is_none_or(|(_, l)| load < l) {
                least = Some((i, load));
            }
        }
        empty.or(least.map(|(i, _)| i)).unwrap_or(start % n)
    }

    /// The slot's connection when it is open and under its quota (the
    /// request is counted against the quota).
    fn take_share(&self, slot: &Slot<K::Conn>) -> Option<Arc<SharedConn<K::Conn>>> {
        let conn = slot.conn.load_full()?;
        if self.inner.connector.state(&conn.conn) == ConnState::Closed {
            return None;
        }
        let used = conn.count_use();
        self.inner
            .max_uses
            .is_none_or(|max| used < max)
            .then_some(conn)
    }

    /// A connection of its own for one exchange (the pool must be
    /// exclusive); `now` is a recent instant, for the idle timeout.
    pub async fn acquire_exclusive(
        &self,
        reuse: Reuse,
        now: Instant,
    ) -> Result<Exclusive<K>, ProxyError> {
        let Conns::Exclusive(ex) = &self.inner.conns else {
            return Err(self.misuse("exclusive"));
        };
        let mut pending = None;
        let mut reuse = reuse;
        loop {
            if reuse == Reuse::Idle
                && let Some(idle) = self.take_idle(ex, ex.own(), now)
            {
                return Ok(Exclusive::new(self.inner.clone(), idle.conn, idle.uses));
            }
            let seen = match self.room(ex) {
                // On the heap, as in `acquire_shared`.
                Room::Open(permit) => return Box::pin(self.open_exclusive(ex, permit)).await,
                Room::Refused(refused) => return Err(refused),
                Room::Wait { open } => open,
            };
            // At the cap: another worker's idle connection serves (its
            // socket stays with that worker's reactor) rather than waiting.
            if reuse == Reuse::Idle
                && let Some(idle) = ex
                    .idle
                    .iter()
                    .find_map(|list| self.take_idle(ex, list, now))
            {
                return Ok(Exclusive::new(self.inner.clone(), idle.conn, idle.uses));
            }
            reuse = Reuse::Idle;
            // Every connection is lent and no other may be opened: wait
            // for one to come back (or close), counted as pending.
            if pending.is_none() {
                pending = Some(self.pending()?);
            }
            let freed = ex.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            ex.waiting.fetch_add(1, Ordering::SeqCst);
            // A connection came back or closed since `room` looked.
            let changed = ex.has_idle() || ex.open.load(Ordering::SeqCst) < seen;
            if !changed {
                freed.await;
            }
            ex.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Room for one more exclusive connection: a slot to open it, a wait
    /// when the endpoint (or the breaker) is at its cap and one of this
    /// endpoint's connections can come back, a refusal when none can.
    fn room(&self, ex: &ExclusiveConns<K::Conn>) -> Room {
        if let Err(open) = ex
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < ex.most_open).then_some(n + 1)
            })
        {
            return Room::Wait { open };
        }
        match self.inner.slot() {
            Ok(permit) => Room::Open(permit),
            Err(refused) => {
                let open = ex.open.fetch_sub(1, Ordering::SeqCst) - 1;
                // The cluster's other endpoints hold the slots: wait for one
                // of this endpoint's connections, when there is any.
                if open == 0 {
                    Room::Refused(refused)
                } else {
                    Room::Wait { open }
                }
            }
        }
    }

    async fn open_exclusive(
        &self,
        ex: &ExclusiveConns<K::Conn>,
        permit: Permit,
    ) -> Result<Exclusive<K>, ProxyError> {
        match self
            .inner
            .connector
            .connect(self.inner.address, permit)
            .await
        {
            Ok(conn) => Ok(Exclusive::new(self.inner.clone(), conn, 0)),
            Err(e) => {
                ex.open.fetch_sub(1, Ordering::SeqCst);
                ex.wake();
                Err(e)
            }
        }
    }

    /// The newest ready idle connection of `list`; closed and expired ones
    /// are dropped, busy ones left.
    fn take_idle(
        &self,
        ex: &ExclusiveConns<K::Conn>,
        list: &IdleList<K::Conn>,
        now: Instant,
    ) -> Option<Idle<K::Conn>> {
        let mut gone = Vec::new();
        let found = {
            let mut idle = list.lock();
            let mut found = None;
            let mut i = idle.len();
            while i > 0 {
                i -= 1;
                let entry = &idle[i];
                let expired = now.saturating_duration_since(entry.since) >= self.inner.idle_timeout;
                match self.inner.connector.state(&entry.conn) {
                    ConnState::Busy if !expired => {}
                    ConnState::Ready if !expired => {
                        found = Some(idle.swap_remove(i));
                        break;
                    }
                    _ => gone.push(idle.swap_remove(i).conn),
                }
            }
            found
        };
        if !gone.is_empty() {
            ex.open.fetch_sub(gone.len(), Ordering::SeqCst);
            for conn in gone {
                self.inner.connector.discard(conn);
            }
            ex.wake();
        }
        found
    }

    /// Counts a request waiting for a connection, or refuses it over the cap.
    fn pending(&self) -> Result<Permit, ProxyError> {
        self.inner
            .breaker
            .try_acquire(Resource::Pending)
            .ok_or_else(|| {
                ProxyError::new(
                    ErrorKind::OverLimit,
                    Origin::Internal,
                    format!(
                        "too many requests waiting for a connection to {}",
                        self.inner.address
                    ),
                )
            })
    }

    fn misuse(&self, wanted: &str) -> ProxyError {
        ProxyError::internal(
            ErrorKind::Internal,
            format!("the pool of {} is not {wanted}", self.inner.address),
        )
    }
}

/// What `room` found for one more exclusive connection.
enum Room {
    /// A breaker slot: open a connection with it.
    Open(Permit),
    /// No connection can come back: refuse.
    Refused(ProxyError),
    /// Wait until fewer than `open` of this endpoint's connections are open
    /// (or one is idle).
    Wait { open: usize },
}
