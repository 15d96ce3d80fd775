//! One client connection: read and decode frames, dispatch each request.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::codec::{Codec, Decoder};
use crate::message::MessageKind;

use super::ListenerContext;
use super::request::{RequestTask, handle_request};
use super::writer::Replies;
use crate::deadline::LazyDeadline;
use crate::downstream::{ClientStream, connection_metadata};
use crate::tls::MaybeTls;

/// Serves one client connection of a framed protocol until it closes.
///
/// Requests run concurrently (up to the listener's per-connection limit;
/// reading pauses above it), so a slow upstream answer never holds back the
/// answers to later requests; each reply is written as soon as it is ready.
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

/// Reading pauses while this many reply bytes wait for a client that
/// does not read them (flow control; each reply is bounded by the
/// cluster's `max_frame_bytes`, and at most `max_requests_per_connection`
/// are in flight).
const PAUSE_READING_AT: usize = 1024 * 1024;

/// The connection loop over its two halves (a plain socket's own halves,
/// or a TLS stream split in two). One task runs it all: reading and
/// decoding, the requests in flight (each a future of the connection,
/// not a task of its own), and writing their replies as they complete.
async fn serve_halves<C, R, W>(
    codec: Arc<C>,
    mut rd: R,
    mut wr: W,
    prefix: Bytes,
    connection: Arc<crate::metadata::Metadata>,
    peer: SocketAddr,
    ctx: Arc<ListenerContext>,
) where
    C: Codec,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
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
    let mut running = FuturesUnordered::new();
    let mut replies = Replies::default();
    let mut decoder = codec.decoder();
    // Bytes protocol detection read already come first.
    let mut buf = BytesMut::with_capacity(4096.max(prefix.len()));
    buf.extend_from_slice(&prefix);
    // The connection's own child of the listener's token: waiting on it
    // per read locks this connection's token, not one every worker shares.
    let shutdown = ctx.shutdown.child_token();
    // One wait for it for the whole connection (a wait registers with the
    // token: made anew per loop turn it cost a lock per request).
    let stopping = shutdown.cancelled();
    tokio::pin!(stopping);
    // Pushed back on every read and write; only an idle connection (no
    // request in flight) is closed when it passes.
    let mut idle = LazyDeadline::new(Instant::now() + limits.idle_timeout);
    let mut reading = true;
    let mut writable = true;
    // Whether the buffer may hold a whole frame not yet decoded.
    let mut decodable = true;

    loop {
        // Start every request already buffered, up to the limits.
        while reading
            && decodable
            && running.len() < limits.max_requests_per_connection
            && replies.bytes() < PAUSE_READING_AT
        {
            let msg = match decoder.decode(&mut buf) {
                Ok(Some(msg)) => msg,
                Ok(None) => {
                    decodable = false;
                    break;
                }
                Err(e) => {
                    warn!(listener = %ctx.name, %peer, error = %e, "bad frame from client");
                    let mut out = BytesMut::new();
                    if codec.decode_error_reply(&e, &mut out) {
                        replies.push(out.freeze());
                    }
                    // A frame that cannot be skipped ends the reading; what
                    // is in flight is still answered.
                    reading = e.frame_consumed;
                    continue;
                }
            };
            match msg.kind {
                MessageKind::Heartbeat => {
                    let mut out = BytesMut::new();
                    codec.heartbeat_reply(&msg, &mut out);
                    replies.push(out.freeze());
                }
                MessageKind::Request | MessageKind::Oneway => {
                    running.push(handle_request(RequestTask {
                        codec: codec.clone(),
                        ctx: ctx.clone(),
                        connection: connection.clone(),
                        message: msg,
                    }));
                }
                MessageKind::HeartbeatResponse => {}
                MessageKind::Response | MessageKind::Error => {
                    debug!(%peer, "client sent a response; ignored");
                }
            }
        }
        if !writable {
            replies.clear();
        }
        if !reading && running.is_empty() && replies.is_empty() {
            break;
        }
        let room = running.len() < limits.max_requests_per_connection
            && replies.bytes() < PAUSE_READING_AT;
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        tokio::select! {
            biased;
            Some(reply) = running.next(), if !running.is_empty() => {
                replies.push(reply.unwrap_or_default());
                // Gather every other reply already done into this write.
                while let Some(Some(reply)) = running.next().now_or_never() {
                    replies.push(reply.unwrap_or_default());
                }
            }
            written = replies.write_to(&mut wr), if writable && !replies.is_empty() => match written {
                Ok(n) if n > 0 => {
                    replies.written(n);
                    idle.set(Instant::now() + limits.idle_timeout);
                }
                result => {
                    // The client is gone: requests in flight still finish
                    // (their upstream calls, metrics and access log).
                    debug!(%peer, ?result, "client write failed");
                    writable = false;
                    reading = false;
                }
            },
            _ = &mut stopping, if reading => reading = false,
            read = rd.read_buf(&mut buf), if reading && room => match read {
                Ok(0) => {
                    if !buf.is_empty() {
                        debug!(%peer, bytes = buf.len(), "client closed mid-frame");
                    }
                    reading = false;
                }
                Ok(_) => {
                    decodable = true;
                    idle.set(Instant::now() + limits.idle_timeout);
                }
                Err(e) => {
                    debug!(%peer, error = %e, "client read failed");
                    reading = false;
                }
            },
            _ = idle.expired(), if running.is_empty() => {
                debug!(%peer, "idle timeout");
                break;
            }
        }
    }
    if writable {
        let _ = wr.shutdown().await;
    }
}

/// Runs a closure when dropped (connection gauges stay right on every exit path).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}
