//! Why an upstream HTTP exchange failed.

use std::net::SocketAddr;
use std::time::Duration;

use metaproxy_core::error::with_causes;
use metaproxy_core::{ErrorKind, Origin, ProxyError};

/// A failure talking to an upstream endpoint.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The TCP connection could not be opened.
    #[error("connect to {address} failed: {source}")]
    Connect {
        /// The endpoint.
        address: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The TCP connection was not opened within the cluster's connect timeout.
    #[error("connect to {address} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The endpoint.
        address: SocketAddr,
        /// The cluster's connect timeout.
        timeout: Duration,
    },
    /// The TLS handshake with the endpoint failed (untrusted or expired
    /// certificate, refused client certificate, no common protocol).
    #[error("TLS handshake with {address} failed: {source}")]
    Tls {
        /// The endpoint.
        address: SocketAddr,
        /// rustls' error.
        source: std::io::Error,
    },
    /// The HTTP handshake (HTTP/2 preface and settings) failed.
    #[error("handshake with {address} failed: {source}")]
    Handshake {
        /// The endpoint.
        address: SocketAddr,
        /// hyper's error.
        source: hyper::Error,
    },
    /// The request failed after it was handed to the connection.
    #[error("exchange with {address} failed: {source}")]
    Exchange {
        /// The endpoint.
        address: SocketAddr,
        /// hyper's error.
        source: hyper::Error,
    },
    /// Writing the request or reading the answer failed (lean HTTP/1.1 path).
    #[error("exchange with {address} failed: {source}")]
    Io {
        /// The endpoint.
        address: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The upstream closed the connection before a complete answer head.
    #[error("{address} closed the connection before answering")]
    Closed {
        /// The endpoint.
        address: SocketAddr,
    },
    /// The answer's head is not HTTP/1.x, or too large.
    #[error("bad answer head from {address}: {reason}")]
    BadAnswer {
        /// The endpoint.
        address: SocketAddr,
        /// What is wrong with it.
        reason: String,
    },
    /// The request could not be built (bad rewritten path or host).
    #[error("cannot build the upstream request: {0}")]
    BadRequest(String),
}

impl HttpError {
    /// The proxy error (and so the local reply) this failure maps to.
    pub fn into_proxy_error(self) -> ProxyError {
        let kind = match &self {
            // The client's body broke while it was being sent on.
            HttpError::Exchange { source, .. } if super::upstream::is_client_body_error(source) => {
                ErrorKind::BadRequest
            }
            HttpError::Connect { .. }
            | HttpError::ConnectTimeout { .. }
            | HttpError::Tls { .. }
            | HttpError::Handshake { .. } => ErrorKind::ConnectFailure,
            HttpError::Exchange { .. }
            | HttpError::Io { .. }
            | HttpError::Closed { .. }
            | HttpError::BadAnswer { .. } => ErrorKind::UpstreamReset,
            HttpError::BadRequest(_) => ErrorKind::BadRequest,
        };
        let origin = match kind {
            ErrorKind::BadRequest => Origin::Downstream,
            _ => Origin::Upstream,
        };
        // The message names the causes too (a TLS alert under hyper's
        // "connection error", for instance).
        let e = ProxyError::new(kind, origin, with_causes(&self));
        // An answer that broke HTTP would come back the same way: a failure
        // of the endpoint, not worth a retry.
        let e = match self {
            HttpError::BadAnswer { .. } => e.with_retry(false),
            _ => e,
        };
        e.with_cause(self)
    }
}
