//! What a cluster's active health checks are: the probe and its settings.
//! The probes themselves and the loop that runs them are in
//! [`crate::health_check`], which also opens [`ProbeTarget::connect`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::tls::ClusterTls;

/// The future a probe returns: `Ok` when healthy, else why not.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

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
