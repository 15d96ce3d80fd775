//! The accept loop of one listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::server::TlsStream;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::ListenerContext;
use crate::downstream::ClientStream;
use crate::tls::ListenerTls;

/// Accepts connections until shutdown, handing each to the listener's
/// current handler; refuses connections above the listener's limit.
pub async fn run_accept_loop(
    listener: TcpListener,
    ctx: Arc<ListenerContext>,
    tracker: TaskTracker,
) {
    let max = ctx
        .snapshot
        .load()
        .listener(&ctx.name)
        .map_or(1, |l| l.limits.max_connections);
    let slots = Arc::new(Semaphore::new(max));
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
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            warn!(listener = %ctx.name, %peer, max, "connection limit reached; closing new connection");
            continue;
        };
        let Some((handler, tls)) = ctx
            .snapshot
            .load()
            .listener(&ctx.name)
            .map(|l| (l.handler.clone(), l.tls.clone()))
        else {
            continue;
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
            drop(permit);
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
