//! What a cluster's active health checks are: the probe and its settings.
//! The probes themselves and the loop that runs them are in
//! [`crate::health_check`], which also opens [`ProbeTarget::connect`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConnectError;
use crate::tls::ClusterTls;

/// The future a probe returns: `Ok` when healthy, else why not.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), ProbeError>> + Send + 'static>>;

/// Why a health probe failed (logged when the endpoint's verdict flips).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The connection (TCP, then TLS) could not be opened.
    #[error("connect: {0}")]
    Connect(#[source] ConnectError),
    /// Writing the probe or reading its answer failed.
    #[error("{step}: {source}")]
    Io {
        /// `write` or `read`.
        step: &'static str,
        /// The socket's error.
        #[source]
        source: std::io::Error,
    },
    /// The endpoint closed the connection before it answered.
    #[error("closed before answering")]
    Closed,
    /// No verdict within the check's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer is not the protocol's (bad framing, not HTTP, a
    /// handshake or exchange that failed at the protocol level).
    #[error("bad answer: {0}")]
    BadAnswer(String),
    /// A well-formed answer that says the endpoint is not healthy
    /// (`status 503`, `grpc-status 12`, `NOT_SERVING`).
    #[error("unhealthy: {0}")]
    Unhealthy(String),
}

impl ProbeError {
    /// An [`Io`](ProbeError::Io) error at `step`.
    pub fn io(step: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| ProbeError::Io { step, source }
    }
}

/// What a probe checks: an endpoint, and the cluster's TLS when it has it.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The endpoint.
    pub address: SocketAddr,
    /// The cluster's TLS: probes then check over TLS, as traffic goes.
    pub tls: Option<Arc<ClusterTls>>,
}

impl ProbeTarget {
    /// A plain TCP target.
    pub fn plain(address: SocketAddr) -> Self {
        Self { address, tls: None }
    }
}

/// One kind of health probe.
pub trait Probe: Send + Sync + 'static {
    /// Checks `target`; the caller bounds it with the check's timeout.
    fn probe(&self, target: ProbeTarget) -> ProbeFuture;
}

/// Resolved settings of a cluster's checks.
#[derive(Clone)]
pub struct HealthChecker {
    /// The probe.
    pub probe: Arc<dyn Probe>,
    /// Between checks.
    pub interval: Duration,
    /// Per check.
    pub timeout: Duration,
    /// Failures in a row to mark unhealthy.
    pub unhealthy_threshold: u32,
    /// Passes in a row to mark healthy.
    pub healthy_threshold: u32,
}

impl std::fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecker")
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
