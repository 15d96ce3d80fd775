//! A future polled only when its own waker fired: one task drives an
//! HTTP/2 connection and the streams it runs, and wakes far more often for
//! a stream (an upstream answer arrived) than for the connection, whose
//! poll walks h2's whole state machine even when nothing is to be done.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::{ArcWake, AtomicWaker, waker_ref};

/// Whether the future's waker fired, and the task to wake when it does.
struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl ArcWake for Flag {
    fn wake_by_ref(flag: &Arc<Self>) {
        flag.woken.store(true, Ordering::Release);
        flag.task.wake();
    }
}

/// Polls a future only after its waker fired since its last poll, or after
/// [`Woken::force`].
pub(crate) struct Woken(Arc<Flag>);

impl Woken {
    /// Polled at the first turn.
    pub(crate) fn new() -> Self {
        Self(Arc::new(Flag {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        }))
    }

    /// Polled at the next turn whatever its waker did (after a call that
    /// changed the future's state, such as a graceful shutdown).
    pub(crate) fn force(&self) {
        self.0.woken.store(true, Ordering::Release);
    }

    /// Polls `fut` with its own waker if that fired since the last poll;
    /// `Pending` without polling otherwise. The task polling it is woken
    /// when the future's waker fires.
    pub(crate) fn poll<F: Future + ?Sized>(
        &self,
        fut: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<F::Output> {
        // Registered before the flag is read: a wake after the read wakes
        // the task again.
        self.0.task.register(cx.waker());
        if !self.0.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = waker_ref(&self.0);
        fut.poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; pending until `ready`, waking itself once when
    /// `wake_self` is set.
    struct Probe {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        wake_self: bool,
    }

    impl Future for Probe {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            if std::mem::take(&mut self.wake_self) {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    #[test]
    fn polled_first_then_only_after_its_waker_fired_or_a_force() {
        let polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let mut probe = Probe {
            polls: polls.clone(),
            ready: ready.clone(),
            wake_self: true,
        };
        let woken = Woken::new();
        let task_woken = Arc::new(TaskWoken(AtomicBool::new(false)));
        let task = futures_util::task::waker(task_woken.clone());
        let mut cx = Context::from_waker(&task);
        let mut poll = || woken.poll(Pin::new(&mut probe), &mut cx);

        // First turn: polled; it woke itself, which wakes the task.
        assert!(poll().is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        assert!(task_woken.0.swap(false, Ordering::SeqCst));
        // Its wake makes the next turn poll it; then nothing woke it.
        assert!(poll().is_pending());
        assert!(poll().is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
        assert!(!task_woken.0.load(Ordering::SeqCst));
        // A force polls it once more.
        woken.force();
        ready.store(true, Ordering::SeqCst);
        assert!(woken.poll(Pin::new(&mut probe), &mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 3);
    }

    struct TaskWoken(AtomicBool);

    impl ArcWake for TaskWoken {
        fn wake_by_ref(t: &Arc<Self>) {
            t.0.store(true, Ordering::SeqCst);
        }
    }
}
