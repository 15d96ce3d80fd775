//! The shared steps in process: a listener built by hand, filters that
//! change routing metadata or answer, mirror copies against breakers and
//! their time limit (paused time).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::cluster::testing::cluster;
use crate::cluster::{BreakerLimits, CircuitBreaker, Cluster, HashPolicy};
use crate::error::ErrorKind;
use crate::filter::{Filter, FilterAction, FilterChain, LocalResponse, RequestContext};
use crate::message::MessageKind;
use crate::metadata::Metadata;
use crate::metrics::{ListenerMetrics, Metrics};
use crate::mutation::Mutation;
use crate::registry::{ConnectionHandler, ServeFuture};
use crate::router::{Condition, MatchOp, Mirror, Redirect, Route, RouteAction, RouteTable, Target};
use crate::snapshot::{Limits, ListenerRuntime};

struct NoHandler;

impl ConnectionHandler for NoHandler {
    fn serve(
        &self,
        _: crate::listener::ClientStream,
        _: std::net::SocketAddr,
        _: Arc<crate::listener::ListenerContext>,
    ) -> ServeFuture {
        Box::pin(async {})
    }
}

fn target(name: &str) -> Target {
    let mut c = cluster(&[0, 0]);
    c.parts.name = Arc::from(name);
    Target {
        cluster: Arc::new(c),
        subset: 0,
        metrics: Metrics::new().target("l", "r", name, "p"),
    }
}

fn route_for(name: &str, service: &str, action: RouteAction) -> Route {
    let mut request_mutation = Mutation::new();
    request_mutation.set("x-route", name.to_string());
    Route {
        name: Arc::from(name),
        conditions: vec![Condition {
            key: "service".into(),
            op: MatchOp::Exact(service.into()),
            invert: false,
        }],
        action,
        timeout: Duration::from_secs(1),
        rewrite: None,
        request_mutation,
        response_mutation: Mutation::new(),
        filters: None,
        retry: None,
        mirror: None,
        upgrades: Vec::new(),
    }
}

fn listener(routes: Vec<Route>, filters: Vec<Arc<dyn Filter>>) -> ListenerRuntime {
    ListenerRuntime {
        name: Arc::from("l"),
        address: "127.0.0.1:0".parse().unwrap(),
        protocol: "test".into(),
        routes: RouteTable::new(routes, Vec::new()),
        filters: FilterChain::new(filters),
        limits: Limits {
            max_frame_bytes: 1 << 20,
            max_connections: 10,
            max_requests_per_connection: 10,
            idle_timeout: Duration::from_secs(1),
            max_header_bytes: 1 << 16,
            max_headers: 100,
            header_read_timeout: Duration::from_secs(1),
            max_concurrent_streams: 10,
            tunnel_idle_timeout: Duration::from_secs(1),
            stream_idle_timeout: Duration::from_secs(1),
        },
        handler: Arc::new(NoHandler),
        tls: None,
        metrics: ListenerMetrics::default(),
        access_log_config: None,
        access_log: std::sync::OnceLock::new(),
        registration: None,
    }
}

fn request(service: &str) -> RequestContext {
    let mut m = Metadata::default();
    m.insert("service", service.to_string());
    m.insert("user", "ann");
    RequestContext::new(
        "test",
        MessageKind::Request,
        m,
        Arc::new(Metadata::default()),
    )
}

/// Sends every request of service `from` to service `to`.
struct Redirector {
    from: &'static str,
    to: &'static str,
}

#[async_trait]
impl Filter for Redirector {
    fn name(&self) -> &'static str {
        "redirector"
    }

    async fn on_request(&self, rc: &mut RequestContext) -> FilterAction {
        if rc.metadata.get("service") == Some(self.from) {
            rc.metadata.insert("service", self.to);
            rc.reroute = true;
        }
        FilterAction::Continue
    }
}

/// Answers every request (or every answer) itself.
struct Answers(u16);

