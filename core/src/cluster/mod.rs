//! Clusters: endpoints with labels, zones and priorities, subsets selected
//! by labels, a load balancer per subset and priority level, health (active
//! checks and outlier detection), circuit breakers and hash policies.

pub mod balancer;
pub mod breaker;
pub mod checker;
pub mod endpoint;
pub mod hash;
pub mod hash_policy;
pub mod health;
mod load_cache;
mod outlier;
pub mod priority;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use balancer::Balancer;
pub use breaker::{BreakerLimits, CircuitBreaker, Permit, Resource};
pub use checker::HealthChecker;
pub use endpoint::{ActiveGuard, Endpoint};
pub use hash_policy::{AffinityCookie, HashDecision, HashPolicy};
pub use health::{Outcome, OutlierPolicy, health_changes, now_ms};
pub use load_cache::LoadCache;
pub use priority::{LevelHealth, PriorityLoad};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use crate::codec::UpstreamMode;
use crate::config::LbPolicy;

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
    /// All its endpoints, drained ones included.
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Its endpoints that take traffic (not drained), by priority, highest (0) first.
    pub levels: Vec<Level>,
    /// The levels' priority load, computed again only when health changes.
    pub load: LoadCache,
}

impl Subset {
    /// Groups `endpoints` by priority and builds a balancer per level.
    pub fn new(name: String, policy: LbPolicy, endpoints: Vec<Arc<Endpoint>>) -> Self {
        Self::with_drained(name, policy, endpoints, |_| false)
    }

