//! The pool against a mock connector: quotas, reuse, caps, waiting, expiry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::{BreakerLimits, CircuitBreaker, Permit, Resource};
use crate::error::{ErrorKind, ProxyError};

use super::pool::{ConnState, Connector, Pool, PoolOptions, Reuse, Sharing};

/// Counts the connections it opens; each can be closed from the test.
#[derive(Default)]
struct Mock {
    opened: AtomicUsize,
    refuse: AtomicBool,
}

struct MockConn {
    id: usize,
    open: Arc<AtomicBool>,
    _slot: Permit,
}

impl Connector for Arc<Mock> {
    type Conn = MockConn;

    async fn connect(&self, _address: SocketAddr, slot: Permit) -> Result<MockConn, ProxyError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(ProxyError::upstream(
                ErrorKind::ConnectFailure,
                "connection refused",
            ));
        }
        let id = self.opened.fetch_add(1, Ordering::SeqCst);
        Ok(MockConn {
            id,
            open: Arc::new(AtomicBool::new(true)),
            _slot: slot,
        })
    }

    fn state(&self, conn: &MockConn) -> ConnState {
        if conn.open.load(Ordering::SeqCst) {
            ConnState::Ready
        } else {
            ConnState::Closed
        }
    }
}

fn address() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

fn breaker(limits: BreakerLimits) -> Arc<CircuitBreaker> {
    Arc::new(CircuitBreaker::new(limits))
}

fn pool(sharing: Sharing, breaker: &Arc<CircuitBreaker>) -> (Pool<Arc<Mock>>, Arc<Mock>) {
    let mock = Arc::new(Mock::default());
    let options = PoolOptions {
        sharing,
        breaker: breaker.clone(),
        idle_timeout: Duration::from_secs(60),
    };
    (Pool::new(mock.clone(), address(), &options), mock)
}

const EXCLUSIVE: Sharing = Sharing::Exclusive {
    most_open: usize::MAX,
};

#[tokio::test]
async fn a_shared_connection_carries_its_quota_then_is_replaced() {
    let b = breaker(BreakerLimits {
        max_requests_per_connection: Some(2),
        ..BreakerLimits::default()
    });
    let (pool, mock) = pool(Sharing::Shared { connections: 1 }, &b);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(pool.acquire_shared().await.unwrap().id);
    }
    assert_eq!(ids, [0, 0, 1, 1, 2]);
    assert_eq!(mock.opened.load(Ordering::SeqCst), 3);
    // Only the newest is still held by the pool; the others are gone with their slots.
    assert_eq!(b.current(Resource::Connection), 1);
}

