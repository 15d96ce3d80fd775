//! Retry policy and request mirroring of a route.

use std::time::Duration;

use crate::codec::ResponseClass;
use crate::error::{ErrorKind, ProxyError};

/// Conditions that make a try worth repeating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// The connection could not be established.
    pub connect_failure: bool,
    /// The connection broke before the answer.
    pub reset: bool,
    /// The try timed out (per-try timeout).
    pub timeout: bool,
    /// The upstream said it is out of capacity (HTTP 503, Dubbo status 100, gRPC UNAVAILABLE).
    pub unavailable: bool,
    /// The upstream answered with a server error (HTTP 5xx, Dubbo server errors, Thrift internal errors).
    pub server_error: bool,
}

impl RetryOn {
    /// Parses condition names.
    pub fn parse(names: &[String]) -> Result<Self, UnknownRetryCondition> {
        let mut on = RetryOn::default();
        for n in names {
            match n.as_str() {
                "connect-failure" => on.connect_failure = true,
                "reset" => on.reset = true,
                "timeout" => on.timeout = true,
                "unavailable" => on.unavailable = true,
                "server-error" | "5xx" => on.server_error = true,
                other => return Err(UnknownRetryCondition(other.to_string())),
            }
        }
        Ok(on)
    }

    /// The default set: failures where the request surely did not run.
    pub fn default_set() -> Self {
        RetryOn {
            connect_failure: true,
            reset: true,
            unavailable: true,
            ..RetryOn::default()
        }
    }
}

/// A retry condition name that [`RetryOn::parse`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown retry condition `{0}` (known: connect-failure, reset, timeout, unavailable, server-error)"
)]
pub struct UnknownRetryCondition(pub String);

/// A route's retry policy.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub attempts: u32,
    /// Timeout of each try.
    pub per_try_timeout: Option<Duration>,
    /// What is retried.
    pub on: RetryOn,
    /// First backoff interval.
    pub backoff_base: Duration,
    /// Largest backoff interval.
    pub backoff_max: Duration,
}

impl RetryPolicy {
    /// Whether a failed try is retried: only errors that may succeed on
    /// another host ([`ProxyError::is_retryable`]: the upstream's own
    /// failures, unless the error decided otherwise), and of those the kinds
    /// the policy names.
    pub fn retries_error(&self, e: &ProxyError) -> bool {
        if !e.is_retryable() {
            return false;
        }
        match e.kind {
            ErrorKind::ConnectFailure => self.on.connect_failure,
            ErrorKind::UpstreamReset => self.on.reset,
            ErrorKind::Timeout => self.on.timeout,
            _ => false,
        }
    }

    /// Whether an answer of this class is retried.
    pub fn retries_class(&self, class: ResponseClass) -> bool {
        match class {
            ResponseClass::Success => false,
            ResponseClass::ServerError => self.on.server_error,
            ResponseClass::Unavailable => self.on.unavailable || self.on.server_error,
        }
    }

    /// The wait before retry number `retry` (1-based): exponential with full jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .backoff_base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.backoff_max);
        cap.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Origin;

    #[test]
    fn parses_conditions_and_classifies() {
        let on = RetryOn::parse(&["reset".into(), "5xx".into()]).unwrap();
        assert!(on.reset && on.server_error && !on.timeout);
        assert_eq!(
            RetryOn::parse(&["sometimes".into()]),
            Err(UnknownRetryCondition("sometimes".into()))
        );
        let p = RetryPolicy {
            attempts: 2,
            per_try_timeout: None,
            on,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
        };
        assert!(p.retries_error(&ProxyError::new(
            ErrorKind::UpstreamReset,
            Origin::Upstream,
            ""
        )));
        assert!(!p.retries_error(&ProxyError::new(ErrorKind::Timeout, Origin::Upstream, "")));
        // A reset the client caused, or one the raiser ruled out, is not
        // repeated even though the policy names resets.
        assert!(!p.retries_error(&ProxyError::downstream(
            ErrorKind::UpstreamReset,
            "client went away"
        )));
        assert!(!p.retries_error(
            &ProxyError::upstream(ErrorKind::UpstreamReset, "bad answer").with_retry(false)
        ));
        assert!(p.retries_class(ResponseClass::Unavailable));
        assert!(!p.retries_class(ResponseClass::Success));
        for retry in 1..10 {
            assert!(p.backoff(retry) <= Duration::from_millis(40));
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        let p = RetryPolicy {
            attempts: 10,
            per_try_timeout: None,
            on: RetryOn::default_set(),
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
        };
        for (retry, cap_ms) in [
            (1, 25),
            (2, 50),
            (3, 100),
            (4, 200),
            (5, 250),
            (9, 250),
            (40, 250),
        ] {
            let cap = Duration::from_millis(cap_ms);
            let samples: Vec<Duration> = (0..2000).map(|_| p.backoff(retry)).collect();
            let (lo, hi) = (
                *samples.iter().min().unwrap(),
                *samples.iter().max().unwrap(),
            );
            assert!(hi <= cap, "retry {retry}: {hi:?} > {cap:?}");
            // Full jitter: the whole range [0, cap] is used.
            assert!(lo < cap / 10, "retry {retry}: smallest {lo:?}");
            assert!(hi > cap * 9 / 10, "retry {retry}: largest {hi:?}");
            let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
            assert!(
                mean > cap * 4 / 10 && mean < cap * 6 / 10,
                "retry {retry}: mean {mean:?} of cap {cap:?}"
            );
        }
    }
}