#[async_trait]
impl Filter for Answers {
    fn name(&self) -> &'static str {
        "answers"
    }

    async fn on_request(&self, _: &mut RequestContext) -> FilterAction {
        FilterAction::Respond(LocalResponse {
            status: self.0,
            headers: Vec::new(),
            body: Default::default(),
        })
    }
}

#[tokio::test]
async fn a_filter_that_changes_routing_metadata_reroutes_the_request() {
    let (a, b) = (target("a"), target("b"));
    let l = listener(
        vec![
            route_for("ra", "a", RouteAction::Single(a)),
            route_for("rb", "b", RouteAction::Single(b)),
        ],
        vec![Arc::new(Redirector { from: "a", to: "b" })],
    );
    let mut rc = request("a");
    let routed = route(&l, &mut rc, |_| unreachable!()).await.unwrap();
    assert_eq!(&*routed.route.name, "rb");
    assert_eq!(&*routed.target.cluster.parts.name, "b");
    assert_eq!(rc.route.as_deref(), Some("rb"));
    assert!(
        !rc.request_mutation.is_empty(),
        "the route's header changes are folded into the request"
    );
    assert_eq!(routed.hash.hash, None, "no hash policy, no hash");
}

#[tokio::test]
async fn an_unmatched_request_is_named_in_its_route_not_found_error() {
    let l = listener(
        vec![route_for("ra", "a", RouteAction::Single(target("a")))],
        vec![],
    );
    let mut rc = request("zzz");
    let early = route(&l, &mut rc, |rc| {
        format!("<{}>", rc.metadata.get("service").unwrap())
    })
    .await
    .unwrap_err();
    let Early::Error(e) = early else {
        panic!("{early:?}")
    };
    assert_eq!(e.kind, ErrorKind::RouteNotFound);
    assert!(
        e.message.contains("<zzz>") && e.message.contains("`l`"),
        "{e}"
    );
    assert_eq!(rc.route, None);
}

#[tokio::test]
async fn a_filter_answer_and_a_redirect_route_are_early_answers() {
    let l = listener(
        vec![route_for("ra", "a", RouteAction::Single(target("a")))],
        vec![Arc::new(Answers(418))],
    );
    let early = route(&l, &mut request("a"), |_| String::new())
        .await
        .unwrap_err();
    assert!(
        matches!(early, Early::Respond(ref r) if r.status == 418),
        "{early:?}"
    );

    let redirect = Redirect {
        scheme: Some("https".into()),
        host: None,
        port: None,
        path: None,
        code: 301,
    };
    let l = listener(
        vec![route_for("rr", "a", RouteAction::Redirect(redirect))],
        vec![],
    );
    let mut rc = request("a");
    let early = route(&l, &mut rc, |_| String::new()).await.unwrap_err();
    assert!(
        matches!(early, Early::Redirect(r) if r.code == 301),
        "{early:?}"
    );
    assert_eq!(
        rc.route.as_deref(),
        Some("rr"),
        "a redirect is logged with its route"
    );
}

#[tokio::test]
async fn the_target_clusters_hash_policy_gives_the_hash_key() {
    let mut c = cluster(&[0, 0]);
    c.parts.hash_policy = vec![HashPolicy::Key("user".into())];
    let t = Target {
        cluster: Arc::new(c),
        subset: 0,
        metrics: Metrics::new().target("l", "r", "c", "p"),
    };
    let l = listener(vec![route_for("ra", "a", RouteAction::Single(t))], vec![]);
    let (mut one, mut two) = (request("a"), request("a"));
    let h1 = route(&l, &mut one, |_| String::new()).await.unwrap().hash;
    let h2 = route(&l, &mut two, |_| String::new()).await.unwrap().hash;
    assert!(h1.hash.is_some());
    assert_eq!(h1, h2, "the same key, the same hash");
}

