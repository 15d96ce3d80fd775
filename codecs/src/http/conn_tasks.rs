//! The futures hyper spawns for an HTTP/2 connection (one per stream on the
//! server side; the connection driver, each request body's pipe and each
//! response wait on the client side), run inside the connection's own task
//! instead of as a tokio task each.
//!
//! A tokio task per stream costs an allocation, a scheduler round trip per
//! wake-up, and copies of the future into and out of the task cell; here a
//! stream's future is boxed once and polled only when its own waker fires
//! (`FuturesUnordered`), on the connection's task, the way one
//! event loop serves a connection's streams.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::task::AtomicWaker;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where [`ConnExecutor`] leaves futures for [`ConnTasks`] to run.
#[derive(Default)]
struct Queue {
    new: Mutex<Vec<Task>>,
    waker: AtomicWaker,
}

/// hyper's executor for one connection: queues each future for the
/// connection's [`ConnTasks`].
#[derive(Clone)]
pub(crate) struct ConnExecutor(Arc<Queue>);

impl<F> hyper::rt::Executor<F> for ConnExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0
            .new
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::pin(fut));
        self.0.waker.wake();
    }
}

/// The futures of one connection, polled by the task that owns it.
pub(crate) struct ConnTasks {
    queue: Arc<Queue>,
    running: FuturesUnordered<Task>,
}

impl ConnTasks {
    /// An empty set and the executor that fills it.
    pub(crate) fn new() -> (Self, ConnExecutor) {
        let queue = Arc::new(Queue::default());
        let tasks = Self {
            queue: queue.clone(),
            running: FuturesUnordered::new(),
        };
        (tasks, ConnExecutor(queue))
    }

    /// Runs what is ready; `Ready` once nothing is queued or running.
    pub(crate) fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Registered before the queue is read: a future queued after the
        // read wakes this task again.
        self.queue.waker.register(cx.waker());
        loop {
            self.running.extend(
                self.queue
                    .new
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .drain(..),
            );
            match self.running.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => continue,
                Poll::Ready(None) => {
                    let queued = !self
                        .queue
                        .new
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .is_empty();
                    if queued {
                        continue;
                    }
                    return Poll::Ready(());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Waits until something is queued or running and everything is done:
    /// never completes while the set is in use (for `select!` branches).
    pub(crate) async fn run(&mut self) {
        std::future::poll_fn(|cx| match self.poll_run(cx) {
            // Nothing to run now: wait for the executor to queue something.
            Poll::Ready(()) => Poll::Pending,
            Poll::Pending => Poll::Pending,
        })
        .await
    }
}

/// Drives `conn` and the futures its executor queued; done when `conn` is
/// done and every queued future has finished.
pub(crate) async fn drive<F: Future>(conn: F, mut tasks: ConnTasks) -> F::Output {
    let mut conn = std::pin::pin!(conn);
    let mut output = None;
    std::future::poll_fn(|cx| {
        if output.is_none()
            && let Poll::Ready(out) = conn.as_mut().poll(cx)
        {
            output = Some(out);
        }
        if tasks.poll_run(cx).is_ready()
            && let Some(out) = output.take()
        {
            return Poll::Ready(out);
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn queued_futures_run_on_the_driving_task_and_the_drive_waits_for_them() {
        let (tasks, exec) = ConnTasks::new();
        let (tx, rx) = oneshot::channel::<u32>();
        let (done_tx, done_rx) = oneshot::channel::<u32>();
        // Queued before the driver runs; it finishes after `conn` does.
        exec.execute(async move {
            let v = rx.await.unwrap_or(0);
            let _ = done_tx.send(v + 1);
        });
        let conn = async move {
            // A future queued from inside the driven future runs too.
            exec.execute(async move {
                let _ = tx.send(41);
            });
            "conn done"
        };
        assert_eq!(drive(conn, tasks).await, "conn done");
        assert_eq!(done_rx.await.unwrap(), 42);
    }

    #[tokio::test]
    async fn run_picks_up_work_queued_while_it_waits() {
        let (mut tasks, exec) = ConnTasks::new();
        let (tx, rx) = oneshot::channel::<()>();
        let waiter = async move {
            tokio::task::yield_now().await;
            exec.execute(async move {
                let _ = tx.send(());
            });
            rx.await.is_ok()
        };
        let ran = tokio::select! {
            ok = waiter => ok,
            () = tasks.run() => unreachable!("run never completes"),
        };
        assert!(ran);
    }
}
