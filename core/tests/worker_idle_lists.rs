//! Idle exclusive connections are kept per worker: a connection goes back
//! to the list of the worker that used it and that worker takes it again,
//! while another worker opens its own; at the endpoint's connection cap a
//! worker takes another worker's idle connection instead of waiting. (Its
//! own process: the workers are process-wide.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use metaproxy_core::cluster::{BreakerLimits, CircuitBreaker, Permit};
use metaproxy_core::error::ProxyError;
use metaproxy_core::upstream::{ConnState, Connector, Pool, PoolOptions, Reuse, Sharing};
use metaproxy_core::workers;

/// Numbers the connections it opens.
#[derive(Default)]
struct Numbered(Arc<AtomicUsize>);

struct Conn {
    id: usize,
    _slot: Permit,
}

impl Connector for Numbered {
    type Conn = Conn;

    async fn connect(&self, _address: SocketAddr, slot: Permit) -> Result<Conn, ProxyError> {
        Ok(Conn {
            id: self.0.fetch_add(1, Ordering::SeqCst),
            _slot: slot,
        })
    }

    fn state(&self, _conn: &Conn) -> ConnState {
        ConnState::Ready
    }
}

fn pool(most_open: usize) -> Pool<Numbered> {
    let options = PoolOptions {
        sharing: Sharing::Exclusive { most_open },
        breaker: Arc::new(CircuitBreaker::new(BreakerLimits::default())),
        idle_timeout: Duration::from_secs(60),
    };
    Pool::new(
        Numbered::default(),
        "127.0.0.1:9".parse().unwrap(),
        &options,
    )
}

/// On `worker`: takes a connection and gives it back; its id.
fn use_once(
    waiter: &tokio::runtime::Runtime,
    worker: &tokio::runtime::Handle,
    pool: &Pool<Numbered>,
) -> usize {
    let pool = pool.clone();
    let task = worker.spawn(async move {
        let now = Instant::now();
        let lease = pool.acquire_exclusive(Reuse::Idle, now).await.unwrap();
        let id = lease.id;
        lease.release_at(now);
        id
    });
    waiter
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await })
        .expect("the worker waited for a connection")
        .unwrap()
}

#[test]
fn each_worker_reuses_its_own_idle_connections_and_takes_another_s_at_the_cap() {
    workers::start(2).unwrap();
    let (a, b) = (workers::next().unwrap(), workers::next().unwrap());
    assert_ne!(a.id(), b.id(), "two workers");
    let waiter = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let roomy = pool(8);
    let on_a = use_once(&waiter, a, &roomy);
    let on_b = use_once(&waiter, b, &roomy);
    assert_ne!(on_a, on_b, "worker b opens its own rather than take a's");
    for _ in 0..3 {
        assert_eq!(use_once(&waiter, a, &roomy), on_a);
        assert_eq!(use_once(&waiter, b, &roomy), on_b);
    }

    let capped = pool(1);
    let on_a = use_once(&waiter, a, &capped);
    assert_eq!(
        use_once(&waiter, b, &capped),
        on_a,
        "at the cap, b takes a's idle connection"
    );
}
