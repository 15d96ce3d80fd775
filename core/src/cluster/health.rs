//! Endpoint health: the verdict of active checks and passive outlier
//! detection, kept in atomics and read by the load balancer on every pick.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Milliseconds on a process-wide monotonic clock (never 0).
///
/// Read from tokio's clock, so tests with paused time control ejection
/// deadlines. The epoch is set a minute before the first reading: a paused
/// test clock starts where its runtime was built, which may be a little
/// before another thread's first reading, and must not read before the epoch.
pub fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = EPOCH.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(Duration::from_secs(60)).unwrap_or(now)
    });
    epoch.elapsed().as_millis() as u64 + 1
}

/// Changes of any endpoint's health verdict in this process (a check
/// verdict flipped, an endpoint ejected).
static HEALTH_CHANGES: AtomicU64 = AtomicU64::new(0);

/// How many health changes happened so far: cached views of health
/// ([`super::load_cache`]) are true while this stays the same (and no
/// ejection they saw has ended).
pub fn health_changes() -> u64 {
    HEALTH_CHANGES.load(Ordering::Acquire)
}

/// Counts one health change (after the change is stored).
pub(super) fn note_health_change() {
    HEALTH_CHANGES.fetch_add(1, Ordering::Release);
}

/// What one exchange with an endpoint says about its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It answered (including application errors: they are the caller's business).
    Success,
    /// It answered with a server-side failure (HTTP 5xx, Dubbo server error, Thrift internal error).
    ServerError,
    /// It could not be reached, reset, timed out or said it is unavailable.
    GatewayError,
}

impl Outcome {
    /// The outcome of an answer the codec classified as `class`.
    pub fn of_class(class: crate::codec::ResponseClass) -> Self {
        match class {
            crate::codec::ResponseClass::Success => Outcome::Success,
            crate::codec::ResponseClass::ServerError => Outcome::ServerError,
            crate::codec::ResponseClass::Unavailable => Outcome::GatewayError,
        }
    }

    /// The outcome of a try that failed without an answer: a gateway error
    /// for the upstream's own connect failures, resets and timeouts
    /// ([`ProxyError::is_upstream_failure`](crate::error::ProxyError::is_upstream_failure));
    /// `None` for failures that say nothing about the endpoint (a client
    /// that went away, a limit, a bug).
    pub fn of_error(e: &crate::error::ProxyError) -> Option<Self> {
        e.is_upstream_failure().then_some(Outcome::GatewayError)
    }
}

/// Passive outlier detection settings of a cluster.
#[derive(Debug, Clone)]
pub struct OutlierPolicy {
    /// Consecutive errors of any kind before ejection.
    pub consecutive_errors: u32,
    /// Consecutive gateway errors before ejection.
    pub consecutive_gateway_errors: u32,
    /// Ejection time for the first ejection (multiplied by the times ejected).
    pub base_ejection: Duration,
    /// Most endpoints ejected at once, percent.
    pub max_ejection_percent: u32,
    /// How long an ejection streak is remembered after the endpoint returns.
    pub interval: Duration,
}

/// Health state of one endpoint.
#[derive(Debug, Default)]
pub struct EndpointHealth {
    check_failed: AtomicBool,
    check_streak: AtomicU32,
    pub(super) consecutive_errors: AtomicU32,
    pub(super) consecutive_gateway_errors: AtomicU32,
    pub(super) ejected_until_ms: AtomicU64,
    pub(super) times_ejected: AtomicU32,
    pub(super) last_ejection_ms: AtomicU64,
}

impl EndpointHealth {
    /// Whether the endpoint may take traffic at `now` (see [`now_ms`]).
    pub fn is_available(&self, now: u64) -> bool {
        !self.check_failed.load(Ordering::Relaxed)
            && self.ejected_until_ms.load(Ordering::Relaxed) <= now
    }

    /// Whether active health checks currently fail it.
    pub fn check_failed(&self) -> bool {
        self.check_failed.load(Ordering::Relaxed)
    }

    /// Whether outlier detection has it ejected at `now`.
    pub fn is_ejected(&self, now: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now
    }

    /// Until when (see [`now_ms`]) outlier detection ejects it; 0 if never.
    pub fn ejected_until_ms(&self) -> u64 {
        self.ejected_until_ms.load(Ordering::Relaxed)
    }

    /// How many times it was ejected.
    pub fn times_ejected(&self) -> u32 {
        self.times_ejected.load(Ordering::Relaxed)
    }

    /// Records an active check result; returns whether the verdict changed.
    pub fn record_check(
        &self,
        passed: bool,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
    ) -> bool {
        let failed = self.check_failed.load(Ordering::Relaxed);
        if passed != failed {
            self.check_streak.store(0, Ordering::Relaxed);
            return false;
        }
        let streak = self.check_streak.fetch_add(1, Ordering::Relaxed) + 1;
        let threshold = if failed {
            healthy_threshold
        } else {
            unhealthy_threshold
        };
        if streak >= threshold.max(1) {
            self.check_failed.store(!failed, Ordering::Relaxed);
            self.check_streak.store(0, Ordering::Relaxed);
            note_health_change();
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_thresholds() {
        let h = EndpointHealth::default();
        assert!(!h.record_check(false, 2, 3));
        assert!(!h.record_check(false, 2, 3));
        assert!(
            h.record_check(false, 2, 3),
            "third failure flips to unhealthy"
        );
        assert!(!h.is_available(0));
        assert!(!h.record_check(true, 2, 3));
        assert!(h.record_check(true, 2, 3));
        assert!(h.is_available(0));
    }
}
