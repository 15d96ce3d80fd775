//! What a protocol tells the [`Pool`](super::Pool): how to open a
//! connection to an endpoint and whether an open one can take a request.

use std::future::Future;
use std::net::SocketAddr;

use crate::cluster::Permit;
use crate::error::ProxyError;

/// How a protocol opens connections to one endpoint.
pub trait Connector: Send + Sync + 'static {
    /// An open connection (a socket, or the handle of a task that owns one).
    type Conn: Send + Sync + 'static;

    /// Opens a connection to `address`. `slot` is the breaker's connection
    /// slot: keep it for as long as the connection is open.
    fn connect(
        &self,
        address: SocketAddr,
        slot: Permit,
    ) -> impl Future<Output = Result<Self::Conn, ProxyError>> + Send;

    /// Whether `conn` can take a request now.
    fn state(&self, conn: &Self::Conn) -> ConnState;

    /// Requests `conn` carries now, when the protocol counts them: a
    /// shared pool then sends each request to its least loaded connection
    /// and opens another slot's connection before it doubles one up. `None`
    /// (the default) keeps plain round robin over the slots.
    fn in_flight(&self, conn: &Self::Conn) -> Option<usize> {
        let _ = conn;
        None
    }

    /// Closes a connection the pool gives up (abandoned mid-exchange,
    /// expired, used up). Dropping it is the default.
    fn discard(&self, conn: Self::Conn) {
        drop(conn);
    }
}

/// What a connection can do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// It takes a request.
    Ready,
    /// Open, but still finishing its last exchange: left idle for later.
    Busy,
    /// Closed: dropped from the pool.
    Closed,
}
