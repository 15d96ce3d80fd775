//! What can go wrong on the lean path's upstream side.

use std::net::SocketAddr;
use std::time::Duration;

use metaproxy_core::{ErrorKind, ErrorSource, ProxyError};

use super::head::HeadError;

/// An upstream exchange that failed before its answer's head was read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The TCP connect failed.
    #[error("connect to {address} failed: {source}")]
    Connect {
        /// The endpoint.
        address: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The TCP connect took too long.
    #[error("connect to {address} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The endpoint.
        address: SocketAddr,
        /// The cluster's connect timeout.
        timeout: Duration,
    },
    /// Writing the request or reading the answer failed.
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
}

impl ExchangeError {
    /// The answer head could not be parsed.
    pub(crate) fn bad(address: SocketAddr, e: HeadError) -> Self {
        ExchangeError::BadAnswer {
            address,
            reason: e.to_string(),
        }
    }

    /// The local error reply's error.
    pub(crate) fn into_proxy_error(self) -> ProxyError {
        let kind = match &self {
            ExchangeError::Connect { .. } | ExchangeError::ConnectTimeout { .. } => {
                ErrorKind::ConnectFailure
            }
            _ => ErrorKind::UpstreamReset,
        };
        ProxyError::new(kind, ErrorSource::Upstream, self.to_string())
    }
}

/// A body relay that stopped before the end of the message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    /// The upstream closed before the end of the body.
    #[error("upstream closed the body early")]
    Truncated,
    /// The chunked framing is broken.
    #[error("bad chunked body: {0}")]
    Chunked(#[from] super::chunked::ChunkError),
    /// No byte moved for the idle timeout.
    #[error("body idle for {0:?}")]
    Idle(Duration),
    /// A socket error on either side.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