    /// Like [`Subset::new`], leaving the endpoints `drained` holds for out of
    /// every level: they are kept (health checks, state) but take no traffic.
    pub fn with_drained(
        name: String,
        policy: LbPolicy,
        endpoints: Vec<Arc<Endpoint>>,
        drained: impl Fn(&Endpoint) -> bool,
    ) -> Self {
        let serving: Vec<_> = endpoints.iter().filter(|e| !drained(e)).cloned().collect();
        let mut priorities: Vec<u32> = serving.iter().map(|e| e.priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        let levels = priorities
            .into_iter()
            .map(|priority| {
                let members: Vec<_> = serving
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
            load: LoadCache::default(),
        }
    }

    /// Whether `endpoint` is a member that is drained (in no level).
    pub fn is_drained(&self, endpoint: &Endpoint) -> bool {
        self.endpoints.iter().any(|e| std::ptr::eq(&**e, endpoint))
            && !self
                .levels
                .iter()
                .any(|l| l.endpoints.iter().any(|e| std::ptr::eq(&**e, endpoint)))
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
    /// The most calls in flight at once on one `pipeline` connection.
    pub pipeline_depth: usize,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// The cluster's circuit breaker (connections, pending requests).
    pub breaker: Arc<CircuitBreaker>,
    /// TLS to the endpoints, when the cluster has `tls:`.
    pub tls: Option<Arc<crate::tls::ClusterTls>>,
    /// An idle exclusive connection older than this is closed, not reused.
    pub idle_timeout: Duration,
}

/// How traffic spreads over priorities and what happens when few endpoints are healthy.
#[derive(Debug, Clone, Copy)]
pub struct FailoverPolicy {
    /// Below this percentage of healthy endpoints, ignore health (0 disables).
    pub panic_threshold: f64,
    /// A level's health is multiplied by this before spilling over (1.4 as Envoy).
    pub overprovisioning: f64,
}

/// The endpoints a cluster routes to at one moment: swapped whole when
/// discovery changes them, read lock-free by every pick.
#[derive(Debug)]
pub struct EndpointSet {
    /// Index 0 is the whole cluster; then the named subsets, in config order.
    pub subsets: Vec<Subset>,
    /// The endpoints that came from the cluster's discovery source (also in
    /// `subsets`), in the order the source gave them.
    pub discovered: Vec<Arc<Endpoint>>,
}

impl EndpointSet {
    /// Every endpoint, drained ones included.
    pub fn all(&self) -> &[Arc<Endpoint>] {
        &self.subsets[0].endpoints
    }
}

/// How a cluster's endpoint set is laid out: what stays fixed when
/// discovery changes the discovered part.
#[derive(Debug)]
pub struct SetLayout {
    /// The balancer of every level.
    pub lb: LbPolicy,
    /// Named subsets and their label selectors, in config order.
    pub subsets: Vec<(String, BTreeMap<String, String>)>,
    /// The endpoints written in the config.
    pub fixed: Vec<Arc<Endpoint>>,
    /// Those of `fixed` that are drained.
    pub drained: Vec<Arc<Endpoint>>,
}

impl SetLayout {
    /// Builds the set of `fixed` plus `discovered` endpoints.
    pub fn build(&self, discovered: Vec<Arc<Endpoint>>) -> EndpointSet {
        let is_drained = |e: &Endpoint| self.drained.iter().any(|d| std::ptr::eq(&**d, e));
        let mut all = self.fixed.clone();
        all.extend(discovered.iter().cloned());
        let mut subsets = vec![Subset::with_drained(
            String::new(),
            self.lb,
            all.clone(),
            is_drained,
        )];
        for (name, selector) in &self.subsets {
            let members: Vec<_> = all
                .iter()
                .filter(|e| e.has_labels(selector))
                .cloned()
                .collect();
            subsets.push(Subset::with_drained(
                name.clone(),
                self.lb,
                members,
                is_drained,
            ));
        }
        EndpointSet {
            subsets,
            discovered,
        }
    }
}

/// A cluster built from config: what it is made of ([`ClusterParts`],
/// fixed for its life) and its endpoint set, which discovery swaps in place.
pub struct Cluster {
    /// Name, protocol, pool, codec and policies.
    pub parts: ClusterParts,
    /// The current endpoints and subsets.
    endpoints: ArcSwap<EndpointSet>,
    /// What the endpoint set is rebuilt from.
    pub layout: SetLayout,
    /// Where endpoints are discovered, when the cluster has `discovery:`.
    pub discovery: Option<Arc<crate::discovery::Feed>>,
    /// Cancelled when the cluster is dropped (a reload replaced it): its
    /// health checks and discovery updates stop.
    retired: CancellationToken,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.retired.cancel();
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.parts.name)
            .field("protocol", &self.parts.protocol)
            .field("endpoints", &self.endpoints.load())
            .finish_non_exhaustive()
    }
}

/// What a cluster is made of besides its endpoints.
#[derive(Debug)]
pub struct ClusterParts {
    /// Unique name.
    pub name: Arc<str>,
    /// Protocol name.
    pub protocol: String,
    /// Upstream pool settings.
    pub pool: PoolSettings,
    /// The protocol's cluster-side codec, type-erased.
    pub codec: Arc<dyn Any + Send + Sync>,
    /// Hash policy.
    pub hash_policy: Vec<HashPolicy>,
    /// Passive outlier detection.
    pub outlier: Option<OutlierPolicy>,
    /// Active health checks.
    pub health_checker: Option<HealthChecker>,
    /// Priority spill-over and panic mode.
    pub failover: FailoverPolicy,
    /// What the cluster's connection pools depend on.
    pub fingerprint: String,
}

/// What applying a discovered endpoint list changed.
#[derive(Debug, Default)]
pub struct SetChange {
    /// Endpoints new to the cluster (their health checks must start).
    pub added: Vec<Arc<Endpoint>>,
    /// How many discovered endpoints left.
    pub removed: usize,
    /// Whether the set was rebuilt.
    pub changed: bool,
}

impl Cluster {
    /// A cluster of `parts` whose endpoints are `layout`'s fixed ones plus
    /// `discovered`.
    pub fn new(
        parts: ClusterParts,
        layout: SetLayout,
        discovered: Vec<Arc<Endpoint>>,
        discovery: Option<Arc<crate::discovery::Feed>>,
    ) -> Self {
        let set = layout.build(discovered);
        Self {
            parts,
            endpoints: ArcSwap::from_pointee(set),
            layout,
            discovery,
            retired: CancellationToken::new(),
        }
    }

