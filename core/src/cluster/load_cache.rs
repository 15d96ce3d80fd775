//! A subset's priority load, computed once per change of health instead
//! of on every pick.
//!
//! Computing it counts the available endpoints of every level: O(number of
//! endpoints). Health changes rarely (a check verdict flips, an endpoint is
//! ejected, an ejection ends), so the result is kept with the process-wide
//! count of health changes ([`health_changes`]) and the first moment an
//! ejection in it ends; a pick reuses it until either moves.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::health::health_changes;
use super::{FailoverPolicy, Level, LevelHealth, PriorityLoad};

/// The load of one subset's levels, as last computed.
#[derive(Debug, Default)]
pub struct LoadCache {
    last: ArcSwapOption<CachedLoad>,
}

/// One computation and when it stops being true.
#[derive(Debug)]
pub struct CachedLoad {
    changes: u64,
    until_ms: u64,
    overprovisioning: f64,
    panic_threshold: f64,
    /// The traffic share of each level, and panic mode.
    pub load: PriorityLoad,
}

impl LoadCache {
    /// The priority load of `levels` at `now` (see [`super::now_ms`]).
    pub fn get(&self, levels: &[Level], now: u64, failover: &FailoverPolicy) -> Arc<CachedLoad> {
        // Read before the endpoints: a change made meanwhile moves the count
        // past this one, so the next pick computes again.
        let changes = health_changes();
        if let Some(last) = self.last.load_full()
            && last.changes == changes
            && now < last.until_ms
            && last.overprovisioning == failover.overprovisioning
            && last.panic_threshold == failover.panic_threshold
        {
            return last;
        }
        let mut until_ms = u64::MAX;
        let health: Vec<LevelHealth> = levels
            .iter()
            .map(|level| LevelHealth {
                healthy: level
                    .endpoints
                    .iter()
                    .filter(|e| {
                        let ejected_until = e.health.ejected_until_ms();
                        if ejected_until > now {
                            until_ms = until_ms.min(ejected_until);
                        }
                        e.health.is_available(now)
                    })
                    .count(),
                total: level.endpoints.len(),
            })
            .collect();
        let computed = Arc::new(CachedLoad {
            changes,
            until_ms,
            overprovisioning: failover.overprovisioning,
            panic_threshold: failover.panic_threshold,
            load: PriorityLoad::compute(
                &health,
                failover.overprovisioning,
                failover.panic_threshold,
            ),
        });
        self.last.store(Some(computed.clone()));
        computed
    }
}
