//! The one error type of the request path, shared by every crate: a kind,
//! where it came from, a retry decision, a cause chain and context.
//!
//! Every [`ErrorKind`] maps to exactly one local reply per protocol; rendering
//! that reply is the codec's job ([`crate::Codec::local_reply`]). The kind and
//! the origin together decide what the pipeline does with a failed try:
//! whether it counts against the endpoint (outlier detection) and whether the
//! route's retry policy may repeat it.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

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

/// Which side of the proxy an error came from. Only upstream failures count
/// against an endpoint or are retried: a client that hangs up mid-request
/// says nothing about the host it was talking to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client sent something wrong.
    Downstream,
    /// The upstream failed.
    Upstream,
    /// The proxy itself decided (routing, limits, filters).
    Internal,
}

/// Whether a failed try may be sent again (to another endpoint), before the
/// route's retry policy has its say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retry {
    /// Decided by kind and origin: an upstream connect failure, reset or
    /// timeout may be retried; nothing else is.
    #[default]
    ByKind,
    /// Decided where the error was raised, e.g. never for an upstream
    /// answer that broke the protocol (sending it again gets the same
    /// answer), whatever the policy says.
    Decided(bool),
}

/// A cause kept behind a [`ProxyError`] (shared, so the error stays `Clone`).
pub type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// An error that ends one request with a local reply.
#[derive(Debug, Clone)]
pub struct ProxyError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Where it came from.
    pub origin: Origin,
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
    /// Whether the try may be repeated; see [`ProxyError::is_retryable`].
    pub retry: Retry,
    /// What the proxy was doing, outermost first (`"mirror to shadow"`);
    /// logged, never shown to the client.
    context: Vec<Cow<'static, str>>,
    /// The lower-level error behind this one, if any (`source()`).
    cause: Option<Cause>,
}

impl ProxyError {
    /// Builds an error of `kind` with a message.
    pub fn new(kind: ErrorKind, origin: Origin, message: impl Into<String>) -> Self {
        Self {
            kind,
            origin,
            message: message.into(),
            reply_status: None,
            reply_metadata: Vec::new(),
            retry: Retry::ByKind,
            context: Vec::new(),
            cause: None,
        }
    }

    /// An error the upstream caused (connect failure, reset, bad answer).
    pub fn upstream(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, Origin::Upstream, message)
    }

    /// An error the client caused (bad request, broken body).
    pub fn downstream(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, Origin::Downstream, message)
    }

    /// An error the proxy decided (routing, limits, filters) or a bug.
    pub fn internal(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(kind, Origin::Internal, message)
    }

    /// Keeps `cause` as this error's [`source`](StdError::source): logs show
    /// the whole chain ([`ProxyError::chain`]), the client only the message.
    pub fn with_cause(mut self, cause: impl StdError + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }

    /// Adds what the proxy was doing when the error happened, as the new
    /// outermost context (`"mirror to shadow"`, `"health check"`).
    pub fn context(mut self, what: impl Into<Cow<'static, str>>) -> Self {
        self.context.insert(0, what.into());
        self
    }

    /// Fixes whether the try may be repeated, whatever its kind says.
    pub fn with_retry(mut self, retry: bool) -> Self {
        self.retry = Retry::Decided(retry);
        self
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

    /// Whether the upstream failed to answer at all: a connect failure,
    /// reset or timeout that came from the upstream. These count as gateway
    /// errors against the endpoint (outlier detection).
    pub fn is_upstream_failure(&self) -> bool {
        self.origin == Origin::Upstream
            && matches!(
                self.kind,
                ErrorKind::ConnectFailure | ErrorKind::UpstreamReset | ErrorKind::Timeout
            )
    }

    /// Whether trying again on another host might succeed: the decision
    /// made where the error was raised, else [`is_upstream_failure`](Self::is_upstream_failure).
    /// The route's retry policy then decides which of these it repeats.
    pub fn is_retryable(&self) -> bool {
        match self.retry {
            Retry::Decided(retry) => retry,
            Retry::ByKind => self.is_upstream_failure(),
        }
    }

    /// The text a client sees: `metaproxy: <kind>: <message>`.
    pub fn client_message(&self) -> String {
        format!("metaproxy: {}: {}", self.kind, self.message)
    }

    /// The whole story for a log line: context, kind, message and every
    /// cause that adds something (`mirror to shadow: upstream connect
    /// failure: cannot connect to 10.0.0.1:80: connection refused`).
    pub fn chain(&self) -> Chain<'_> {
        Chain(self)
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.context {
            write!(f, "{c}: ")?;
        }
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl StdError for ProxyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn StdError + 'static))
    }
}

