//! Connections lent by a [`Pool`](super::Pool) to one request.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Instant;

use super::connector::Connector;
use super::conns::{Inner, SharedConn};

/// A connection lent to one request, shared or its own.
pub enum Lease<K: Connector> {
    /// A connection other requests use at the same time.
    Shared(Arc<SharedConn<K::Conn>>),
    /// A connection of the request's own.
    Exclusive(Exclusive<K>),
}

impl<K: Connector> Lease<K> {
    /// The exchange is complete: an exclusive connection may serve another
    /// request. A lease dropped without this closes an exclusive
    /// connection (a late answer can then never reach the next request).
    pub fn release(self) {
        if let Lease::Exclusive(own) = self {
            own.release();
        }
    }
}

impl<K: Connector> Deref for Lease<K> {
    type Target = K::Conn;
    fn deref(&self) -> &K::Conn {
        match self {
            Lease::Shared(c) => c,
            Lease::Exclusive(c) => c,
        }
    }
}

/// A connection lent to one exchange at a time. [`Exclusive::release`]
/// gives it back once the exchange is complete; dropped without that, it
/// is closed.
pub struct Exclusive<K: Connector> {
    pool: Arc<Inner<K>>,
    conn: Option<K::Conn>,
    uses: u64,
}

impl<K: Connector> Exclusive<K> {
    pub(super) fn new(pool: Arc<Inner<K>>, conn: K::Conn, uses: u64) -> Self {
        Self {
            pool,
            conn: Some(conn),
            uses: uses + 1,
        }
    }

    /// The exchange is complete: back to the idle connections.
    pub fn release(self) {
        self.release_at(Instant::now());
    }

    /// [`Exclusive::release`] with a recent instant the caller already read.
    pub fn release_at(mut self, now: Instant) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn, self.uses, now);
        }
    }

    /// Whether the connection carried an exchange before this one (an idle
    /// connection the peer may have closed meanwhile).
    pub fn reused(&self) -> bool {
        self.uses > 1
    }

    /// The endpoint's address.
    pub fn address(&self) -> std::net::SocketAddr {
        self.pool.address
    }
}

impl<K: Connector> Deref for Exclusive<K> {
    type Target = K::Conn;
    fn deref(&self) -> &K::Conn {
        // Present until release or drop, which consume the lease.
        self.conn.as_ref().expect("lent connection present")
    }
}

impl<K: Connector> DerefMut for Exclusive<K> {
    fn deref_mut(&mut self) -> &mut K::Conn {
        self.conn.as_mut().expect("lent connection present")
    }
}

impl<K: Connector> Drop for Exclusive<K> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.close(conn);
        }
    }
}

impl<K: Connector> std::fmt::Debug for Exclusive<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exclusive")
            .field("address", &self.address())
            .field("uses", &self.uses)
            .finish_non_exhaustive()
    }
}
