//! Circuit breakers: per-cluster caps on connections, pending requests,
//! active requests and active retries. A request over a cap is refused at
//! once (no queue), and the overflow is counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Configured caps.
#[derive(Debug, Clone)]
pub struct BreakerLimits {
    /// Most open upstream connections.
    pub max_connections: usize,
    /// Most requests waiting for a connection.
    pub max_pending: usize,
    /// Most requests in flight.
    pub max_requests: usize,
    /// Most retries in flight (without a budget).
    pub max_retries: usize,
    /// Requests per connection before it is replaced.
    pub max_requests_per_connection: Option<u64>,
    /// Retry budget: percent of active requests, and the floor.
    pub retry_budget: Option<(f64, usize)>,
}

impl Default for BreakerLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending: 1024,
            max_requests: 1024,
            max_retries: 3,
            max_requests_per_connection: None,
            retry_budget: None,
        }
    }
}

/// Which counter a permit holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// An open connection.
    Connection,
    /// A request waiting for a connection.
    Pending,
    /// A request in flight.
    Request,
    /// A retry in flight.
    Retry,
}

/// Live counters of one cluster.
#[derive(Debug, Default)]
pub struct CircuitBreaker {
    /// The caps.
    pub limits: BreakerLimits,
    connections: AtomicUsize,
    pending: AtomicUsize,
    requests: AtomicUsize,
    retries: AtomicUsize,
    overflows: AtomicU64,
}

/// Holds one unit of a counter until dropped.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<CircuitBreaker>,
    resource: Resource,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.breaker
            .counter(self.resource)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl CircuitBreaker {
    /// A breaker with `limits`.
    pub fn new(limits: BreakerLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    fn counter(&self, r: Resource) -> &AtomicUsize {
        match r {
            Resource::Connection => &self.connections,
            Resource::Pending => &self.pending,
            Resource::Request => &self.requests,
            Resource::Retry => &self.retries,
        }
    }

    fn cap(&self, r: Resource) -> usize {
        match r {
            Resource::Connection => self.limits.max_connections,
            Resource::Pending => self.limits.max_pending,
            Resource::Request => self.limits.max_requests,
            Resource::Retry => match self.limits.retry_budget {
                Some((percent, floor)) => {
                    let active = self.requests.load(Ordering::Relaxed) as f64;
                    ((active * percent / 100.0) as usize).max(floor)
                }
                None => self.limits.max_retries,
            },
        }
    }

    /// Takes one unit of `resource`, or `None` (counted as an overflow) when at the cap.
    pub fn try_acquire(self: &Arc<Self>, resource: Resource) -> Option<Permit> {
        let cap = self.cap(resource);
        let counter = self.counter(resource);
        if counter.fetch_add(1, Ordering::Relaxed) >= cap {
            counter.fetch_sub(1, Ordering::Relaxed);
            self.overflows.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Permit {
            breaker: self.clone(),
            resource,
        })
    }

    /// Current value of a counter.
    pub fn current(&self, resource: Resource) -> usize {
        self.counter(resource).load(Ordering::Relaxed)
    }

    /// Requests refused so far.
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_releases() {
        let b = Arc::new(CircuitBreaker::new(BreakerLimits {
            max_requests: 2,
            ..BreakerLimits::default()
        }));
        let p1 = b.try_acquire(Resource::Request).unwrap();
        let _p2 = b.try_acquire(Resource::Request).unwrap();
        assert!(b.try_acquire(Resource::Request).is_none());
        assert_eq!(b.overflows(), 1);
        drop(p1);
        assert!(b.try_acquire(Resource::Request).is_some());
        assert_eq!(b.current(Resource::Request), 1);
    }

    #[test]
    fn retry_budget_scales_with_active_requests() {
        let b = Arc::new(CircuitBreaker::new(BreakerLimits {
            retry_budget: Some((20.0, 1)),
            ..BreakerLimits::default()
        }));
        let _reqs: Vec<_> = (0..10)
            .map(|_| b.try_acquire(Resource::Request).unwrap())
            .collect();
        let _r1 = b.try_acquire(Resource::Retry).unwrap();
        let _r2 = b.try_acquire(Resource::Retry).unwrap();
        assert!(b.try_acquire(Resource::Retry).is_none(), "20% of 10 = 2");
    }
}
