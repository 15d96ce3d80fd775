//! The lean path's upstream HTTP/1.1 connections: a plain socket and its
//! read buffer, lent to one exchange at a time by the endpoint's core
//! [`Pool`](metaproxy_core::upstream::Pool) and kept idle between exchanges.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use metaproxy_core::ProxyError;
use metaproxy_core::cluster::Permit;
use metaproxy_core::upstream::{ConnState, Connector, Exclusive};
use tokio::net::TcpStream;

use super::spare::READ_BUFFER;
use crate::http::HttpError;

/// An upstream HTTP/1.1 connection of the lean path.
#[derive(Debug)]
pub(crate) struct LeanConn {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read and not yet relayed.
    pub buf: BytesMut,
    /// The breaker's connection slot, held while the socket is open.
    pub _slot: Option<Permit>,
}

/// A lean connection lent to one exchange.
pub(crate) type LeanLease = Exclusive<LeanConnector>;

/// Opens the lean path's plain TCP connections.
pub(crate) struct LeanConnector {
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
}

impl Connector for LeanConnector {
    type Conn = LeanConn;

    async fn connect(&self, address: SocketAddr, slot: Permit) -> Result<LeanConn, ProxyError> {
        let timeout = self.connect_timeout;
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| HttpError::ConnectTimeout { address, timeout }.into_proxy_error())?
            .map_err(|source| HttpError::Connect { address, source }.into_proxy_error())?;
        let _ = stream.set_nodelay(true);
        Ok(LeanConn {
            stream,
            buf: BytesMut::with_capacity(READ_BUFFER),
            _slot: Some(slot),
        })
    }

    /// An idle connection the peer closed, or wrote to unasked, is closed.
    fn state(&self, conn: &LeanConn) -> ConnState {
        if !conn.buf.is_empty() {
            return ConnState::Closed;
        }
        let mut probe = [0u8; 1];
        match conn.stream.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => ConnState::Ready,
            _ => ConnState::Closed,
        }
    }
}

/// Makes room for at least one more read in `buf`.
pub(crate) fn reserve(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_BUFFER / 4 {
        buf.reserve(READ_BUFFER);
    }
}
