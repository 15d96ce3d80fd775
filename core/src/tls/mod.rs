//! TLS termination for any listener (rustls with the ring provider):
//! certificates chosen by SNI and rotated live, ALPN, client certificates,
//! and the handshake facts as connection metadata. docs/tls.md.

mod build;
mod certs;
mod client;
mod error;
mod facts;
mod store;
mod stream;

use std::sync::{Arc, Once};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub use build::{
    DEFAULT_HANDSHAKE_TIMEOUT, build_listener_tls, resolve_cluster_paths, resolve_paths,
};
pub use certs::{CertInfo, stamp as file_stamp};
pub use client::{ClusterTls, build_cluster_tls};
pub use error::TlsError;
pub use facts::TlsFacts;
pub use store::{CertStore, ReloadCounters, WATCH_INTERVAL};
pub use stream::MaybeTls;

/// A listener's TLS side: the acceptor and its certificates.
pub struct ListenerTls {
    acceptor: TlsAcceptor,
    /// How long a handshake may take.
    pub handshake_timeout: Duration,
    /// The certificates, watched for changes once serving starts.
    pub store: Arc<CertStore>,
    watching: Once,
}

impl std::fmt::Debug for ListenerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerTls")
            .field("handshake_timeout", &self.handshake_timeout)
            .field("store", &self.store)
            .finish()
    }
}

/// Why a handshake did not complete, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// Not finished within the handshake timeout.
    Timeout,
    /// The client sent something that is not TLS, or broken TLS.
    BadMessage,
    /// A required client certificate was not sent.
    NoClientCertificate,
    /// The client certificate did not verify.
    BadClientCertificate,
    /// No common version, cipher or ALPN protocol, or no certificate for the SNI.
    Incompatible,
    /// The client ended the handshake with an alert.
    ClientAlert,
    /// The connection broke off.
    Io,
}

impl HandshakeFailure {
    /// The label used in `metaproxy_tls_handshakes_total{result}`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::BadMessage => "bad_message",
            Self::NoClientCertificate => "no_client_certificate",
            Self::BadClientCertificate => "bad_client_certificate",
            Self::Incompatible => "incompatible",
            Self::ClientAlert => "client_alert",
            Self::Io => "io",
        }
    }

    fn of(e: &std::io::Error) -> Self {
        let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
            return Self::Io;
        };
        match tls {
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. }
            | rustls::Error::DecryptError => Self::BadMessage,
            rustls::Error::NoCertificatesPresented => Self::NoClientCertificate,
            rustls::Error::InvalidCertificate(_) => Self::BadClientCertificate,
            rustls::Error::AlertReceived(_) => Self::ClientAlert,
            _ => Self::Incompatible,
        }
    }
}

impl ListenerTls {
    /// Runs the server side of a handshake within the handshake timeout.
    pub async fn handshake(
        &self,
        stream: TcpStream,
    ) -> Result<TlsStream<TcpStream>, (HandshakeFailure, String)> {
        self.watching.call_once(|| self.store.watch());
        match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(stream)).await {
            Err(_) => Err((HandshakeFailure::Timeout, "handshake timed out".into())),
            Ok(Err(e)) => Err((HandshakeFailure::of(&e), e.to_string())),
            Ok(Ok(s)) => Ok(s),
        }
    }
}
