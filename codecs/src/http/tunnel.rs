//! An upgraded connection (WebSocket) relayed byte for byte between the
//! client and the upstream, after both sides switched protocols: each
//! direction is copied through a bounded buffer, a side that finishes
//! sending half-closes the other, and the tunnel is cut when no byte moved
//! either way for the idle timeout or when the proxy shuts down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Bytes read at once in each direction.
const CHUNK: usize = 16 * 1024;

/// How a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TunnelEnd {
    /// Both sides finished sending.
    Closed,
    /// No byte moved either way for the idle timeout.
    Idle,
    /// The proxy is shutting down.
    Shutdown,
    /// A read or write failed (a reset, say).
    Failed,
}

/// What a tunnel carried and how it ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TunnelStats {
    /// Bytes from the client to the upstream.
    pub to_upstream: u64,
    /// Bytes from the upstream to the client.
    pub to_client: u64,
    /// Why it ended.
    pub end: TunnelEnd,
}

/// Relays between the two upgraded connections until both directions
/// end, `idle` passes with no byte moving, or `shutdown`; every write is
/// counted with `to_upstream` or `to_client` as it happens.
pub(crate) async fn relay(
    client: Upgraded,
    upstream: Upgraded,
    idle: Duration,
    shutdown: CancellationToken,
    (to_upstream_bytes, to_client_bytes): (impl Fn(u64), impl Fn(u64)),
) -> TunnelStats {
    let (mut client_read, mut client_write) = tokio::io::split(TokioIo::new(client));
    let (mut upstream_read, mut upstream_write) = tokio::io::split(TokioIo::new(upstream));
    let moved = AtomicBool::new(false);
    let up = pump(
        &mut client_read,
        &mut upstream_write,
        &moved,
        &to_upstream_bytes,
    );
    let down = pump(
        &mut upstream_read,
        &mut client_write,
        &moved,
        &to_client_bytes,
    );
    tokio::pin!(up, down);
    let (mut to_upstream, mut to_client) = (None, None);
    // Activity is sampled every `tick`: a silent tunnel is cut between
    // `idle` and `idle + tick` after its last byte.
    let tick = (idle / 8).max(Duration::from_millis(10));
    let mut quiet = Duration::ZERO;
    let end = loop {
        if let (Some(Ok(_)), Some(Ok(_))) = (&to_upstream, &to_client) {
            break TunnelEnd::Closed;
        }
        if matches!(to_upstream, Some(Err(_))) || matches!(to_client, Some(Err(_))) {
            break TunnelEnd::Failed;
        }
        tokio::select! {
            r = &mut up, if to_upstream.is_none() => to_upstream = Some(r),
            r = &mut down, if to_client.is_none() => to_client = Some(r),
            _ = shutdown.cancelled() => break TunnelEnd::Shutdown,
            _ = tokio::time::sleep(tick) => {
                if moved.swap(false, Ordering::Relaxed) {
                    quiet = Duration::ZERO;
                } else {
                    quiet += tick;
                    if quiet >= idle {
                        break TunnelEnd::Idle;
                    }
                }
            }
        }
    };
    let count = |r: &Option<Result<u64, std::io::Error>>| match r {
        Some(Ok(n)) => *n,
        _ => 0,
    };
    TunnelStats {
        to_upstream: count(&to_upstream),
        to_client: count(&to_client),
        end,
    }
}

/// Copies `from` to `to` until `from` ends, then shuts `to`'s write side
/// (the peer sees the half-close); the bytes copied.
async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    moved: &AtomicBool,
    count: &impl Fn(u64),
) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(total);
        }
        to.write_all(&buf[..n]).await?;
        moved.store(true, Ordering::Relaxed);
        count(n as u64);
        total += n as u64;
    }
}
