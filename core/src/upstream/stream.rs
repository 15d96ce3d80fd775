//! A connection to an endpoint: plain TCP, or TLS when the cluster has
//! `tls:`. Every upstream pool (framed RPC, hyper, lean HTTP/1.1) opens
//! its connections here.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::tls::ClusterTls;

/// An open connection to an endpoint.
#[derive(Debug)]
pub enum UpstreamStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, the handshake done.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Neither the TCP connect nor the TLS handshake finished in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The TCP connect failed.
    #[error("{0}")]
    Tcp(io::Error),
    /// The TLS handshake failed (an untrusted or expired certificate, a
    /// refused client certificate, no common version or ALPN).
    #[error("TLS handshake: {0}")]
    Tls(io::Error),
}

/// Connects to `address` (no delay), then runs the TLS handshake when
/// `tls` is set, all within `timeout`.
pub async fn connect(
    address: SocketAddr,
    timeout: Duration,
    tls: Option<&ClusterTls>,
) -> Result<UpstreamStream, ConnectError> {
    let open = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(ConnectError::Tcp)?;
        let _ = tcp.set_nodelay(true);
        match tls {
            None => Ok(UpstreamStream::Plain(tcp)),
            Some(tls) => tls
                .connect(tcp, address)
                .await
                .map(|s| UpstreamStream::Tls(Box::new(s)))
                .map_err(ConnectError::Tls),
        }
    };
    tokio::time::timeout(timeout, open)
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
}

impl UpstreamStream {
    /// The agreed ALPN protocol, for a TLS connection.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(s) => s.get_ref().1.alpn_protocol(),
        }
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
