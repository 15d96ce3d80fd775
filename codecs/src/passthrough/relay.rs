//! The byte relay of a passthrough connection: both directions at once,
//! ended by either side closing or by `idle` without a byte moving.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Bytes relayed each way.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Relayed {
    /// Client to upstream.
    pub up: u64,
    /// Upstream to client.
    pub down: u64,
}

/// Copies `from` to `to` until `from` ends, flagging `moved` per read
/// and counting into `total`.
async fn pump<R, W>(mut from: R, mut to: W, moved: &AtomicBool, total: &AtomicU64)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        moved.store(true, Ordering::Relaxed);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        total.fetch_add(n as u64, Ordering::Relaxed);
    }
    // Pass the half-close on: the other direction may still have bytes.
    let _ = to.shutdown().await;
}

/// Relays `client` ⇄ `upstream` until both directions end, or until
/// nothing moved for `idle`, or `stop` fires.
pub(crate) async fn relay(
    client: tokio::net::TcpStream,
    upstream: metaproxy_core::upstream::UpstreamStream,
    idle: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Relayed {
    let moved = AtomicBool::new(false);
    let (up, down) = (AtomicU64::new(0), AtomicU64::new(0));
    let (cr, cw) = client.into_split();
    let (ur, uw) = tokio::io::split(upstream);
    let both = async {
        tokio::join!(pump(cr, uw, &moved, &up), pump(ur, cw, &moved, &down));
    };
    tokio::pin!(both);
    let counted = || Relayed {
        up: up.load(Ordering::Relaxed),
        down: down.load(Ordering::Relaxed),
    };
    tokio::pin!(stop);
    let tick = (idle / 8).max(Duration::from_millis(10));
    let mut quiet_since = Instant::now();
    loop {
        tokio::select! {
            () = &mut both => return counted(),
            () = &mut stop => return counted(),
            () = tokio::time::sleep(tick) => {
                let now = Instant::now();
                if moved.swap(false, Ordering::Relaxed) {
                    quiet_since = now;
                } else if now.duration_since(quiet_since) >= idle {
                    return counted();
                }
            }
        }
    }
}
