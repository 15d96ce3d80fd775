//! How many calls one upstream connection carries, and the bound on it
//! (`pipeline_depth`): a call past the bound waits for an answer.
//!
//! Counted with atomics: taking and giving back a place costs no lock; a
//! caller only touches the [`Notify`] when the connection is full.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// The calls in flight on one connection.
#[derive(Debug)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    depth: usize,
    waiting: AtomicUsize,
    room: Notify,
}

impl InFlight {
    /// At most `depth` calls at once (at least one).
    pub fn new(depth: usize) -> Self {
        Self {
            count: AtomicUsize::new(0),
            depth: depth.max(1),
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    /// Calls in flight now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Takes a place, waiting while the connection is full.
    pub async fn enter(&self) {
        loop {
            if self.try_enter() {
                return;
            }
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            // A place may have been given back before `enable`.
            if !self.try_enter() {
                room.await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return;
        }
    }

    fn try_enter(&self) -> bool {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < self.depth).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back `n` places (answers in, or callers that gave up).
    pub fn leave(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.count.fetch_sub(n, Ordering::AcqRel);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            for _ in 0..n {
                self.room.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_caller_past_the_depth_waits_for_a_place() {
        let f = Arc::new(InFlight::new(2));
        f.enter().await;
        f.enter().await;
        assert_eq!(f.count(), 2);
        let waiter = tokio::spawn({
            let f = f.clone();
            async move { f.enter().await }
        });
        // Let the waiter register before the place is given back.
        while f.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished());
        f.leave(1);
        waiter.await.unwrap();
        assert_eq!(f.count(), 2);
    }

    #[tokio::test]
    async fn two_places_given_back_at_once_wake_two_callers() {
        let f = Arc::new(InFlight::new(1));
        f.enter().await;
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let f = f.clone();
                tokio::spawn(async move { f.enter().await })
            })
            .collect();
        while f.waiting.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        // Depth 1: the first woken caller takes the place; when it is
        // given back, the second must get it too.
        f.leave(1);
        while f.count() == 0 {
            tokio::task::yield_now().await;
        }
        f.leave(1);
        for w in waiters {
            w.await.unwrap();
        }
        assert_eq!(f.count(), 1);
    }
}
