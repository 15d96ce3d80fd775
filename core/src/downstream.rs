//! An accepted client connection: plain TCP, or TLS terminated by the
//! listener, with any bytes already read from it (by protocol detection)
//! put back in front. Every protocol's handler reads and writes it the
//! same way.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::metadata::{Metadata, keys};
use crate::tls::{MaybeTls, TlsFacts};

/// The connection itself: plain, or TLS with the handshake done.
pub type ClientIo = MaybeTls<TlsStream<TcpStream>>;

/// A client connection as a handler receives it.
#[derive(Debug)]
pub struct ClientStream {
    io: ClientIo,
    prefix: Bytes,
    /// Set whenever bytes move either way (see [`ClientStream::with_activity`]).
    activity: Option<Arc<AtomicBool>>,
}

impl ClientStream {
    /// A plain TCP connection.
    pub fn plain(tcp: TcpStream) -> Self {
        Self {
            io: MaybeTls::Plain(tcp),
            prefix: Bytes::new(),
            activity: None,
        }
    }

    /// A TLS connection whose handshake is done.
    pub fn tls(stream: TlsStream<TcpStream>) -> Self {
        Self {
            io: MaybeTls::Tls(Box::new(stream)),
            prefix: Bytes::new(),
            activity: None,
        }
    }

    /// The same connection with `bytes` (read from it already) to be read
    /// again first.
    pub fn with_prefix(mut self, bytes: Bytes) -> Self {
        self.prefix = if self.prefix.is_empty() {
            bytes
        } else {
            let mut both = Vec::with_capacity(bytes.len() + self.prefix.len());
            both.extend_from_slice(&bytes);
            both.extend_from_slice(&self.prefix);
            Bytes::from(both)
        };
        self
    }

    /// The same connection, setting `flag` each time bytes move either
    /// way: a handler that keeps its own idle timer (hyper's connection
    /// driver) clears the flag and looks at it later.
    pub fn with_activity(mut self, flag: Arc<AtomicBool>) -> Self {
        self.activity = Some(flag);
        self
    }

    fn moved(&self) {
        if let Some(flag) = &self.activity {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// The connection and the bytes to read before it.
    pub fn into_parts(self) -> (ClientIo, Bytes) {
        (self.io, self.prefix)
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match &self.io {
            MaybeTls::Plain(s) => s,
            MaybeTls::Tls(s) => s.get_ref().0,
        }
    }

    /// The handshake's facts, for a TLS connection.
    pub fn tls_facts(&self) -> Option<TlsFacts> {
        match &self.io {
            MaybeTls::Plain(_) => None,
            MaybeTls::Tls(s) => Some(TlsFacts::of(s.get_ref().1)),
        }
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.io, MaybeTls::Tls(_))
    }
}

/// The metadata every request of a connection starts with: the client's
/// address, the listener's port and the TLS facts (docs/tls.md).
pub fn connection_metadata(stream: &ClientStream, peer: SocketAddr, local: SocketAddr) -> Metadata {
    let mut m = Metadata::with_capacity(3);
    m.insert(keys::SOURCE_IP, peer.ip().to_string());
    m.insert(keys::SOURCE_PORT, peer.port().to_string());
    m.insert(keys::DESTINATION_PORT, local.port().to_string());
    if let Some(facts) = stream.tls_facts() {
        facts.insert_into(&mut m);
    }
    m
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            this.moved();
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.moved();
        }
        r
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.moved();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.moved();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