/// Displays a [`ProxyError`] with its causes; see [`ProxyError::chain`].
#[derive(Debug)]
pub struct Chain<'a>(&'a ProxyError);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&with_causes(self.0))
    }
}

/// `e`'s message followed by each cause's that adds something (messages
/// often repeat their cause's text; it is shown once), joined by `: `.
pub fn with_causes(e: &(dyn StdError + 'static)) -> String {
    let mut shown = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !shown.contains(&text) {
            shown.push_str(": ");
            shown.push_str(&text);
        }
        next = cause.source();
    }
    shown
}

/// Why an upstream connection could not be opened (the cause behind a
/// connect failure, and a failed health probe's).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Neither the TCP connect nor the TLS handshake finished in time.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The TCP connect failed.
    #[error("{0}")]
    Tcp(std::io::Error),
    /// The TLS handshake failed (an untrusted or expired certificate, a
    /// refused client certificate, no common version or ALPN).
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
}

/// Why a protocol or filter factory refused its config section; the config
/// builder reports it at the place the section was written.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// An option has a value the plugin cannot use.
    #[error("`{option}`: {reason}")]
    InvalidOption {
        /// The option's name, or its path inside the section (`fields.id`).
        option: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// An option the plugin needs was not given.
    #[error("missing option `{0}`")]
    MissingOption(String),
    /// The section is not valid for this plugin (unknown field, wrong
    /// shape, or a combination the plugin does not support).
    #[error("{0}")]
    Invalid(String),
    /// The plugin could not use what the config points to (a file, an
    /// address), with the lower-level error.
    #[error("{what}: {source}")]
    Unusable {
        /// What could not be used.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
}

impl PluginError {
    /// An [`InvalidOption`](PluginError::InvalidOption) error.
    pub fn invalid_option(option: impl Into<String>, reason: impl fmt::Display) -> Self {
        PluginError::InvalidOption {
            option: option.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<String> for PluginError {
    fn from(message: String) -> Self {
        PluginError::Invalid(message)
    }
}

impl From<&str> for PluginError {
    fn from(message: &str) -> Self {
        PluginError::Invalid(message.to_string())
    }
}

impl From<serde_json::Error> for PluginError {
    fn from(e: serde_json::Error) -> Self {
        PluginError::Invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_upstream_failures_count_and_retry_unless_decided() {
        let reset = ProxyError::upstream(ErrorKind::UpstreamReset, "closed");
        assert!(reset.is_upstream_failure() && reset.is_retryable());
        let client = ProxyError::downstream(ErrorKind::UpstreamReset, "client body broke");
        assert!(!client.is_upstream_failure() && !client.is_retryable());
        let limit = ProxyError::internal(ErrorKind::OverLimit, "breaker");
        assert!(!limit.is_retryable());
        let bad = reset.clone().with_retry(false);
        assert!(bad.is_upstream_failure() && !bad.is_retryable());
        let forced = limit.with_retry(true);
        assert!(forced.is_retryable() && !forced.is_upstream_failure());
    }

    #[test]
    fn the_chain_shows_context_and_new_causes_and_the_client_sees_neither() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = ProxyError::upstream(ErrorKind::ConnectFailure, "cannot connect to 10.0.0.1:80")
            .with_cause(io)
            .context("try 2")
            .context("mirror to shadow");
        assert_eq!(
            e.to_string(),
            "mirror to shadow: try 2: upstream connect failure: cannot connect to 10.0.0.1:80"
        );
        assert_eq!(
            e.chain().to_string(),
            "mirror to shadow: try 2: upstream connect failure: cannot connect to 10.0.0.1:80: refused"
        );
        assert_eq!(e.source().unwrap().to_string(), "refused");
        assert_eq!(
            e.client_message(),
            "metaproxy: upstream connect failure: cannot connect to 10.0.0.1:80"
        );
        let repeated = ProxyError::upstream(ErrorKind::UpstreamReset, "io: broken pipe")
            .with_cause(std::io::Error::other("broken pipe"));
        assert_eq!(repeated.chain().to_string(), repeated.to_string());
    }

    #[test]
    fn plugin_errors_name_the_option() {
        let e = PluginError::invalid_option("max_depth", "must be at least 1");
        assert_eq!(e.to_string(), "`max_depth`: must be at least 1");
        let e = PluginError::Unusable {
            what: "spec file `x.yaml`".into(),
            source: Box::new(std::io::Error::other("not found")),
        };
        assert_eq!(e.to_string(), "spec file `x.yaml`: not found");
        assert!(e.source().is_some());
    }
}
