//! A lock-free token bucket: GCRA (the generic cell rate algorithm) with its
//! one piece of state, the theoretical arrival time, in an `AtomicU64`.
//!
//! A bucket of `burst` tokens refilled at `rate` tokens per second is the
//! same as: each request pushes the arrival time forward by one interval
//! `T = 1/rate`, and a request is allowed when the pushed time is at most
//! `burst × T` ahead of now. A refused request changes nothing. Taking a
//! token is one load and one compare-and-swap (retried only when another
//! thread took a token at the same instant).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Nanoseconds since a process-wide origin (the first call).
pub(crate) fn now_nanos() -> u64 {
    use std::sync::OnceLock;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Why a rate is refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub(crate) enum RateError {
    /// Zero, negative, infinite or not a number.
    #[error("tokens_per_second must be a positive number, not {0}")]
    NotPositive(f64),
    /// More than one token per nanosecond.
    #[error("tokens_per_second must be at most 1e9")]
    TooFast,
    /// A burst of zero tokens.
    #[error("burst must be at least 1")]
    NoBurst,
    /// `burst × interval` does not fit the clock's range.
    #[error("burst × (1 / tokens_per_second) is too large")]
    TooLarge,
}

/// How a bucket fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    /// Nanoseconds per token (the emission interval).
    interval: u64,
    /// `burst × interval`: how far ahead of now the arrival time may run.
    tolerance: u64,
}

impl Rate {
    /// `tokens_per_second` (> 0) with room for `burst` (≥ 1) tokens.
    pub(crate) fn new(tokens_per_second: f64, burst: u64) -> Result<Self, RateError> {
        if !(tokens_per_second.is_finite() && tokens_per_second > 0.0) {
            return Err(RateError::NotPositive(tokens_per_second));
        }
        if burst == 0 {
            return Err(RateError::NoBurst);
        }
        let interval = (1e9 / tokens_per_second).round();
        if interval < 1.0 {
            return Err(RateError::TooFast);
        }
        // Clamp absurdly slow rates (less than one token in ~30 years) so sums cannot overflow.
        let interval = interval.min(1e18) as u64;
        let tolerance = interval
            .checked_mul(burst)
            .filter(|t| *t <= u64::MAX / 4)
            .ok_or(RateError::TooLarge)?;
        Ok(Self {
            interval,
            tolerance,
        })
    }

    /// The burst this rate allows.
    #[cfg(test)]
    pub(crate) fn burst(&self) -> u64 {
        self.tolerance / self.interval
    }
}

/// A token bucket shared by many threads.
#[derive(Debug, Default)]
pub(crate) struct Bucket {
    /// Theoretical arrival time in [`now_nanos`] units; 0 = never used (full).
    tat: AtomicU64,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Takes one token at `now`: `Ok(())`, or `Err(wait)` until the next token.
    pub(crate) fn take(&self, rate: &Rate, now: u64) -> Result<(), Duration> {
        let mut current = self.tat.load(Ordering::Relaxed);
        loop {
            let start = current.max(now);
            let next = start + rate.interval;
            if next - now > rate.tolerance {
                return Err(Duration::from_nanos(next - now - rate.tolerance));
            }
            match self
                .tat
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// Whether the bucket is full at `now` (dropping it and starting a fresh one loses nothing).
    pub(crate) fn is_full(&self, now: u64) -> bool {
        self.tat.load(Ordering::Relaxed) <= now
    }

    /// The arrival time; smaller means fuller.
    pub(crate) fn arrival(&self) -> u64 {
        self.tat.load(Ordering::Relaxed)
    }
}

/// Whole seconds to wait (at least 1), for `retry-after`.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn burst_then_refill_at_rate() {
        let rate = Rate::new(10.0, 5).unwrap();
        assert_eq!(rate.burst(), 5);
        let b = Bucket::new();
        let t0 = 100 * SEC;
        for _ in 0..5 {
            assert!(b.take(&rate, t0).is_ok());
        }
        let wait = b.take(&rate, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // 100 ms later exactly one more token.
        assert!(b.take(&rate, t0 + SEC / 10).is_ok());
        assert!(b.take(&rate, t0 + SEC / 10).is_err());
        // After a long idle period the bucket is full again, not fuller.
        let later = t0 + 60 * SEC;
        assert!(b.is_full(later));
        let ok = (0..20).filter(|_| b.take(&rate, later).is_ok()).count();
        assert_eq!(ok, 5);
    }

    #[test]
    fn fractional_rates_and_bad_input() {
        let rate = Rate::new(0.5, 1).unwrap();
        let b = Bucket::new();
        assert!(b.take(&rate, SEC).is_ok());
        assert_eq!(b.take(&rate, SEC).unwrap_err(), Duration::from_secs(2));
        assert!(Rate::new(0.0, 1).is_err());
        assert!(Rate::new(f64::NAN, 1).is_err());
        assert!(Rate::new(1.0, 0).is_err());
        assert!(Rate::new(1e-12, u64::MAX).is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn concurrent_takers_never_exceed_the_burst() {
        let rate = Rate::new(1e-3, 1000).unwrap();
        let b = Arc::new(Bucket::new());
        let now = now_nanos().max(1);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..1000).filter(|_| b.take(&rate, now).is_ok()).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000);
    }
}
