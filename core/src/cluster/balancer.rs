//! Load balancers: weighted round robin, weighted random, least request
//! (P2C), ring hash and Maglev.
//!
//! Each is built once per endpoint list when the config loads; picking takes
//! no lock. Picks take an `accept` predicate (health, endpoints already tried
//! by a retry) and look further when the first choice is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::LbPolicy;

use super::endpoint::Endpoint;
use super::hash::{Maglev, Ring};

/// Largest smooth-WRR schedule precomputed; bigger weight sums fall back to weighted random.
const MAX_SCHEDULE: u64 = 4096;
/// Steps a hash walk takes before it falls back to a scan.
const MAX_WALK: usize = 4096;

/// Picks an endpoint for each request.
#[derive(Debug)]
pub enum Balancer {
    /// Round robin over a precomputed smooth weighted schedule of endpoint indexes.
    RoundRobin {
        /// Endpoint indexes in visiting order.
        schedule: Vec<u32>,
        /// Next position.
        next: AtomicUsize,
    },
    /// Weighted random: cumulative weights.
    Random {
        /// Cumulative weights, ascending.
        cumulative: Vec<u64>,
    },
    /// Power of two random choices, fewer active requests (per weight) wins.
    LeastRequest,
    /// Consistent hashing on a ring.
    RingHash(Ring),
    /// Maglev consistent hashing.
    Maglev(Box<Maglev>),
}

impl Balancer {
    /// Builds the balancer for `policy` over `endpoints`.
    pub fn new(policy: LbPolicy, endpoints: &[Arc<Endpoint>]) -> Self {
        let weights: Vec<u32> = endpoints.iter().map(|e| e.weight).collect();
        let ids = || -> Vec<String> { endpoints.iter().map(|e| e.address.to_string()).collect() };
        match policy {
            LbPolicy::RoundRobin
                if weights.iter().map(|w| u64::from(*w)).sum::<u64>() <= MAX_SCHEDULE =>
            {
                Balancer::RoundRobin {
                    schedule: smooth_weighted_schedule(&weights),
                    next: AtomicUsize::new(fastrand::usize(..weights.len().max(1))),
                }
            }
            LbPolicy::RoundRobin | LbPolicy::Random => Balancer::Random {
                cumulative: weights
                    .iter()
                    .scan(0u64, |acc, w| {
                        *acc += u64::from(*w);
                        Some(*acc)
                    })
                    .collect(),
            },
            LbPolicy::LeastRequest => Balancer::LeastRequest,
            LbPolicy::RingHash => Balancer::RingHash(Ring::new(&ids(), &weights)),
            LbPolicy::Maglev => Balancer::Maglev(Box::new(Maglev::new(&ids(), &weights))),
        }
    }

    /// Whether picks depend on the request's hash key.
    pub fn uses_hash(&self) -> bool {
        matches!(self, Balancer::RingHash(_) | Balancer::Maglev(_))
    }

    /// Picks one of `endpoints` (the list the balancer was built for).
    pub fn pick<'a>(
        &self,
        endpoints: &'a [Arc<Endpoint>],
        hash: Option<u64>,
    ) -> Option<&'a Arc<Endpoint>> {
        self.pick_where(endpoints, hash, |_| true)
    }

    /// Picks one of `endpoints` that `accept` allows; `None` when none does.
    pub fn pick_where<'a>(
        &self,
        endpoints: &'a [Arc<Endpoint>],
        hash: Option<u64>,
        accept: impl Fn(&Endpoint) -> bool,
    ) -> Option<&'a Arc<Endpoint>> {
        let n = endpoints.len();
        if n == 0 {
            return None;
        }
        let ok = |i: usize| endpoints.get(i).filter(|e| accept(e));
        let first = match self {
            Balancer::RoundRobin { schedule, next } => {
                // Visit the schedule until an accepted endpoint comes up.
                for _ in 0..schedule.len().min(n * 4).max(1) {
                    let at = next.fetch_add(1, Ordering::Relaxed);
                    if let Some(e) = ok(schedule[at % schedule.len()] as usize) {
                        return Some(e);
                    }
                }
                0
            }
            Balancer::Random { cumulative } => {
                let total = *cumulative.last()?;
                for _ in 0..3 {
                    let roll = fastrand::u64(0..total.max(1));
                    if let Some(e) = ok(cumulative.partition_point(|c| *c <= roll)) {
                        return Some(e);
                    }
                }
                fastrand::usize(..n)
            }
            Balancer::LeastRequest => {
                let load = |e: &Endpoint| (e.active() as u64 + 1) * 1_000_000 / u64::from(e.weight);
                let a = ok(fastrand::usize(..n));
                let b = ok(fastrand::usize(..n));
                match (a, b) {
                    (Some(a), Some(b)) => return Some(if load(a) <= load(b) { a } else { b }),
                    (Some(x), None) | (None, Some(x)) => return Some(x),
                    (None, None) => fastrand::usize(..n),
                }
            }
            Balancer::RingHash(ring) => match hash {
                Some(h) => {
                    if let Some(e) = ring.walk(h).take(MAX_WALK).find_map(&ok) {
                        return Some(e);
                    }
                    0
                }
                None => fastrand::usize(..n),
            },
            Balancer::Maglev(table) => match hash {
                Some(h) => {
                    if let Some(e) = table.walk(h).take(MAX_WALK).find_map(&ok) {
                        return Some(e);
                    }
                    0
                }
                None => fastrand::usize(..n),
            },
        };
        // Scan from `first` for anything acceptable.
        (0..n).find_map(|i| ok((first + i) % n))
    }
}