    /// The current endpoint set (a lock-free snapshot).
    pub fn endpoints(&self) -> arc_swap::Guard<Arc<EndpointSet>> {
        self.endpoints.load()
    }

    /// Cancelled once the cluster is dropped.
    pub fn retired(&self) -> CancellationToken {
        self.retired.clone()
    }

    /// Replaces the discovered part of the endpoint set with `found`.
    /// Endpoints that stay (same address, labels and weight) are kept with
    /// their pools, health and outlier state; the others are new; those that
    /// left drain (requests in flight finish on them, no new ones go there).
    /// An address written in the config, or given twice, is taken once.
    pub fn apply_discovered(&self, found: &[crate::discovery::DiscoveredEndpoint]) -> SetChange {
        let current = self.endpoints.load_full();
        let mut seen: std::collections::HashSet<std::net::SocketAddr> =
            self.layout.fixed.iter().map(|e| e.address).collect();
        let mut next = Vec::with_capacity(found.len());
        let mut added = Vec::new();
        let by_address: std::collections::HashMap<_, _> =
            current.discovered.iter().map(|e| (e.address, e)).collect();
        for d in found {
            if !seen.insert(d.address) {
                continue;
            }
            let kept = by_address
                .get(&d.address)
                .filter(|old| {
                    old.labels == d.labels
                        && old.weight == d.weight.max(1)
                        && old.priority == d.priority
                })
                .map(|old| Arc::clone(old));
            next.push(kept.unwrap_or_else(|| {
                let fresh = Arc::new(
                    Endpoint::new(d.address, d.labels.clone(), d.weight).with_priority(d.priority),
                );
                added.push(fresh.clone());
                fresh
            }));
        }
        let same = next.len() == current.discovered.len()
            && next
                .iter()
                .zip(&current.discovered)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        if same {
            return SetChange::default();
        }
        let stay: std::collections::HashSet<*const Endpoint> =
            next.iter().map(Arc::as_ptr).collect();
        let mut removed = 0;
        for old in &current.discovered {
            if !stay.contains(&Arc::as_ptr(old)) {
                old.mark_removed();
                removed += 1;
            }
        }
        self.endpoints.store(Arc::new(self.layout.build(next)));
        SetChange {
            added,
            removed,
            changed: true,
        }
    }

    /// Index of the subset named `name`.
    pub fn subset_index(&self, name: &str) -> Option<usize> {
        if name.is_empty() {
            return Some(0);
        }
        self.layout
            .subsets
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| i + 1)
    }

    /// The name of subset `index` (`""` for the whole cluster).
    pub fn subset_name(&self, index: usize) -> &str {
        match index {
            0 => "",
            i => self.layout.subsets.get(i - 1).map_or("", |(n, _)| n),
        }
    }

