//! Load balancers: weighted round robin, weighted random, least request (P2C).
//!
//! Each is built once per subset when the config loads; picking takes no lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::LbPolicy;

use super::endpoint::Endpoint;

/// Largest smooth-WRR schedule precomputed; bigger weight sums fall back to weighted random.
const MAX_SCHEDULE: u64 = 4096;

/// Picks an endpoint index for each request.
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
}

impl Balancer {
    /// Builds the balancer for `policy` over `endpoints`.
    pub fn new(policy: LbPolicy, endpoints: &[Arc<Endpoint>]) -> Self {
        let weights: Vec<u64> = endpoints.iter().map(|e| u64::from(e.weight)).collect();
        match policy {
            LbPolicy::RoundRobin if weights.iter().sum::<u64>() <= MAX_SCHEDULE => {
                Balancer::RoundRobin {
                    schedule: smooth_weighted_schedule(&weights),
                    next: AtomicUsize::new(fastrand::usize(..weights.len().max(1))),
                }
            }
            LbPolicy::RoundRobin | LbPolicy::Random => Balancer::Random {
                cumulative: weights
                    .iter()
                    .scan(0u64, |acc, w| {
                        *acc += w;
                        Some(*acc)
                    })
                    .collect(),
            },
            LbPolicy::LeastRequest => Balancer::LeastRequest,
        }
    }

    /// Picks one of `endpoints` (the same list the balancer was built for).
    pub fn pick<'a>(&self, endpoints: &'a [Arc<Endpoint>]) -> Option<&'a Arc<Endpoint>> {
        if endpoints.is_empty() {
            return None;
        }
        let idx = match self {
            Balancer::RoundRobin { schedule, next } => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                schedule[n % schedule.len()] as usize
            }
            Balancer::Random { cumulative } => {
                let total = *cumulative.last()?;
                let roll = fastrand::u64(0..total);
                cumulative.partition_point(|c| *c <= roll)
            }
            Balancer::LeastRequest => {
                let a = fastrand::usize(..endpoints.len());
                let b = fastrand::usize(..endpoints.len());
                let load = |i: usize| {
                    let e = &endpoints[i];
                    (e.active() as u64 + 1) * 1_000_000 / u64::from(e.weight)
                };
                if load(a) <= load(b) { a } else { b }
            }
        };
        endpoints.get(idx)
    }
}

/// Smooth weighted round robin (as nginx orders it): spreads heavy endpoints
/// between light ones instead of sending them bursts.
fn smooth_weighted_schedule(weights: &[u64]) -> Vec<u32> {
    let total: i64 = weights.iter().map(|w| *w as i64).sum();
    let mut current = vec![0i64; weights.len()];
    let mut schedule = Vec::with_capacity(total.max(1) as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += *w as i64;
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
        for _ in 0..n {
            let p = b.pick(e).unwrap();
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
        assert!(b.pick(&[]).is_none());
    }
}
