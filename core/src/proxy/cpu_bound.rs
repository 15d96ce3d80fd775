//! Heavy configuration work (parsing, translating or building a large
//! config) without holding up the control runtime's other tasks.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `step` (CPU-bound, no awaiting) so that, on a multi-threaded
/// runtime such as the proxy's control runtime, the thread's other tasks
/// (admin, health checks, discovery) move to another thread meanwhile
/// (`block_in_place`). On a current-thread runtime, or outside one, it runs
/// inline.
pub fn cpu_bound<T>(step: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(step),
        _ => step(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// With one worker thread: while a step holds it, a task spawned after
    /// the step started still runs, and it is what the step waits for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn other_tasks_run_while_a_step_holds_the_only_worker() {
        let (started, step_started) = tokio::sync::oneshot::channel();
        let (release, released) = mpsc::channel::<()>();
        let step = tokio::spawn(async move {
            cpu_bound(move || {
                let _ = started.send(());
                // Without `block_in_place` nothing else can run on the one
                // worker, and this gives up after 10 s.
                released.recv_timeout(Duration::from_secs(10)).is_ok()
            })
        });
        step_started.await.unwrap();
        tokio::spawn(async move { release.send(()).unwrap() });
        assert!(step.await.unwrap(), "the other task never ran");
    }

    #[tokio::test]
    async fn on_a_current_thread_runtime_the_step_runs_inline() {
        assert_eq!(cpu_bound(|| 41 + 1), 42);
    }
}
