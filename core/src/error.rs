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
    /// HTTP only: the status to answer with instead of the kind's default
    /// (e.g. 429 from a rate limit). Other protocols ignore it.
    pub http_status: Option<u16>,
    /// HTTP only: extra response headers (e.g. `retry-after`). Other protocols ignore them.
    pub http_headers: Vec<(String, String)>,
}

impl ProxyError {
    /// Builds an error of `kind` with a message.
    pub fn new(kind: ErrorKind, origin: ErrorSource, message: impl Into<String>) -> Self {
        Self {
            kind,
            origin,
            message: message.into(),
            http_status: None,
            http_headers: Vec::new(),
        }
    }

    /// Sets the HTTP status used instead of the kind's default.
    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Adds an HTTP response header to the local reply.
    pub fn with_http_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.http_headers.push((name.into(), value.into()));
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
