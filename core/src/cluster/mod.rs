//! Clusters: endpoints with labels and priorities, subsets selected by
//! labels, a load balancer per subset and priority level, health (active
//! checks and outlier detection), circuit breakers and hash policies.

pub mod balancer;
pub mod breaker;
pub mod endpoint;
pub mod hash;
pub mod hash_policy;
pub mod health;

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use balancer::Balancer;
pub use breaker::{BreakerLimits, CircuitBreaker, Permit, Resource};
pub use endpoint::{ActiveGuard, Endpoint};
pub use hash_policy::{HashDecision, HashPolicy};
pub use health::{Outcome, OutlierPolicy, now_ms};

use crate::codec::UpstreamMode;
use crate::config::LbPolicy;
use crate::health_check::HealthChecker;

/// Endpoints of one priority level within a subset.
#[derive(Debug)]
pub struct Level {
    /// The priority (0 first).
    pub priority: u32,
    /// Its endpoints.
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Picks among them.
    pub balancer: Balancer,
}

/// A named group of endpoints: the whole cluster or a label-selected part.
#[derive(Debug)]
pub struct Subset {
    /// The subset name (`""` for the whole cluster).
    pub name: String,
    /// All its endpoints.
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Its endpoints by priority, highest (0) first.
    pub levels: Vec<Level>,
}

impl Subset {
    /// Groups `endpoints` by priority and builds a balancer per level.
    pub fn new(name: String, policy: LbPolicy, endpoints: Vec<Arc<Endpoint>>) -> Self {
        let mut priorities: Vec<u32> = endpoints.iter().map(|e| e.priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        let levels = priorities
            .into_iter()
            .map(|priority| {
                let members: Vec<_> = endpoints
                    .iter()
                    .filter(|e| e.priority == priority)
                    .cloned()
                    .collect();
                Level {
                    priority,
                    balancer: Balancer::new(policy, &members),
                    endpoints: members,
                }
            })
            .collect();
        Self {
            name,
            endpoints,
            levels,
        }
    }
}

/// Settings for the upstream connections of every endpoint of a cluster.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// How requests share connections.
    pub mode: UpstreamMode,
    /// Connections per endpoint: shared ones (multiplex, pipeline) or the
    /// most open at once (exclusive).
    pub connections_per_endpoint: usize,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// The cluster's circuit breaker (connections, pending requests).
    pub breaker: Arc<CircuitBreaker>,
}

/// How traffic spreads over priorities and what happens when few endpoints are healthy.
#[derive(Debug, Clone, Copy)]
pub struct FailoverPolicy {
    /// Below this percentage of healthy endpoints, ignore health (0 disables).
    pub panic_threshold: f64,
    /// A level's health is multiplied by this before spilling over (1.4 as Envoy).
    pub overprovisioning: f64,
}

/// A cluster built from config.
pub struct Cluster {
    /// Unique name.
    pub name: Arc<str>,
    /// Protocol name.
    pub protocol: String,
    /// Index 0 is the whole cluster; then the named subsets.
    pub subsets: Vec<Subset>,
    /// Upstream pool settings.
    pub pool: PoolSettings,
    /// The protocol's cluster-side codec, type-erased (`Arc<C>` inside);
    /// the engine downcasts it to the listener's codec type.
    pub codec: Arc<dyn Any + Send + Sync>,
    /// Hash policy for consistent-hash balancers.
    pub hash_policy: Vec<HashPolicy>,
    /// Passive outlier detection.
    pub outlier: Option<OutlierPolicy>,
    /// Active health checks.
    pub health_checker: Option<HealthChecker>,
    /// Priority spill-over and panic mode.
    pub failover: FailoverPolicy,
    /// What the cluster's connection pools depend on (compared across reloads).
    pub fingerprint: String,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("subsets", &self.subsets)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Index of the subset named `name`.
    pub fn subset_index(&self, name: &str) -> Option<usize> {
        self.subsets.iter().position(|s| s.name == name)
    }

