//! Endpoint health: the verdict of active checks and passive outlier
//! detection, kept in atomics and read by the load balancer on every pick.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tracing::info;

use super::endpoint::Endpoint;

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
    /// for connect failures, resets and timeouts; `None` for failures that
    /// say nothing about the endpoint.
    pub fn of_error(kind: crate::error::ErrorKind) -> Option<Self> {
        use crate::error::ErrorKind;
        matches!(
            kind,
            ErrorKind::ConnectFailure | ErrorKind::UpstreamReset | ErrorKind::Timeout
        )
        .then_some(Outcome::GatewayError)
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
    consecutive_errors: AtomicU32,
    consecutive_gateway_errors: AtomicU32,
    ejected_until_ms: AtomicU64,
    times_ejected: AtomicU32,
    last_ejection_ms: AtomicU64,
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
            return true;
        }
        false
    }
}

/// Records `outcome` for `endpoint` and ejects it if the policy says so,
/// unless too many of `peers` (the cluster's endpoints) are ejected already.
/// Returns whether this outcome ejected it.
pub fn record_outcome(
    endpoint: &Endpoint,
    outcome: Outcome,
    policy: &OutlierPolicy,
    peers: &[Arc<Endpoint>],
) -> bool {
    let h = &endpoint.health;
    let (errors, gateway) = match outcome {
        Outcome::Success => {
            h.consecutive_errors.store(0, Ordering::Relaxed);
            h.consecutive_gateway_errors.store(0, Ordering::Relaxed);
            return false;
        }
        Outcome::ServerError => {
            h.consecutive_gateway_errors.store(0, Ordering::Relaxed);
            (h.consecutive_errors.fetch_add(1, Ordering::Relaxed) + 1, 0)
        }
        Outcome::GatewayError => (
            h.consecutive_errors.fetch_add(1, Ordering::Relaxed) + 1,
            h.consecutive_gateway_errors.fetch_add(1, Ordering::Relaxed) + 1,
        ),
    };
    if errors < policy.consecutive_errors && gateway < policy.consecutive_gateway_errors {
        return false;
    }
    let now = now_ms();
    if h.is_ejected(now) {
        return false;
    }
    let ejected = peers.iter().filter(|p| p.health.is_ejected(now)).count();
    let cap = (peers.len() as u64 * u64::from(policy.max_ejection_percent) / 100).max(1) as usize;
    if ejected >= cap {
        return false;
    }
    // A host that stayed healthy for a while starts its multiplier again.
    let last = h.last_ejection_ms.load(Ordering::Relaxed);
    let until = h.ejected_until_ms.load(Ordering::Relaxed);
    if last > 0 && now.saturating_sub(until) > policy.interval.as_millis() as u64 * 10 {
        h.times_ejected.store(0, Ordering::Relaxed);
    }
    let times = h.times_ejected.fetch_add(1, Ordering::Relaxed) + 1;
    let duration = policy.base_ejection.as_millis() as u64 * u64::from(times.min(10));
    h.ejected_until_ms.store(now + duration, Ordering::Relaxed);
    h.last_ejection_ms.store(now, Ordering::Relaxed);
    h.consecutive_errors.store(0, Ordering::Relaxed);
    h.consecutive_gateway_errors.store(0, Ordering::Relaxed);
    info!(
        endpoint = %endpoint.address,
        times,
        ejected_for_ms = duration,
        errors,
        gateway_errors = gateway,
        "outlier detection ejected an endpoint"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ep(i: u16) -> Arc<Endpoint> {
        Arc::new(Endpoint::new(
            format!("127.0.0.1:{}", 1000 + i).parse().unwrap(),
            BTreeMap::new(),
            1,
        ))
    }

    fn policy() -> OutlierPolicy {
        OutlierPolicy {
            consecutive_errors: 3,
            consecutive_gateway_errors: 2,
            base_ejection: Duration::from_secs(30),
            max_ejection_percent: 50,
            interval: Duration::from_secs(10),
        }
    }

    #[test]
    fn consecutive_errors_eject_and_success_resets() {
        let peers: Vec<_> = (0..4).map(ep).collect();
        let p = policy();
        record_outcome(&peers[0], Outcome::ServerError, &p, &peers);
        record_outcome(&peers[0], Outcome::ServerError, &p, &peers);
        record_outcome(&peers[0], Outcome::Success, &p, &peers);
        record_outcome(&peers[0], Outcome::ServerError, &p, &peers);
        assert!(peers[0].health.is_available(now_ms()), "streak was reset");
        record_outcome(&peers[0], Outcome::ServerError, &p, &peers);
        record_outcome(&peers[0], Outcome::ServerError, &p, &peers);
        assert!(!peers[0].health.is_available(now_ms()));
        assert_eq!(peers[0].health.times_ejected(), 1);
        // Gateway errors eject sooner.
        record_outcome(&peers[1], Outcome::GatewayError, &p, &peers);
        record_outcome(&peers[1], Outcome::GatewayError, &p, &peers);
        assert!(peers[1].health.is_ejected(now_ms()));
        // 50% of 4 = 2 ejected at most.
        for _ in 0..5 {
            record_outcome(&peers[2], Outcome::GatewayError, &p, &peers);
        }
        assert!(!peers[2].health.is_ejected(now_ms()));
    }

    /// Ejection deadlines on tokio's paused clock: no real waiting.
    #[tokio::test(start_paused = true)]
    async fn ejection_time_grows_with_each_ejection_and_resets_after_a_healthy_spell() {
        use tokio::time::advance;
        let peers: Vec<_> = (0..2).map(ep).collect();
        let p = OutlierPolicy {
            consecutive_errors: 5,
            consecutive_gateway_errors: 1,
            base_ejection: Duration::from_secs(30),
            max_ejection_percent: 100,
            interval: Duration::from_secs(10),
        };
        let fail = || record_outcome(&peers[0], Outcome::GatewayError, &p, &peers);
        let available = || peers[0].health.is_available(now_ms());
        assert!(fail(), "first ejection");
        advance(Duration::from_secs(29)).await;
        assert!(!available(), "still out after 29s of 30s");
        advance(Duration::from_secs(2)).await;
        assert!(available(), "back after 30s");
        // Second ejection: twice the base time.
        assert!(fail());
        assert_eq!(peers[0].health.times_ejected(), 2);
        advance(Duration::from_secs(59)).await;
        assert!(!available(), "still out after 59s of 60s");
        advance(Duration::from_secs(2)).await;
        assert!(available());
        // Healthy for more than 10 × interval: the multiplier starts over.
        advance(Duration::from_secs(101)).await;
        assert!(fail());
        assert_eq!(peers[0].health.times_ejected(), 1);
        advance(Duration::from_secs(31)).await;
        assert!(available(), "30s again, not 90s");
        // The multiplier is capped at 10 × base.
        for round in 2..=12u64 {
            assert!(fail());
            let expected = 30 * round.min(10);
            advance(Duration::from_secs(expected - 1)).await;
            assert!(!available(), "round {round}: out for {expected}s");
            advance(Duration::from_secs(2)).await;
            assert!(available(), "round {round}: back after {expected}s");
        }
    }

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