#[tokio::test]
async fn a_closed_shared_connection_is_replaced_on_next_use() {
    let b = breaker(BreakerLimits::default());
    let (pool, mock) = pool(Sharing::Shared { connections: 1 }, &b);
    let first = pool.acquire_shared().await.unwrap();
    first.open.store(false, Ordering::SeqCst);
    let second = pool.acquire_shared().await.unwrap();
    assert_eq!((first.id, second.id), (0, 1));
    assert_eq!(mock.opened.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_failed_connect_leaves_the_slot_empty_for_the_next_try() {
    let b = breaker(BreakerLimits::default());
    let (pool, mock) = pool(Sharing::Shared { connections: 1 }, &b);
    mock.refuse.store(true, Ordering::SeqCst);
    let e = pool.acquire_shared().await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::ConnectFailure);
    assert_eq!(b.current(Resource::Connection), 0, "the slot is given back");
    mock.refuse.store(false, Ordering::SeqCst);
    assert_eq!(pool.acquire_shared().await.unwrap().id, 0);
}

#[tokio::test]
async fn an_exclusive_connection_is_reused_once_released_and_closed_when_dropped() {
    let b = breaker(BreakerLimits::default());
    let (pool, mock) = pool(EXCLUSIVE, &b);
    let now = Instant::now();
    let a = pool.acquire_exclusive(Reuse::Idle, now).await.unwrap();
    assert!(!a.reused());
    let open = a.open.clone();
    a.release_at(now);
    let again = pool.acquire_exclusive(Reuse::Idle, now).await.unwrap();
    assert!(again.reused());
    assert_eq!(again.id, 0);
    // Abandoned mid-exchange: closed, its place freed.
    drop(again);
    assert_eq!(pool.open_connections(), 0);
    assert_eq!(b.current(Resource::Connection), 0);
    assert!(open.load(Ordering::SeqCst), "the mock only closes by drop");
    let fresh = pool.acquire_exclusive(Reuse::Idle, now).await.unwrap();
    assert_eq!(fresh.id, 1);
    assert_eq!(mock.opened.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_exclusive_connection_is_closed_after_its_quota() {
    let b = breaker(BreakerLimits {
        max_requests_per_connection: Some(2),
        ..BreakerLimits::default()
    });
    let (pool, _mock) = pool(EXCLUSIVE, &b);
    let now = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let lease = pool.acquire_exclusive(Reuse::Idle, now).await.unwrap();
        ids.push(lease.id);
        lease.release_at(now);
    }
    assert_eq!(ids, [0, 0, 1, 1, 2]);
    assert_eq!(pool.open_connections(), 1);
}

#[tokio::test]
async fn a_new_connection_can_be_asked_for_past_the_idle_ones() {
    let b = breaker(BreakerLimits::default());
    let (pool, _mock) = pool(EXCLUSIVE, &b);
    let now = Instant::now();
    pool.acquire_exclusive(Reuse::Idle, now)
        .await
        .unwrap()
        .release_at(now);
    let fresh = pool.acquire_exclusive(Reuse::New, now).await.unwrap();
    assert_eq!(fresh.id, 1);
    assert_eq!(pool.open_connections(), 2, "the idle one stays");
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_past_the_idle_timeout_is_closed() {
    let b = breaker(BreakerLimits::default());
    let (pool, mock) = pool(EXCLUSIVE, &b);
    let start = Instant::now();
    pool.acquire_exclusive(Reuse::Idle, start)
        .await
        .unwrap()
        .release_at(start);
    let later = start + Duration::from_secs(61);
    let lease = pool.acquire_exclusive(Reuse::Idle, later).await.unwrap();
    assert_eq!(lease.id, 1);
    assert_eq!(mock.opened.load(Ordering::SeqCst), 2);
    assert_eq!(pool.open_connections(), 1, "the expired one is closed");
}

#[tokio::test]
async fn a_closed_idle_connection_is_skipped() {
    let b = breaker(BreakerLimits::default());
    let (pool, _mock) = pool(EXCLUSIVE, &b);
    let now = Instant::now();
    let a = pool.acquire_exclusive(Reuse::Idle, now).await.unwrap();
    a.open.store(false, Ordering::SeqCst);
    a.release_at(now);
    assert_eq!(pool.open_connections(), 0, "not kept: it is closed");
    assert_eq!(
        pool.acquire_exclusive(Reuse::Idle, now).await.unwrap().id,
        1
    );
}

#[tokio::test(start_paused = true)]
async fn at_the_connection_cap_a_request_waits_for_a_busy_connection() {
    let b = breaker(BreakerLimits {
        max_connections: 1,
        ..BreakerLimits::default()
    });
    let (pool, mock) = pool(EXCLUSIVE, &b);
    let now = Instant::now();
    let first = pool.acquire_exclusive(Reuse::Idle, now).await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let lease = pool.acquire_exclusive(Reuse::Idle, now).await?;
            Ok::<_, ProxyError>(lease.id)
        })
    };
    while b.current(Resource::Pending) == 0 {
        tokio::task::yield_now().await;
    }
    assert!(!waiter.is_finished());
    first.release_at(now);
    assert_eq!(waiter.await.unwrap().unwrap(), 0, "the same connection");
    assert_eq!(mock.opened.load(Ordering::SeqCst), 1);
    assert_eq!(b.current(Resource::Pending), 0);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_request_gets_a_new_connection_when_a_busy_one_closes() {
    let b = breaker(BreakerLimits::default());
    let (pool, mock) = pool(Sharing::Exclusive { most_open: 1 }, &b);
    let now = Instant::now();
    let first = pool.acquire_exclusive(Reuse::Idle, now).await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            Ok::<_, ProxyError>(pool.acquire_exclusive(Reuse::Idle, now).await?.id)
        })
    };
    while b.current(Resource::Pending) == 0 {
        tokio::task::yield_now().await;
    }
    drop(first);
    assert_eq!(waiter.await.unwrap().unwrap(), 1);
    assert_eq!(mock.opened.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn over_the_pending_cap_a_request_is_refused() {
    let b = breaker(BreakerLimits {
        max_connections: 1,
        max_pending: 0,
        ..BreakerLimits::default()
    });
    let (pool, _mock) = pool(EXCLUSIVE, &b);
    let now = Instant::now();
    let _first = pool.acquire_exclusive(Reuse::Idle, now).await.unwrap();
    let e = pool
        .acquire_exclusive(Reuse::Idle, now)
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::OverLimit);
    assert!(e.message.contains("waiting"), "{e}");
    assert_eq!(b.overflows(), 2, "the connection and the pending slot");
}

#[tokio::test]
async fn slots_held_by_other_endpoints_refuse_at_once() {
    let b = breaker(BreakerLimits {
        max_connections: 1,
        ..BreakerLimits::default()
    });
    let (one, _) = pool(EXCLUSIVE, &b);
    let (other, _) = pool(EXCLUSIVE, &b);
    let now = Instant::now();
    let _held = one.acquire_exclusive(Reuse::Idle, now).await.unwrap();
    let e = other
        .acquire_exclusive(Reuse::Idle, now)
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::OverLimit);
    assert!(e.message.contains("connection limit"), "{e}");
    let (shared, _) = pool(Sharing::Shared { connections: 1 }, &b);
    let e = shared.acquire_shared().await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::OverLimit);
}

#[tokio::test]
async fn a_lease_of_the_other_kind_is_refused() {
    let b = breaker(BreakerLimits::default());
    let (shared, _) = pool(Sharing::Shared { connections: 1 }, &b);
    assert!(
        shared
            .acquire_exclusive(Reuse::Idle, Instant::now())
            .await
            .is_err()
    );
    let (exclusive, _) = pool(EXCLUSIVE, &b);
    assert!(exclusive.acquire_shared().await.is_err());
    // `acquire` follows the pool's own way.
    assert!(exclusive.acquire().await.is_ok());
    assert!(shared.acquire().await.is_ok());
}
