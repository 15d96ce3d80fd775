//! The listener engine for framed request/response protocols: accept,
//! decode, filter, route, forward, match the response, encode.

mod accept;
mod connection;
mod request;
mod stream;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

pub use accept::{run_accept_loop, tls_handshake};
pub use connection::serve_rpc_connection;
pub use stream::{ClientIo, ClientStream, connection_metadata};

use crate::snapshot::Snapshot;

/// What every connection of a listener shares.
#[derive(Debug)]
pub struct ListenerContext {
    /// The listener's name (its key in each snapshot).
    pub name: Arc<str>,
    /// The current config; each request reads it once and finishes on that version.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Cancelled when the proxy shuts down: stop reading, finish in-flight requests.
    pub shutdown: CancellationToken,
    /// The bound address.
    pub local_addr: SocketAddr,
}
