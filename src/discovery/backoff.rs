//! Retry delays of failing sources: doubling from 100 ms up to a cap, with
//! jitter, reset by a success; waits and ZooKeeper connects that end early
//! when the source or registration stops.

use std::time::Duration;

/// Exponential backoff with jitter.
#[derive(Debug)]
pub(super) struct Backoff {
    next: Duration,
    max: Duration,
}

const FIRST: Duration = Duration::from_millis(100);

impl Backoff {
    /// Starts at 100 ms, never above `max`.
    pub(super) fn new(max: Duration) -> Self {
        Self {
            next: FIRST.min(max),
            max,
        }
    }

    /// The delay before the next attempt (each one twice the last).
    pub(super) fn delay(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now.mul_f64(0.8 + fastrand::f64() * 0.4)
    }

    /// Back to the first delay after a success.
    pub(super) fn reset(&mut self) {
        self.next = FIRST.min(self.max);
    }
}

/// Waits `delay`, or less when `stop` completes first: whether it did.
pub(super) async fn wait_or_stop(
    delay: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> bool {
    tokio::select! {
        () = stop => true,
        () = tokio::time::sleep(delay) => false,
    }
}

/// Opens a ZooKeeper session with `servers` (comma-separated `host:port`),
/// or gives up with `None` when `stop` completes first.
pub(super) async fn connect_zookeeper(
    servers: &str,
    session_timeout: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Option<Result<zookeeper_client::Client, zookeeper_client::Error>> {
    let connecting = zookeeper_client::Client::connector()
        .with_session_timeout(session_timeout)
        .with_connection_timeout(session_timeout.min(Duration::from_secs(5)))
        .connect(servers);
    tokio::select! {
        () = stop => None,
        c = connecting => Some(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1));
        let d: Vec<_> = (0..6).map(|_| b.delay()).collect();
        assert!(d[0] <= Duration::from_millis(120));
        assert!(d[3] >= Duration::from_millis(640), "{d:?}");
        assert!(d[5] <= Duration::from_millis(1200), "{d:?}");
        b.reset();
        assert!(b.delay() <= Duration::from_millis(120));
    }
}
