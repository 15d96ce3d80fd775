//! The lean path's upstream HTTP/1.1 connections: a plain socket and its
//! read buffer, lent to one exchange at a time and kept idle in the
//! endpoint's [`HttpPool`] between exchanges.

use std::time::Instant;

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::spare::READ_BUFFER;
use crate::http::HttpError;
use crate::http::upstream::{H1_IDLE_TIMEOUT, H1_MAX_IDLE, HttpPool};

/// An upstream HTTP/1.1 connection of the lean path.
#[derive(Debug)]
pub(crate) struct LeanConn {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read and not yet relayed.
    pub buf: BytesMut,
}

/// The newest idle connection that is still open, if any, as of `now`. A
/// connection the peer closed (or wrote to unasked) while idle, or idle for
/// too long, is dropped.
pub(crate) fn checkout(pool: &HttpPool, now: Instant) -> Option<LeanConn> {
    let mut idle = pool.lean_idle().lock().unwrap_or_else(|p| p.into_inner());
    while let Some((conn, since)) = idle.pop() {
        if now.saturating_duration_since(since) >= H1_IDLE_TIMEOUT || !conn.buf.is_empty() {
            continue;
        }
        let mut probe = [0u8; 1];
        match conn.stream.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(conn),
            _ => continue,
        }
    }
    None
}

/// Returns a connection whose last exchange is complete (as of `now`, a
/// recent instant the caller already read).
pub(crate) fn checkin(pool: &HttpPool, conn: LeanConn, now: Instant) {
    let mut idle = pool.lean_idle().lock().unwrap_or_else(|p| p.into_inner());
    if idle.len() < H1_MAX_IDLE {
        idle.push((conn, now));
    }
}

/// A new connection to the pool's endpoint.
pub(crate) async fn connect(pool: &HttpPool) -> Result<LeanConn, HttpError> {
    Ok(LeanConn {
        stream: pool.connect_tcp().await?,
        buf: BytesMut::with_capacity(READ_BUFFER),
    })
}

/// Makes room for at least one more read in `buf`.
pub(crate) fn reserve(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_BUFFER / 4 {
        buf.reserve(READ_BUFFER);
    }
}