    /// The circuit breaker.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.pool.breaker
    }

    /// Whether picks must look at endpoint health.
    fn tracks_health(&self) -> bool {
        self.outlier.is_some() || self.health_checker.is_some()
    }

    /// Picks an endpoint of subset `subset` for one request, skipping `exclude`
    /// (endpoints a retry already tried) when another one is available.
    pub fn pick(
        &self,
        subset: usize,
        hash: Option<u64>,
        exclude: &[&Endpoint],
    ) -> Option<&Arc<Endpoint>> {
        let s = self.subsets.get(subset)?;
        let not_tried = |e: &Endpoint| !exclude.iter().any(|x| std::ptr::eq(*x, e));
        if !self.tracks_health() && s.levels.len() == 1 {
            let level = &s.levels[0];
            return level
                .balancer
                .pick_where(&level.endpoints, hash, not_tried)
                .or_else(|| level.balancer.pick(&level.endpoints, hash));
        }
        let now = now_ms();
        let available = |e: &Endpoint| e.health.is_available(now);
        // Per-level health, as Envoy computes priority load.
        let mut healthy_total = 0usize;
        let mut loads = Vec::with_capacity(s.levels.len());
        let mut assigned = 0.0f64;
        for level in &s.levels {
            let healthy = level.endpoints.iter().filter(|e| available(e)).count();
            healthy_total += healthy;
            let pct = if level.endpoints.is_empty() {
                0.0
            } else {
                (100.0 * healthy as f64 / level.endpoints.len() as f64
                    * self.failover.overprovisioning)
                    .min(100.0)
            };
            let load = pct.min(100.0 - assigned);
            assigned += load;
            loads.push(load);
        }
        let healthy_pct = 100.0 * healthy_total as f64 / s.endpoints.len().max(1) as f64;
        let panic = assigned <= 0.0 || healthy_pct < self.failover.panic_threshold;
        if !panic {
            let roll = fastrand::f64() * assigned;
            let mut upper = 0.0;
            let chosen = loads
                .iter()
                .position(|l| {
                    upper += l;
                    roll < upper
                })
                .unwrap_or(0);
            let order = std::iter::once(chosen).chain((0..s.levels.len()).filter(|i| *i != chosen));
            for i in order {
                let level = &s.levels[i];
                if let Some(e) = level
                    .balancer
                    .pick_where(&level.endpoints, hash, |e| available(e) && not_tried(e))
                {
                    return Some(e);
                }
            }
            for level in &s.levels {
                if let Some(e) = level.balancer.pick_where(&level.endpoints, hash, available) {
                    return Some(e);
                }
            }
        }
        // Panic mode: too few healthy endpoints to be choosy; spread over all of them.
        for level in &s.levels {
            if let Some(e) = level
                .balancer
                .pick_where(&level.endpoints, hash, not_tried)
                .or_else(|| level.balancer.pick(&level.endpoints, hash))
            {
                return Some(e);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn cluster(priorities: &[u32]) -> Cluster {
        let endpoints: Vec<_> = priorities
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Arc::new(
                    Endpoint::new(
                        format!("127.0.0.1:{}", 2000 + i).parse().unwrap(),
                        BTreeMap::new(),
                        1,
                    )
                    .with_priority(*p),
                )
            })
            .collect();
        Cluster {
            name: Arc::from("c"),
            protocol: "dubbo".into(),
            subsets: vec![Subset::new(String::new(), LbPolicy::RoundRobin, endpoints)],
            pool: PoolSettings {
                mode: UpstreamMode::Multiplex,
                connections_per_endpoint: 1,
                connect_timeout: Duration::from_secs(1),
                breaker: Arc::new(CircuitBreaker::default()),
            },
            codec: Arc::new(()),
            hash_policy: Vec::new(),
            outlier: Some(OutlierPolicy {
                consecutive_errors: 1,
                consecutive_gateway_errors: 1,
                base_ejection: Duration::from_secs(60),
                max_ejection_percent: 100,
                interval: Duration::from_secs(10),
            }),
            health_checker: None,
            failover: FailoverPolicy {
                panic_threshold: 0.0,
                overprovisioning: 1.4,
            },
            fingerprint: String::new(),
        }
    }

    fn share_of_priority_1(c: &Cluster) -> f64 {
        let n = 2000;
        let hits = (0..n)
            .filter(|_| c.pick(0, None, &[]).unwrap().priority == 1)
            .count();
        hits as f64 / n as f64
    }

    #[test]
    fn traffic_stays_in_priority_0_until_too_few_are_healthy() {
        let c = cluster(&[0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(share_of_priority_1(&c), 0.0);
        let p = c.outlier.clone().unwrap();
        let eject = |i: usize| {
            let all = c.subsets[0].endpoints.clone();
            health::record_outcome(&all[i], Outcome::GatewayError, &p, &all);
        };
        // 4 of 5 healthy × 1.4 = 112% → still all in priority 0.
        eject(0);
        assert_eq!(share_of_priority_1(&c), 0.0);
        // 2 of 5 healthy × 1.4 = 56% → about 44% spills to priority 1.
        eject(1);
        eject(2);
        let spill = share_of_priority_1(&c);
        assert!((0.38..=0.50).contains(&spill), "{spill}");
        // None healthy in priority 0: everything goes to priority 1.
        eject(3);
        eject(4);
        assert_eq!(share_of_priority_1(&c), 1.0);
    }

    #[test]
    fn retries_avoid_tried_endpoints_and_panic_mode_uses_everyone() {
        let mut c = cluster(&[0, 0]);
        let first = c.pick(0, None, &[]).unwrap().clone();
        for _ in 0..20 {
            assert_ne!(c.pick(0, None, &[&first]).unwrap().address, first.address);
        }
        c.failover.panic_threshold = 50.0;
        let p = c.outlier.clone().unwrap();
        let all = c.subsets[0].endpoints.clone();
        health::record_outcome(&all[0], Outcome::GatewayError, &p, &all);
        health::record_outcome(&all[1], Outcome::GatewayError, &p, &all);
        assert!(c.pick(0, None, &[]).is_some(), "panic mode still routes");
    }
}
