//! A deadline that is cheap to push back, for timeouts armed once per
//! request on a busy connection (the idle wait, the route timeout).
//!
//! `tokio::time::timeout` registers a timer in the wheel and removes it
//! again for every request. A [`LazyDeadline`] keeps one timer per
//! connection: moving the deadline later only records the new instant, and
//! when the timer fires early it re-arms itself for the recorded deadline
//! (the trick nginx's lazy timers use). Only moving the deadline earlier
//! touches the wheel.

use std::pin::Pin;

use tokio::time::{Instant, Sleep, sleep_until};

/// A re-armable deadline; see the module docs.
#[derive(Debug)]
pub struct LazyDeadline {
    sleep: Pin<Box<Sleep>>,
    want: Instant,
}

impl LazyDeadline {
    /// A deadline at `want`.
    pub fn new(want: Instant) -> Self {
        Self {
            sleep: Box::pin(sleep_until(want)),
            want,
        }
    }

    /// The deadline in `slot`, moved to `want`, or a new one there.
    pub fn arm(slot: &mut Option<Self>, want: Instant) -> &mut Self {
        match slot {
            Some(d) => {
                d.set(want);
                d
            }
            None => slot.insert(Self::new(want)),
        }
    }

    /// Moves the deadline to `want` (earlier or later).
    pub fn set(&mut self, want: Instant) {
        self.want = want;
        if want < self.sleep.deadline() {
            self.sleep.as_mut().reset(want);
        }
    }

    /// Resolves once the current deadline has passed. Cancel-safe: dropping
    /// it keeps the timer armed for the next call.
    pub async fn expired(&mut self) {
        loop {
            (&mut self.sleep).await;
            if Instant::now() >= self.want {
                return;
            }
            let want = self.want;
            self.sleep.as_mut().reset(want);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn pushed_back_deadline_fires_at_the_new_instant() {
        let start = Instant::now();
        let mut d = LazyDeadline::new(start + Duration::from_secs(10));
        d.set(start + Duration::from_secs(25));
        d.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(25));
    }

    #[tokio::test(start_paused = true)]
    async fn brought_forward_deadline_fires_early() {
        let start = Instant::now();
        let mut d = LazyDeadline::new(start + Duration::from_secs(60));
        d.set(start + Duration::from_secs(2));
        d.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_wait_keeps_the_deadline() {
        let start = Instant::now();
        let mut d = LazyDeadline::new(start + Duration::from_secs(5));
        // Interrupted after 1 s, then pushed back: fires 5 s after the push.
        let _ = tokio::time::timeout(Duration::from_secs(1), d.expired()).await;
        d.set(Instant::now() + Duration::from_secs(5));
        d.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(6));
    }
}
