//! One client connection: read and decode frames, dispatch each request.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, warn};

use crate::codec::{Codec, Decoder};
use crate::message::MessageKind;

use super::ListenerContext;
use super::request::{RequestTask, handle_request};
use super::writer::write_replies;
use crate::downstream::{ClientStream, connection_metadata};
use crate::tls::MaybeTls;

/// Serves one client connection of a framed protocol until it closes.
///
/// Requests run concurrently (up to the listener's per-connection limit;
/// reading pauses above it), so a slow upstream answer never holds back the
/// answers to later requests.
pub async fn serve_rpc_connection<C: Codec>(
    codec: Arc<C>,
    stream: ClientStream,
    peer: SocketAddr,
    ctx: Arc<ListenerContext>,
) {
    let _ = stream.tcp().set_nodelay(true);
    let connection = Arc::new(connection_metadata(&stream, peer, ctx.local_addr));
    let (io, prefix) = stream.into_parts();
    match io {
        MaybeTls::Plain(s) => {
            let (rd, wr) = s.into_split();
            serve_halves(codec, rd, wr, prefix, connection, peer, ctx).await;
        }
        MaybeTls::Tls(s) => {
            let (rd, wr) = tokio::io::split(*s);
            serve_halves(codec, rd, wr, prefix, connection, peer, ctx).await;
        }
    }
}

/// The connection loop over its two halves (a plain socket's own halves,
/// or a TLS stream split in two).
async fn serve_halves<C, R, W>(
    codec: Arc<C>,
    mut rd: R,
    wr: W,
    prefix: Bytes,
    connection: Arc<crate::metadata::Metadata>,
    peer: SocketAddr,
    ctx: Arc<ListenerContext>,
) where
    C: Codec,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Some((limits, metrics)) = ctx
        .snapshot
        .load()
        .listener(&ctx.name)
        .map(|l| (l.limits.clone(), l.metrics.clone()))
    else {
        return;
    };
    metrics.connections_total.inc();
    metrics.connections_active.inc();
    let _open = OnDrop(|| {
        metrics.connections_active.dec();
    });
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let writer = tokio::spawn(write_replies(wr, rx));
    let in_flight = Arc::new(Semaphore::new(limits.max_requests_per_connection));
    let mut decoder = codec.decoder();
    // Bytes protocol detection read already come first.
    let mut buf = BytesMut::with_capacity(4096.max(prefix.len()));
    buf.extend_from_slice(&prefix);
    // The connection's own child of the listener's token: waiting on it
    // per read locks this connection's token, not one every worker shares.
    let shutdown = ctx.shutdown.child_token();

    'conn: loop {
        loop {
            let msg = match decoder.decode(&mut buf) {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(e) => {
                    warn!(listener = %ctx.name, %peer, error = %e, "bad frame from client");
                    let mut out = BytesMut::new();
                    if codec.decode_error_reply(&e, &mut out) {
                        let _ = tx.send(out.freeze());
                    }
                    if e.frame_consumed {
                        continue;
                    }
                    break 'conn;
                }
            };
            match msg.kind {
                MessageKind::Heartbeat => {
                    let mut out = BytesMut::new();
                    codec.heartbeat_reply(&msg, &mut out);
                    let _ = tx.send(out.freeze());
                }
                MessageKind::Request | MessageKind::Oneway => {
                    let Ok(permit) = in_flight.clone().acquire_owned().await else {
                        break 'conn;
                    };
                    tokio::spawn(handle_request(RequestTask {
                        codec: codec.clone(),
                        ctx: ctx.clone(),
                        connection: connection.clone(),
                        message: msg,
                        replies: tx.clone(),
                        _permit: permit,
                    }));
                }
                MessageKind::HeartbeatResponse => {}
                MessageKind::Response | MessageKind::Error => {
                    debug!(%peer, "client sent a response; ignored");
                }
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        let read = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = tokio::time::timeout(limits.idle_timeout, rd.read_buf(&mut buf)) => r,
        };
        match read {
            Err(_) if in_flight.available_permits() < limits.max_requests_per_connection => {}
            Err(_) => {
                debug!(%peer, "idle timeout");
                break;
            }
            Ok(Ok(0)) => {
                if !buf.is_empty() {
                    debug!(%peer, bytes = buf.len(), "client closed mid-frame");
                }
                break;
            }
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "client read failed");
                break;
            }
            Ok(Ok(_)) => {}
        }
    }
    // In-flight requests hold their own senders: the writer ends after the last reply.
    drop(tx);
    let _ = writer.await;
}

/// Runs a closure when dropped (connection gauges stay right on every exit path).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}
