//! Per-core workers. Each worker is a thread running its own
//! single-threaded tokio runtime; the listeners' accept loops hand each
//! new connection to the next worker in turn, and everything that
//! connection does (its requests, the upstream connections it opens, the
//! tasks those spawn) stays on that worker's thread: no work stealing and
//! no cross-thread wake-up on the request path. The runtime that accepts
//! runs the rest (admin, discovery, xDS, health checks).
//!
//! Started once per process by the binary (`--workers N`); a program that
//! never starts them (the tests, an embedding) serves every connection on
//! the runtime that accepted it.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Handle};

/// The started workers.
struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

static WORKERS: OnceLock<Workers> = OnceLock::new();

thread_local! {
    /// This thread's place in per-worker state: its worker's number plus
    /// one, 0 on any other thread.
    static PLACE: Cell<usize> = const { Cell::new(0) };
}

/// How many places per-worker state needs: one per worker and one for
/// every other thread (1 when no workers were started).
pub fn places() -> usize {
    WORKERS.get().map_or(1, |w| w.handles.len() + 1)
}

/// This thread's place, below [`places`]: its worker's own, or 0.
pub fn place() -> usize {
    PLACE.with(Cell::get)
}

/// Starts `n` workers, each on a thread of its own that lives as long as
/// the process. Once per process: later calls change nothing.
pub fn start(n: usize) -> std::io::Result<()> {
    if WORKERS.get().is_some() {
        return Ok(());
    }
    let mut handles = Vec::with_capacity(n);
    // Each thread says when it runs (named, placed): once `start` returns,
    // every worker is up, not merely spawned.
    let (up, running) = std::sync::mpsc::channel::<()>();
    for i in 0..n.max(1) {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        handles.push(runtime.handle().clone());
        let up = up.clone();
        std::thread::Builder::new()
            .name(format!("metaproxy-worker-{i}"))
            .spawn(move || {
                PLACE.with(|p| p.set(i + 1));
                let _ = up.send(());
                runtime.block_on(std::future::pending::<()>())
            })?;
    }
    drop(up);
    for _ in 0..handles.len() {
        running
            .recv()
            .map_err(|_| std::io::Error::other("a worker thread ended as it started"))?;
    }
    let _ = WORKERS.set(Workers {
        handles,
        next: AtomicUsize::new(0),
    });
    Ok(())
}

/// The worker that takes the next connection, when workers were started.
pub fn next() -> Option<&'static Handle> {
    let workers = WORKERS.get()?;
    let i = workers.next.fetch_add(1, Ordering::Relaxed) % workers.handles.len();
    Some(&workers.handles[i])
}
