//! The one error type shared by every crate: a kind, where it came from and a message.
//!
//! Every [`ErrorKind`] maps to exactly one local reply per protocol; rendering
//! that reply is the codec's job ([`crate::Codec::local_reply`]).

use std::fmt;

/// What went wrong, as far as the client's reply is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No route matched the request's metadata.
    RouteNotFound,
    /// The matched route names a cluster that does not exist.
    ClusterNotFound,
    /// The cluster (or subset) has no endpoint to send the request to.
    NoHealthyUpstream,
    /// A connection to the chosen upstream could not be established.
    ConnectFailure,
    /// A limit (circuit breaker, rate limit, in-flight cap) refused the request.
    OverLimit,
    /// The upstream did not answer within the route's timeout.
    Timeout,
    /// The upstream connection closed or failed before the answer arrived.
    UpstreamReset,
    /// The request could not be understood.
    BadRequest,
    /// A filter denied the request.
    PermissionDenied,
    /// A bug or an unexpected state inside the proxy.
    Internal,
}

impl ErrorKind {
    /// A short, stable, human-readable name (used in logs and replies).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RouteNotFound => "route not found",
            ErrorKind::ClusterNotFound => "cluster not found",
            ErrorKind::NoHealthyUpstream => "no healthy upstream",
            ErrorKind::ConnectFailure => "upstream connect failure",
            ErrorKind::OverLimit => "over limit",
            ErrorKind::Timeout => "upstream timeout",
            ErrorKind::UpstreamReset => "upstream reset",
            ErrorKind::BadRequest => "bad request",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Internal => "internal error",
        }
    }
}

impl ErrorKind {
    /// A stable snake_case name for metrics labels and machine-read headers
    /// (`route_not_found`, `over_limit`, ...).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::RouteNotFound => "route_not_found",
            ErrorKind::ClusterNotFound => "cluster_not_found",
            ErrorKind::NoHealthyUpstream => "no_healthy_upstream",
            ErrorKind::ConnectFailure => "connect_failure",
            ErrorKind::OverLimit => "over_limit",
            ErrorKind::Timeout => "timeout",
            ErrorKind::UpstreamReset => "upstream_reset",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side of the proxy an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The client sent something wrong.
    Downstream,
    /// The upstream failed.
    Upstream,
    /// The proxy itself decided (routing, limits, filters).
    Internal,
}

/// An error that ends one request with a local reply.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ProxyError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Where it came from.
    pub origin: ErrorSource,
    /// Detail shown to the client and logged.
    pub message: String,
    /// The status of the local reply, in the HTTP status space (e.g. 429
    /// from a rate limit), instead of the one the kind implies. Each codec
    /// maps it to its own: HTTP answers with it as is; gRPC and the other
    /// RPC codecs answer with the status their kind maps to, and ignore it.
    pub reply_status: Option<u16>,
    /// Extra metadata for the local reply (e.g. `retry-after`), in order.
    /// Each codec puts it where it can: HTTP response headers, gRPC custom
    /// metadata (trailers of the trailers-only answer), Thrift THeader info
    /// headers. Dubbo replies have no slot for it, so Dubbo ignores it.
    pub reply_metadata: Vec<(String, String)>,
}

impl ProxyError {
    /// Builds an error of `kind` with a message.
    pub fn new(kind: ErrorKind, origin: ErrorSource, message: impl Into<String>) -> Self {
        Self {
            kind,
            origin,
            message: message.into(),
            reply_status: None,
            reply_metadata: Vec::new(),
        }
    }

    /// Sets the local reply's status (HTTP status space) used instead of the
    /// kind's default; see [`ProxyError::reply_status`].
    pub fn with_reply_status(mut self, status: u16) -> Self {
        self.reply_status = Some(status);
        self
    }

    /// Adds one entry of metadata to the local reply; see
    /// [`ProxyError::reply_metadata`].
    pub fn with_reply_metadata(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.reply_metadata.push((name.into(), value.into()));
        self
    }

    /// Whether trying again on another host might succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::ConnectFailure | ErrorKind::UpstreamReset | ErrorKind::Timeout
        )
    }

    /// The text a client sees: `metaproxy: <kind>: <message>`.
    pub fn client_message(&self) -> String {
        format!("metaproxy: {}: {}", self.kind, self.message)
    }
}