    /// The circuit breaker.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.parts.pool.breaker
    }

    /// Whether picks must look at endpoint health.
    fn tracks_health(&self) -> bool {
        self.parts.outlier.is_some() || self.parts.health_checker.is_some()
    }

    /// Whether `endpoint` is drained: kept, but out of load balancing.
    pub fn is_drained(&self, endpoint: &Endpoint) -> bool {
        self.endpoints.load().subsets[0].is_drained(endpoint)
    }

    /// Picks an endpoint of subset `subset` for one request, skipping `exclude`
    /// (endpoints a retry already tried) when another one is available.
    /// Drained endpoints are never picked.
    pub fn pick(
        &self,
        subset: usize,
        hash: Option<u64>,
        exclude: &[&Endpoint],
    ) -> Option<Arc<Endpoint>> {
        let set = self.endpoints.load();
        self.pick_in(set.subsets.get(subset)?, hash, exclude)
            .cloned()
    }

    fn pick_in<'a>(
        &self,
        s: &'a Subset,
        hash: Option<u64>,
        exclude: &[&Endpoint],
    ) -> Option<&'a Arc<Endpoint>> {
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
        // Per-level health, as Envoy computes priority load (cached until
        // health changes).
        let cached = s.load.get(&s.levels, now, &self.parts.failover);
        let load = &cached.load;
        if !load.panic {
            let chosen = load.level_for(fastrand::f64());
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
        // Panic mode: too few healthy endpoints to be choosy; spread over
        // every level's endpoints, each level taking its share of them.
        let total: usize = s.levels.iter().map(|l| l.endpoints.len()).sum();
        let mut at = fastrand::usize(..total.max(1));
        let first = s
            .levels
            .iter()
            .position(|l| {
                let here = at < l.endpoints.len();
                at = at.saturating_sub(l.endpoints.len());
                here
            })
            .unwrap_or(0);
        let order = std::iter::once(first).chain((0..s.levels.len()).filter(|i| *i != first));
        for level in order.filter_map(|i| s.levels.get(i)) {
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

/// Clusters built by hand for unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::collections::BTreeMap;

    /// Endpoints `127.0.0.1:2000+i` with the given priorities.
    pub(crate) fn endpoints(priorities: &[u32]) -> Vec<Arc<Endpoint>> {
        priorities
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
            .collect()
    }

    /// A round-robin cluster over `endpoints`, with the ones `drained`
    /// selects out of load balancing, ejecting on the first gateway error.
    pub(crate) fn cluster_of(
        endpoints: Vec<Arc<Endpoint>>,
        drained: impl Fn(&Endpoint) -> bool,
    ) -> Cluster {
        let drained_list: Vec<_> = endpoints.iter().filter(|e| drained(e)).cloned().collect();
        let layout = SetLayout {
            lb: LbPolicy::RoundRobin,
            subsets: Vec::new(),
            fixed: endpoints,
            drained: drained_list,
        };
        Cluster::new(parts(), layout, Vec::new(), None)
    }

    /// The parts of every test cluster: multiplexed, ejecting on the first
    /// gateway error, no hash policy.
    fn parts() -> ClusterParts {
        ClusterParts {
            name: Arc::from("c"),
            protocol: "dubbo".into(),
            pool: PoolSettings {
                mode: UpstreamMode::Multiplex,
                connections_per_endpoint: 1,
                pipeline_depth: 16,
                connect_timeout: Duration::from_secs(1),
                breaker: Arc::new(CircuitBreaker::default()),
                tls: None,
                idle_timeout: Duration::from_secs(60),
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

    /// A ring-hash cluster of `n` endpoints hashing with `policy`.
    pub(crate) fn hashed_cluster(n: usize, policy: Vec<HashPolicy>) -> Cluster {
        let mut parts = parts();
        parts.hash_policy = policy;
        let layout = SetLayout {
            lb: LbPolicy::RingHash,
            subsets: Vec::new(),
            fixed: endpoints(&vec![0; n]),
            drained: Vec::new(),
        };
        Cluster::new(parts, layout, Vec::new(), None)
    }

    /// [`cluster_of`] with endpoints at `priorities`, none drained.
    pub(crate) fn cluster(priorities: &[u32]) -> Cluster {
        cluster_of(endpoints(priorities), |_| false)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::cluster;
    use super::*;

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
        let p = c.parts.outlier.clone().unwrap();
        let eject = |i: usize| {
            let all = c.endpoints().all().to_vec();
            all[i].record_outcome(Outcome::GatewayError, &p, &all);
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

    #[tokio::test(start_paused = true)]
    async fn traffic_returns_when_an_ejection_ends_with_no_other_health_change() {
        let c = cluster(&[0, 1]);
        assert_eq!(share_of_priority_1(&c), 0.0);
        let p = c.parts.outlier.clone().unwrap();
        let all = c.endpoints().all().to_vec();
        all[0].record_outcome(Outcome::GatewayError, &p, &all);
        // The load is computed once here and kept while health stays put.
        assert_eq!(share_of_priority_1(&c), 1.0);
        // The ejection (60 s) ends: no health change is counted for that,
        // yet the kept load must not outlive it.
        tokio::time::advance(p.base_ejection + Duration::from_secs(1)).await;
        assert_eq!(share_of_priority_1(&c), 0.0);
    }

    #[test]
    fn retries_avoid_tried_endpoints_and_panic_mode_uses_everyone() {
        let mut c = cluster(&[0, 0]);
        let first = c.pick(0, None, &[]).unwrap();
        for _ in 0..20 {
            assert_ne!(c.pick(0, None, &[&first]).unwrap().address, first.address);
        }
        c.parts.failover.panic_threshold = 50.0;
        let p = c.parts.outlier.clone().unwrap();
        let all = c.endpoints().all().to_vec();
        all[0].record_outcome(Outcome::GatewayError, &p, &all);
        all[1].record_outcome(Outcome::GatewayError, &p, &all);
        assert!(c.pick(0, None, &[]).is_some(), "panic mode still routes");
    }

    #[test]
    fn panic_mode_spreads_over_every_priority_level() {
        // One endpoint in each of two levels, both ejected: panic mode.
        let mut c = cluster(&[0, 1]);
        c.parts.failover.panic_threshold = 50.0;
        let p = c.parts.outlier.clone().unwrap();
        let all = c.endpoints().all().to_vec();
        all[0].record_outcome(Outcome::GatewayError, &p, &all);
        all[1].record_outcome(Outcome::GatewayError, &p, &all);
        let share = share_of_priority_1(&c);
        assert!((0.4..=0.6).contains(&share), "priority 1 share {share}");
    }

    #[test]
    fn drained_endpoints_take_no_traffic_and_do_not_count_for_health() {
        // Zone A (priority 0): two endpoints, one drained; zone B: one.
        let eps = testing::endpoints(&[0, 0, 1]);
        let drained = eps[1].clone();
        let mut c = testing::cluster_of(eps, |e| std::ptr::eq(e, &*drained));
        c.parts.failover.panic_threshold = 50.0;
        assert!(c.is_drained(&drained));
        assert!(!c.is_drained(&c.endpoints().all()[0]));
        for _ in 0..200 {
            let e = c.pick(0, None, &[]).unwrap();
            assert_eq!(e.address, c.endpoints().all()[0].address);
        }
        // Even a retry that already tried the only live one in A stays off it.
        let first = c.endpoints().all()[0].clone();
        for _ in 0..50 {
            let e = c.pick(0, None, &[&first]).unwrap();
            assert_eq!(
                e.priority, 1,
                "the retry goes to zone B, not the drained one"
            );
        }
        // The drained endpoint does not count as a healthy member of A: with
        // A's live endpoint ejected, A is empty and everything goes to B
        // (1 of 2 serving endpoints healthy: no panic at 50%).
        let p = c.parts.outlier.clone().unwrap();
        let all = c.endpoints().all().to_vec();
        all[0].record_outcome(Outcome::GatewayError, &p, &all);
        assert_eq!(share_of_priority_1(&c), 1.0);
    }

    #[test]
    fn a_fully_drained_subset_has_no_endpoint() {
        let c = testing::cluster_of(testing::endpoints(&[0, 1]), |_| true);
        assert!(c.pick(0, None, &[]).is_none());
        let mut c = testing::cluster_of(testing::endpoints(&[0]), |_| true);
        c.parts.outlier = None;
        assert!(c.pick(0, None, &[]).is_none(), "fast path too");
    }
}
