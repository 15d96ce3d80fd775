//! A connection to an endpoint: plain TCP, or TLS when the cluster has
//! `tls:`. Every upstream pool (framed RPC, hyper, lean HTTP/1.1) opens
//! its connections here.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::tls::{ClusterTls, MaybeTls};

/// An open connection to an endpoint: plain, or TLS with the handshake done.
pub type UpstreamStream = MaybeTls<TlsStream<TcpStream>>;

pub use crate::error::ConnectError;

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