/// Smooth weighted round robin (as nginx orders it): spreads heavy endpoints
/// between light ones instead of sending them bursts.
fn smooth_weighted_schedule(weights: &[u32]) -> Vec<u32> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut schedule = Vec::with_capacity(total.max(1) as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += i64::from(*w);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        schedule.push(best as u32);
    }
    if schedule.is_empty() {
        schedule.push(0);
    }
    schedule
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn eps(weights: &[u32]) -> Vec<Arc<Endpoint>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                Arc::new(Endpoint::new(
                    format!("127.0.0.1:{}", 1000 + i).parse().unwrap(),
                    BTreeMap::new(),
                    *w,
                ))
            })
            .collect()
    }

    fn counts(b: &Balancer, e: &[Arc<Endpoint>], n: usize) -> Vec<usize> {
        let mut c = vec![0; e.len()];
        for i in 0..n {
            let p = b
                .pick(e, Some(crate::cluster::hash::stable_hash(&i.to_be_bytes())))
                .unwrap();
            c[e.iter().position(|x| Arc::ptr_eq(x, p)).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn round_robin_follows_weights_exactly() {
        let e = eps(&[3, 1]);
        let b = Balancer::new(LbPolicy::RoundRobin, &e);
        assert_eq!(counts(&b, &e, 400), vec![300, 100]);
        assert_eq!(smooth_weighted_schedule(&[2, 1]), vec![0, 1, 0]);
    }

    #[test]
    fn random_roughly_follows_weights() {
        let e = eps(&[9, 1]);
        let b = Balancer::new(LbPolicy::Random, &e);
        let c = counts(&b, &e, 10_000);
        assert!((8_600..=9_400).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn least_request_avoids_busy_endpoint() {
        let e = eps(&[1, 1]);
        let _busy: Vec<_> = (0..50).map(|_| e[0].start_request()).collect();
        let b = Balancer::new(LbPolicy::LeastRequest, &e);
        let c = counts(&b, &e, 1000);
        assert!(c[1] > 700, "{c:?}");
        assert!(b.pick(&[], None).is_none());
    }

    #[test]
    fn every_policy_skips_refused_endpoints() {
        let e = eps(&[1, 1, 1]);
        for policy in [
            LbPolicy::RoundRobin,
            LbPolicy::Random,
            LbPolicy::LeastRequest,
            LbPolicy::RingHash,
            LbPolicy::Maglev,
        ] {
            let b = Balancer::new(policy, &e);
            for k in 0..200u64 {
                let p = b
                    .pick_where(&e, Some(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)), |x| {
                        x.address.port() != 1001
                    })
                    .unwrap();
                assert_ne!(p.address.port(), 1001, "{policy:?}");
            }
            assert!(b.pick_where(&e, Some(1), |_| false).is_none(), "{policy:?}");
        }
    }

    #[test]
    fn hash_policies_are_sticky() {
        let e = eps(&[1, 1, 1, 1]);
        for policy in [LbPolicy::RingHash, LbPolicy::Maglev] {
            let b = Balancer::new(policy, &e);
            for k in 0..100u64 {
                let h = crate::cluster::hash::stable_hash(&k.to_be_bytes());
                let first = b.pick(&e, Some(h)).unwrap().address;
                for _ in 0..5 {
                    assert_eq!(b.pick(&e, Some(h)).unwrap().address, first, "{policy:?}");
                }
            }
            let c = counts(&b, &e, 4000);
            assert!(
                c.iter().all(|n| (700..=1300).contains(n)),
                "{policy:?} {c:?}"
            );
        }
    }
}
