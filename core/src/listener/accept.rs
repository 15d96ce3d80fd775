//! The accept loop of one listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::ListenerContext;
use crate::downstream::ClientStream;
use crate::tls::ListenerTls;

/// Accepts connections until shutdown, handing each to the listener's
/// current handler; refuses connections above the listener's current limit
/// (a reload that changes `max_connections` applies to the next accept;
/// connections already open stay).
pub async fn run_accept_loop(
    listener: TcpListener,
    ctx: Arc<ListenerContext>,
    tracker: TaskTracker,
) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                warn!(listener = %ctx.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let (handler, tls, slot) = {
            let snapshot = ctx.snapshot.load();
            let Some(current) = snapshot.listener(&ctx.name) else {
                continue;
            };
            let max = current.limits.max_connections;
            let Some(slot) = Slot::take(&open, max) else {
                warn!(listener = %ctx.name, %peer, max, "connection limit reached; closing new connection");
                continue;
            };
            (current.handler.clone(), current.tls.clone(), slot)
        };
        debug!(listener = %ctx.name, %peer, "accepted");
        let conn_ctx = ctx.clone();
        let serve = async move |stream: TcpStream| {
            let ctx = conn_ctx;
            let stream = match tls {
                // A handler that detects TLS itself gets the raw socket.
                Some(tls) if !handler.handles_tls() => {
                    match tls_handshake(&tls, stream, peer, &ctx).await {
                        Some(s) => ClientStream::tls(s),
                        None => return,
                    }
                }
                _ => ClientStream::plain(stream),
            };
            handler.serve(stream, peer, ctx).await;
            drop(slot);
        };
        let Some(worker) = crate::workers::next() else {
            tracker.spawn(serve(stream));
            continue;
        };
        // To a worker: the socket leaves this runtime's reactor and joins
        // the worker's, so its readiness wakes that thread only.
        let socket = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                warn!(listener = %ctx.name, %peer, error = %e, "cannot hand over a connection");
                continue;
            }
        };
        worker.spawn(tracker.track_future(async move {
            match TcpStream::from_std(socket) {
                Ok(stream) => serve(stream).await,
                Err(e) => warn!(%peer, error = %e, "a worker cannot take a connection"),
            }
        }));
    }
}

/// One open connection of a listener, counted until dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A slot when fewer than `max` are open. Only the accept loop takes
    /// slots, so the check and the increment cannot race each other.
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        if open.load(Ordering::Acquire) >= max {
            return None;
        }
        open.fetch_add(1, Ordering::AcqRel);
        Some(Slot(open.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The server side of a TLS handshake on a listener's connection, counted
/// in `metaproxy_tls_handshakes_total`; `None` when it failed (logged).
pub async fn tls_handshake(
    tls: &ListenerTls,
    stream: TcpStream,
    peer: SocketAddr,
    ctx: &ListenerContext,
) -> Option<TlsStream<TcpStream>> {
    match tls.handshake(stream).await {
        Ok(s) => {
            ctx.snapshot.load().metrics.tls_handshake(&ctx.name, "ok");
            Some(s)
        }
        Err((failure, why)) => {
            debug!(listener = %ctx.name, %peer, error = %why, "TLS handshake failed");
            ctx.snapshot
                .load()
                .metrics
                .tls_handshake(&ctx.name, failure.label());
            None
        }
    }
}
