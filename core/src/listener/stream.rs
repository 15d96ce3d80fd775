//! An accepted client connection: plain TCP, or TLS terminated by the
//! listener. Every protocol's handler reads and writes it the same way.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::metadata::{Metadata, keys};
use crate::tls::{MaybeTls, TlsFacts};

/// A client connection as a handler receives it: plain, or TLS with the
/// handshake done.
pub type ClientStream = MaybeTls<TlsStream<TcpStream>>;

impl ClientStream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => s.get_ref().0,
        }
    }

    /// The handshake's facts, for a TLS connection.
    pub fn tls_facts(&self) -> Option<TlsFacts> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(s) => Some(TlsFacts::of(s.get_ref().1)),
        }
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
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