fn mirror_to(c: Cluster) -> Mirror {
    Mirror {
        target: Target {
            cluster: Arc::new(c),
            subset: 0,
            metrics: Metrics::new().target("l", "r", "m", "p"),
        },
        percent: 100.0,
    }
}

#[tokio::test(start_paused = true)]
async fn a_mirror_copy_is_sent_once_and_counted_active_while_it_runs() {
    let mirror = mirror_to(cluster(&[0]));
    let sent = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let seen = sent.clone();
    spawn_mirror(&mirror, Duration::from_secs(1), move |c, e| async move {
        assert_eq!(&*c.parts.name, "c");
        seen.fetch_add(1, Ordering::SeqCst);
        let _ = done_tx.send(e.active());
        Ok(())
    });
    assert_eq!(
        done_rx.await.unwrap(),
        1,
        "the copy counts as active on its endpoint"
    );
    assert_eq!(sent.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_silent_mirror_copy_is_cut_at_the_route_timeout() {
    let mirror = mirror_to(cluster(&[0]));
    let endpoint = mirror.target.cluster.endpoints().all()[0].clone();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    spawn_mirror(
        &mirror,
        Duration::from_millis(100),
        move |_, _| async move {
            let _ = started_tx.send(());
            std::future::pending::<Result<(), crate::ProxyError>>().await
        },
    );
    started_rx.await.unwrap();
    assert_eq!(endpoint.active(), 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        endpoint.active(),
        0,
        "the copy was given up and its guard dropped"
    );
}

#[tokio::test]
async fn a_full_mirror_cluster_gets_no_copy() {
    let mut c = cluster(&[0]);
    c.parts.pool.breaker = Arc::new(CircuitBreaker::new(BreakerLimits {
        max_requests: 0,
        ..BreakerLimits::default()
    }));
    let mirror = mirror_to(c);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    spawn_mirror(&mirror, Duration::from_secs(1), move |_, _| async move {
        let _ = tx.send(());
        Ok(())
    });
    // The spawned task ends without calling the copy: its sender drops.
    assert!(
        rx.await.is_err(),
        "no copy is sent past the mirror cluster's breaker"
    );
}

// The whole pipeline on a scripted exchange.

use crate::codec::ResponseClass;
use crate::router::{RetryOn, RetryPolicy};

use super::scripted::Scripted;

fn listener_to(t: Target, edit: impl FnOnce(&mut Route)) -> ListenerRuntime {
    let mut r = route_for("ra", "a", RouteAction::Single(t));
    edit(&mut r);
    listener(vec![r], vec![])
}

async fn serve_one(l: &ListenerRuntime, exchange: &mut Scripted) -> super::scripted::Reply {
    let started = tokio::time::Instant::now();
    serve(l, request("a"), exchange, &mut None, started).await
}

#[tokio::test]
async fn an_answered_request_is_delivered_mirrored_and_counted() {
    let t = target("a");
    let l = listener_to(t, |r| r.mirror = Some(mirror_to(cluster(&[0]))));
    let mut x = Scripted::new(|_| Ok(Some(ResponseClass::Success)));
    assert_eq!(serve_one(&l, &mut x).await, Ok(0));
    assert_eq!(x.tried.len(), 1);
    let RouteAction::Single(t) = &l.routes.routes()[0].action else {
        unreachable!()
    };
    assert_eq!(t.metrics.success.get(), 1);
    assert_eq!(l.metrics.requests_active.get(), 0);
    // The copy is sent by a spawned task.
    while x.mirrored.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_request_the_breaker_refuses_is_neither_sent_nor_mirrored() {
    let mut c = cluster(&[0]);
    c.parts.pool.breaker = Arc::new(CircuitBreaker::new(BreakerLimits {
        max_requests: 0,
        ..BreakerLimits::default()
    }));
    let t = Target {
        cluster: Arc::new(c),
        subset: 0,
        metrics: Metrics::new().target("l", "r", "c", "p"),
    };
    let l = listener_to(t, |r| r.mirror = Some(mirror_to(cluster(&[0]))));
    let mut x = Scripted::new(|_| Ok(Some(ResponseClass::Success)));
    assert_eq!(
        serve_one(&l, &mut x).await,
        Err("error:OverLimit".to_string())
    );
    assert!(x.tried.is_empty());
    assert_eq!(
        x.mirrored.load(Ordering::SeqCst),
        0,
        "no copy of a refused request"
    );
    assert_eq!(l.metrics.requests_active.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn silent_tries_end_at_the_route_timeout_with_a_local_reply() {
    let l = listener_to(target("a"), |r| {
        r.timeout = Duration::from_millis(300);
        r.retry = Some(RetryPolicy {
            attempts: 5,
            per_try_timeout: Some(Duration::from_millis(100)),
            on: RetryOn {
                timeout: true,
                ..RetryOn::default()
            },
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(1),
        });
    });
    let started = tokio::time::Instant::now();
    let mut x = Scripted::new(|_| Ok(None));
    assert_eq!(
        serve_one(&l, &mut x).await,
        Err("error:Timeout".to_string())
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(310),
        "the whole answer is bounded by the route timeout: {waited:?}"
    );
    assert!(x.tried.len() >= 2, "per-try timeouts retried meanwhile");
}

#[tokio::test]
async fn a_oneway_request_is_tried_once_whatever_the_retry_policy() {
    let l = listener_to(target("a"), |r| {
        r.retry = Some(RetryPolicy {
            attempts: 3,
            per_try_timeout: None,
            on: RetryOn {
                unavailable: true,
                ..RetryOn::default()
            },
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(1),
        });
    });
    let mut x = Scripted::new(|_| Ok(Some(ResponseClass::Unavailable)));
    let mut rc = request("a");
    rc.kind = MessageKind::Oneway;
    let started = tokio::time::Instant::now();
    assert_eq!(serve(&l, rc, &mut x, &mut None, started).await, Ok(0));
    assert_eq!(x.tried.len(), 1);
}

#[tokio::test]
async fn a_filters_answer_never_reaches_the_upstream() {
    let l = listener(
        vec![route_for("ra", "a", RouteAction::Single(target("a")))],
        vec![Arc::new(Answers(418))],
    );
    let mut x = Scripted::new(|_| Ok(Some(ResponseClass::Success)));
    assert_eq!(serve_one(&l, &mut x).await, Err("respond:418".to_string()));
    assert!(x.tried.is_empty());
}

#[tokio::test]
async fn an_affinity_cookie_is_made_up_once_then_keeps_the_client_on_its_endpoint() {
    let policy = vec![HashPolicy::Cookie {
        name: "sid".into(),
        ttl: None,
        path: "/".into(),
    }];
    let t = Target {
        cluster: Arc::new(crate::cluster::testing::hashed_cluster(8, policy)),
        subset: 0,
        metrics: Metrics::new().target("l", "r", "c", "p"),
    };
    let l = listener_to(t, |_| {});
    let mut x = Scripted::new(|_| Ok(Some(ResponseClass::Success)));
    assert_eq!(serve_one(&l, &mut x).await, Ok(0));
    let cookie = x.cookies[0]
        .clone()
        .expect("a cookie for a client with none");
    for _ in 0..10 {
        let mut rc = request("a");
        rc.metadata.insert("cookie.sid", cookie.value.clone());
        let started = tokio::time::Instant::now();
        assert_eq!(serve(&l, rc, &mut x, &mut None, started).await, Ok(0));
    }
    assert!(
        x.tried.iter().all(|a| *a == x.tried[0]),
        "every request with the cookie on one endpoint: {:?}",
        x.tried
    );
    assert!(
        x.cookies[1..].iter().all(Option::is_none),
        "a client that sends the cookie is not given another"
    );
}
