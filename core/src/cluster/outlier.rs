//! Passive outlier detection: what each exchange's outcome does to an
//! endpoint's ejection state.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::info;

use super::endpoint::Endpoint;
use super::health::{Outcome, OutlierPolicy, now_ms};

impl Endpoint {
    /// Records `outcome` for this endpoint and ejects it if the policy says
    /// so, unless too many of `peers` (the cluster's endpoints) are ejected
    /// already. Returns whether this outcome ejected it.
    pub fn record_outcome(
        &self,
        outcome: Outcome,
        policy: &OutlierPolicy,
        peers: &[Arc<Endpoint>],
    ) -> bool {
        let h = &self.health;
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
        let cap =
            (peers.len() as u64 * u64::from(policy.max_ejection_percent) / 100).max(1) as usize;
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
        super::health::note_health_change();
        h.last_ejection_ms.store(now, Ordering::Relaxed);
        h.consecutive_errors.store(0, Ordering::Relaxed);
        h.consecutive_gateway_errors.store(0, Ordering::Relaxed);
        info!(
            endpoint = %self.address,
            times,
            ejected_for_ms = duration,
            errors,
            gateway_errors = gateway,
            "outlier detection ejected an endpoint"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

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
        peers[0].record_outcome(Outcome::ServerError, &p, &peers);
        peers[0].record_outcome(Outcome::ServerError, &p, &peers);
        peers[0].record_outcome(Outcome::Success, &p, &peers);
        peers[0].record_outcome(Outcome::ServerError, &p, &peers);
        assert!(peers[0].health.is_available(now_ms()), "streak was reset");
        peers[0].record_outcome(Outcome::ServerError, &p, &peers);
        peers[0].record_outcome(Outcome::ServerError, &p, &peers);
        assert!(!peers[0].health.is_available(now_ms()));
        assert_eq!(peers[0].health.times_ejected(), 1);
        // Gateway errors eject sooner.
        peers[1].record_outcome(Outcome::GatewayError, &p, &peers);
        peers[1].record_outcome(Outcome::GatewayError, &p, &peers);
        assert!(peers[1].health.is_ejected(now_ms()));
        // 50% of 4 = 2 ejected at most.
        for _ in 0..5 {
            peers[2].record_outcome(Outcome::GatewayError, &p, &peers);
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
        let fail = || peers[0].record_outcome(Outcome::GatewayError, &p, &peers);
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
}
