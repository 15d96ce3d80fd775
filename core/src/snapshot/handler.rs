//! What serves a listener's connections: the handler a protocol builds
//! and the context every connection of the listener shares.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use crate::downstream::ClientStream;

use super::Snapshot;

/// A boxed future that serves one connection.
pub type ServeFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Serves accepted connections of one listener.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Serves `stream` until it closes.
    fn serve(
        &self,
        stream: ClientStream,
        peer: SocketAddr,
        ctx: Arc<ListenerContext>,
    ) -> ServeFuture;

    /// Whether the handler runs the listener's TLS handshake itself (after
    /// detecting TLS); otherwise a listener with `tls:` hands it TLS
    /// connections with the handshake done.
    fn handles_tls(&self) -> bool {
        false
    }
}

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
