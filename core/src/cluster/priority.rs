//! Priority load: how much of a subset's traffic each priority level
//! takes, from the share of its endpoints that are healthy (Envoy's
//! overprovisioning factor), and when health stops mattering (panic mode).

/// Healthy and serving endpoints of one priority level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelHealth {
    /// Endpoints that may take traffic now.
    pub healthy: usize,
    /// Endpoints of the level that are not drained.
    pub total: usize,
}

/// The traffic share of each level, in percent, and whether the subset is
/// in panic mode.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorityLoad {
    /// Percent of requests per level (sums to at most 100).
    pub loads: Vec<f64>,
    /// Too few endpoints are healthy: ignore health and use all of them.
    pub panic: bool,
}

impl PriorityLoad {
    /// Splits traffic over `levels` (priority 0 first).
    ///
    /// Each level takes `healthy share × overprovisioning` percent of what
    /// the levels before it left, capped at 100: with a factor of 1.4 a
    /// level keeps all its traffic while 72% of it is healthy. Panic mode
    /// starts when no level can take anything, or when fewer than
    /// `panic_threshold` percent of all endpoints are healthy.
    pub fn compute(levels: &[LevelHealth], overprovisioning: f64, panic_threshold: f64) -> Self {
        let mut loads = Vec::with_capacity(levels.len());
        let mut assigned = 0.0f64;
        let (mut healthy, mut total) = (0usize, 0usize);
        for level in levels {
            healthy += level.healthy;
            total += level.total;
            let pct = if level.total == 0 {
                0.0
            } else {
                (100.0 * level.healthy as f64 / level.total as f64 * overprovisioning).min(100.0)
            };
            let load = pct.min(100.0 - assigned);
            assigned += load;
            loads.push(load);
        }
        let healthy_pct = 100.0 * healthy as f64 / total.max(1) as f64;
        let panic = assigned <= 0.0 || healthy_pct < panic_threshold;
        Self { loads, panic }
    }

    /// The level a roll in `[0, 1)` lands on (weighted by the loads).
    pub fn level_for(&self, roll: f64) -> usize {
        let assigned: f64 = self.loads.iter().sum();
        let target = roll * assigned;
        let mut upper = 0.0;
        self.loads
            .iter()
            .position(|l| {
                upper += l;
                target < upper
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(healthy: usize, total: usize) -> LevelHealth {
        LevelHealth { healthy, total }
    }

    #[test]
    fn healthy_first_level_takes_everything() {
        let p = PriorityLoad::compute(&[level(5, 5), level(2, 2)], 1.4, 50.0);
        assert_eq!(p.loads, vec![100.0, 0.0]);
        assert!(!p.panic);
        // 72% healthy × 1.4 still rounds up to all of it.
        let p = PriorityLoad::compute(&[level(4, 5), level(2, 2)], 1.4, 50.0);
        assert_eq!(p.loads, vec![100.0, 0.0]);
    }

    #[test]
    fn spill_over_follows_the_overprovisioning_factor() {
        // Half healthy × 1.4 = 70% stays, 30% moves (Envoy's example).
        let p = PriorityLoad::compute(&[level(1, 2), level(1, 1)], 1.4, 0.0);
        assert!((p.loads[0] - 70.0).abs() < 1e-9, "{p:?}");
        assert!((p.loads[1] - 30.0).abs() < 1e-9, "{p:?}");
        // Three levels: the second is also half down, the third takes the rest.
        let p = PriorityLoad::compute(&[level(1, 4), level(1, 2), level(3, 3)], 1.4, 0.0);
        assert!((p.loads[0] - 35.0).abs() < 1e-9, "{p:?}");
        assert!((p.loads[1] - 65.0).abs() < 1e-9, "{p:?}");
        assert_eq!(p.loads[2], 0.0);
        // A factor of 1 spills exactly the unhealthy share.
        let p = PriorityLoad::compute(&[level(3, 4), level(4, 4)], 1.0, 0.0);
        assert_eq!(p.loads, vec![75.0, 25.0]);
    }

    #[test]
    fn a_level_with_nobody_healthy_or_nobody_at_all_takes_nothing() {
        let p = PriorityLoad::compute(&[level(0, 2), level(2, 2)], 1.4, 50.0);
        assert_eq!(p.loads, vec![0.0, 100.0]);
        assert!(!p.panic, "half of all endpoints are healthy");
        let p = PriorityLoad::compute(&[level(0, 0), level(1, 1)], 1.4, 50.0);
        assert_eq!(p.loads, vec![0.0, 100.0]);
        assert!(!p.panic);
    }

    #[test]
    fn panic_below_the_threshold_or_when_nothing_is_healthy() {
        let p = PriorityLoad::compute(&[level(1, 3), level(0, 1)], 1.4, 50.0);
        assert!(p.panic, "25% healthy < 50%");
        let p = PriorityLoad::compute(&[level(1, 3), level(0, 1)], 1.4, 0.0);
        assert!(!p.panic, "threshold 0 disables panic mode");
        let p = PriorityLoad::compute(&[level(0, 3)], 1.4, 0.0);
        assert!(p.panic, "nothing healthy at all");
        let p = PriorityLoad::compute(&[], 1.4, 0.0);
        assert!(p.panic);
    }

    #[test]
    fn rolls_land_on_levels_by_load() {
        let p = PriorityLoad::compute(&[level(1, 2), level(1, 1)], 1.4, 0.0);
        assert_eq!(p.level_for(0.0), 0);
        assert_eq!(p.level_for(0.69), 0);
        assert_eq!(p.level_for(0.71), 1);
        assert_eq!(p.level_for(0.999), 1);
    }
}
