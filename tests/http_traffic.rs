//! Traffic policies on HTTP through the release binary, with curl as the
//! client and in-process hyper backends: retries, outlier detection, circuit
//! breakers, active HTTP health checks, cookie affinity and mirroring.

mod common;
#[path = "common/http.rs"]
mod http_peers;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Proxy, dead_address};
use http_peers::{Backend, Quirks, curl};

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// The backend tag that answered (first word of the body).
fn tag(body: &str) -> String {
    body.split(' ').next().unwrap_or("").to_string()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[test]
fn http_retries_move_requests_to_live_endpoints() {
    let live = Backend::start("live");
    let busy = Backend::failing("busy", 503);
    let live2 = Backend::start("live2");
    let dead = dead_address();
    let config = format!(
        r#"
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - match: [ {{ key: ":path", prefix: /conn }} ]
        route:
          cluster: flaky
          retries: {{ attempts: 2, on: [connect-failure], backoff: {{ base: 5ms, max: 20ms }} }}
      - match: [ {{ key: ":path", prefix: /busy }} ]
        route:
          cluster: busy
          retries: {{ attempts: 2, on: [unavailable], backoff: {{ base: 5ms, max: 20ms }} }}
clusters:
  - name: flaky
    protocol: http
    connect_timeout: 500ms
    endpoints: [ {{ address: "{dead}" }}, {{ address: "{live}" }} ]
  - name: busy
    protocol: http
    endpoints: [ {{ address: "{busy}" }}, {{ address: "{live2}" }} ]
"#,
        live = live.address(),
        busy = busy.address(),
        live2 = live2.address(),
    );
    let proxy = Proxy::start("http_retries", &config);
    let addr = proxy.addr("http-in");

    // A GET that lands on the dead endpoint is retried on the live one.
    for i in 0..10 {
        let r = curl(&[&url(addr, &format!("/conn/{i}"))]);
        assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
        assert_eq!(tag(&r.body), "live", "{r:?}");
    }
    assert_eq!(live.count(), 10);

    // 503s are retried on `on: [unavailable]`, over both HTTP versions.
    for h2 in [false, true] {
        for i in 0..10 {
            let u = url(addr, &format!("/busy/{i}"));
            let mut args = vec![u.as_str()];
            if h2 {
                args.insert(0, "--http2-prior-knowledge");
            }
            let r = curl(&args);
            assert_eq!(r.status, 200, "h2={h2} {r:?}\n{}", proxy.logs());
            assert_eq!(tag(&r.body), "live2", "{r:?}");
        }
    }
    assert!(busy.count() >= 5, "round robin sent some to busy first");

    // A small HTTP/1.1 body is read whole before forwarding, so it is
    // retried like a bodiless request: every POST ends on live2.
    let before = busy.count();
    for _ in 0..10 {
        let r = curl(&["--data-binary", "payload", &url(addr, "/busy/post")]);
        assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
        assert_eq!(tag(&r.body), "live2", "{r:?}");
    }
    assert!(
        busy.count() > before,
        "round robin sent some POSTs to busy first"
    );

    // Over HTTP/2 a body is streamed and kept for retries up to 256 KiB:
    // a small one is retried, a larger one is sent once and never retried.
    for _ in 0..5 {
        let r = curl(&[
            "--http2-prior-knowledge",
            "--data-binary",
            "payload",
            &url(addr, "/busy/post"),
        ]);
        assert_eq!((r.status, tag(&r.body)), (200, "live2".into()), "{r:?}");
    }
    // Every answer from `busy` so far was a 503 retried once on `live2`,
    // whichever engine carried it (lean HTTP/1.1 or hyper's HTTP/2): each
    // retry is counted.
    let (_, metrics) = proxy.admin("GET", "/metrics");
    let retries = format!(
        "metaproxy_upstream_retries_total{{cluster=\"busy\"}} {}\n",
        busy.count()
    );
    assert!(metrics.contains(&retries), "want {retries}in\n{metrics}");

    // A body larger than what is kept: a try that fails before sending
    // much of it (a refused connection, an early 503) is still retried
    // with the whole body; every answer is either that 503 or the complete
    // body at a live endpoint, never a truncated or mixed one.
    let big = common::scratch_dir("http_retries").join("big.bin");
    std::fs::write(&big, vec![b'x'; 300 * 1024]).unwrap();
    let data = format!("@{}", big.display());
    for path in ["/conn/upload", "/busy/upload"] {
        for _ in 0..5 {
            let r = curl(&[
                "--http2-prior-knowledge",
                "--data-binary",
                &data,
                &url(addr, path),
            ]);
            let fine = format!(
                "{} got 307200\n",
                if path == "/conn/upload" {
                    "live"
                } else {
                    "live2"
                }
            );
            assert!(
                r.body == fine || (path == "/busy/upload" && r.status == 503),
                "{path}: {r:?}\n{}",
                proxy.logs()
            );
        }
    }
}

/// An upstream that answers every request with a head that breaks HTTP
/// (two different content-lengths); counts the requests it read.
fn broken_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let count = count.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                count.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
                );
            });
        }
    });
    (address, seen)
}

#[test]
fn an_answer_that_breaks_http_is_not_retried_but_counts_against_its_endpoint() {
    let (broken, seen) = broken_upstream();
    let live = Backend::start("live");
    let config = format!(
        r#"
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - route:
          cluster: app
          retries: {{ attempts: 2, on: [reset, connect-failure], backoff: {{ base: 5ms, max: 20ms }} }}
clusters:
  - name: app
    protocol: http
    outlier_detection: {{ consecutive_gateway_errors: 1, base_ejection_time: 60s, max_ejection_percent: 50 }}
    endpoints: [ {{ address: "{broken}" }}, {{ address: "{live}" }} ]
"#,
        live = live.address(),
    );
    let proxy = Proxy::start("http_bad_answer_retry", &config);
    let addr = proxy.addr("http-in");
    // Round robin reaches the broken endpoint within two requests; its
    // answer is a 502 of its own (sending it again would get the same
    // answer), not a retry on `live`.
    let mut statuses = Vec::new();
    for i in 0..2 {
        let r = curl(&[&url(addr, &format!("/x/{i}"))]);
        if r.status == 502 {
            assert!(r.body.contains("content-length values differ"), "{r:?}");
        }
        statuses.push(r.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 502).count(),
        1,
        "{statuses:?}\n{}",
        proxy.logs()
    );
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "the broken endpoint was asked once"
    );
    assert_eq!(
        proxy.metric("metaproxy_upstream_retries_total{cluster=\"app\"}"),
        0.0
    );
    // The bad answer was a gateway error: the endpoint is ejected, and
    // every later request goes to `live`.
    for i in 0..6 {
        let r = curl(&[&url(addr, &format!("/y/{i}"))]);
        assert_eq!((r.status, tag(&r.body)), (200, "live".to_string()), "{r:?}");
    }
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[test]
fn http_outlier_detection_ejects_a_failing_backend() {
    let bad = Backend::failing("bad", 500);
    let good = Backend::start("good");
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes: [ {{ route: {{ cluster: app }} }} ]
clusters:
  - name: app
    protocol: http
    outlier_detection: {{ consecutive_errors: 3, base_ejection_time: 60s, max_ejection_percent: 50 }}
    endpoints: [ {{ address: "{}" }}, {{ address: "{}" }} ]
"#,
        bad.address(),
        good.address()
    );
    let proxy = Proxy::start("http_outlier", &config);
    let addr = proxy.addr("http-in");
    let mut statuses = Vec::new();
    for i in 0..40 {
        statuses.push(curl(&[&url(addr, &format!("/x/{i}"))]).status);
    }
    assert_eq!(
        bad.count(),
        3,
        "ejected after 3 errors in a row: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 3);
    assert!(
        statuses[10..].iter().all(|s| *s == 200),
        "{statuses:?}\n{}",
        proxy.logs()
    );
}

#[test]
fn http_circuit_breaker_answers_over_limit() {
    let slow = Backend::start("slow");
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes: [ {{ route: {{ cluster: app, timeout: 10s }} }} ]
clusters:
  - name: app
    protocol: http
    circuit_breaker: {{ max_requests: 1 }}
    endpoints: [ {{ address: "{}" }} ]
"#,
        slow.address()
    );
    let proxy = Proxy::start("http_breaker", &config);
    let addr = proxy.addr("http-in");
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let u = url(addr, "/slow/1500");
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100 * i));
                curl(&[&u])
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.status == 200).count();
    let over: Vec<_> = results.iter().filter(|r| r.status == 503).collect();
    assert_eq!(ok, 1, "{results:?}\n{}", proxy.logs());
    assert_eq!(over.len(), 3, "{results:?}");
    for r in over {
        assert_eq!(r.header("x-metaproxy-reason"), Some("over_limit"), "{r:?}");
        assert!(r.body.contains("too many requests in flight"), "{r:?}");
    }
    assert_eq!(slow.count(), 1);
    // The permit is back once the answer is done.
    assert_eq!(curl(&[&url(addr, "/after")]).status, 200);
}

#[test]
fn http_health_checks_take_failing_backends_out() {
    let sick = Backend::start_with(
        "sick",
        Quirks {
            health: Some(500),
            ..Quirks::default()
        },
    );
    let well = Backend::start("well");
    let sick2 = Backend::start_with(
        "sick2",
        Quirks {
            health: Some(503),
            ..Quirks::default()
        },
    );
    let well2 = Backend::start("well2");
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - match: [ {{ key: ":path", prefix: /a }} ]
        route: {{ cluster: checked-http }}
      - route: {{ cluster: checked-protocol }}
clusters:
  - name: checked-http
    protocol: http
    health_check: {{ kind: http, path: /health, interval: 100ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1 }}
    endpoints: [ {{ address: "{}" }}, {{ address: "{}" }} ]
  - name: checked-protocol
    protocol: http2
    health_check: {{ interval: 100ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1 }}
    endpoints: [ {{ address: "{}" }}, {{ address: "{}" }} ]
"#,
        sick.address(),
        well.address(),
        sick2.address(),
        well2.address()
    );
    let proxy = Proxy::start(
        "http_health",
        &format!("admin: {{ address: 127.0.0.1:0 }}\n{config}"),
    );
    let addr = proxy.addr("http-in");
    assert!(
        wait_until(Duration::from_secs(5), || sick.count() >= 2
            && sick2.count() >= 2),
        "probes reach the backends\n{}",
        proxy.logs()
    );
    // Both sick backends are marked down (as `/clusters` shows).
    let unhealthy = || {
        let (_, body) = proxy.admin("GET", "/clusters");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["endpoints"].as_array().unwrap().iter())
            .filter(|e| e["healthy"] == false)
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(5), || unhealthy() == 2),
        "the sick backends are marked down\n{}",
        proxy.logs()
    );
    let (sick_before, sick2_before) = (sick.count(), sick2.count());
    let mut seen = HashMap::<String, u32>::new();
    for i in 0..10 {
        for path in [format!("/a/{i}"), format!("/b/{i}")] {
            let r = curl(&[&url(addr, &path)]);
            assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
            *seen.entry(tag(&r.body)).or_default() += 1;
        }
    }
    assert_eq!(seen.get("well"), Some(&10), "{seen:?}");
    assert_eq!(seen.get("well2"), Some(&10), "{seen:?}");
    // Only probes (not requests) reached the sick ones meanwhile.
    assert!(sick.count() - sick_before < 40);
    assert!(sick2.count() - sick2_before < 40);
}

#[test]
fn http_cookie_affinity_with_ring_hash() {
    let backends: Vec<Backend> = ["s1", "s2", "s3"]
        .iter()
        .map(|t| Backend::start(t))
        .collect();
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes: [ {{ route: {{ cluster: app }} }} ]
clusters:
  - name: app
    protocol: http
    lb: ring_hash
    hash: [ {{ cookie: {{ name: sid, ttl: 1h }} }} ]
    endpoints: [ {{ address: "{}" }}, {{ address: "{}" }}, {{ address: "{}" }} ]
"#,
        backends[0].address(),
        backends[1].address(),
        backends[2].address()
    );
    let proxy = Proxy::start("http_sticky", &config);
    let addr = proxy.addr("http-in");
    let mut owners = std::collections::HashSet::new();
    for _ in 0..6 {
        let first = curl(&[&url(addr, "/cart")]);
        assert_eq!(first.status, 200, "{first:?}\n{}", proxy.logs());
        let set = first.header("set-cookie").expect("set-cookie").to_string();
        assert!(set.starts_with("sid="), "{set}");
        assert!(set.to_ascii_lowercase().contains("max-age=3600"), "{set}");
        let cookie = set.split(';').next().unwrap().to_string();
        let owner = tag(&first.body);
        for _ in 0..8 {
            let r = curl(&["-H", &format!("cookie: {cookie}"), &url(addr, "/cart")]);
            assert_eq!(tag(&r.body), owner, "{cookie}: {r:?}");
            assert_eq!(r.header("set-cookie"), None, "{r:?}");
        }
        owners.insert(owner);
    }
    assert!(!owners.is_empty());
}

#[test]
fn http_mirror_copies_complete_requests() {
    let main = Backend::start("main");
    let shadow = Backend::start("shadow");
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - route: {{ cluster: main, mirror: {{ cluster: shadow, percent: 100 }} }}
clusters:
  - {{ name: main, protocol: http, endpoints: [ {{ address: "{}" }} ] }}
  - {{ name: shadow, protocol: http, endpoints: [ {{ address: "{}" }} ] }}
"#,
        main.address(),
        shadow.address()
    );
    let proxy = Proxy::start("http_mirror", &config);
    let addr = proxy.addr("http-in");
    for i in 0..5 {
        let r = curl(&[&url(addr, &format!("/get/{i}"))]);
        assert_eq!(tag(&r.body), "main", "{r:?}\n{}", proxy.logs());
    }
    let r = curl(&["--http2-prior-knowledge", &url(addr, "/get/h2")]);
    assert_eq!(tag(&r.body), "main", "{r:?}");
    assert!(
        wait_until(Duration::from_secs(5), || shadow.count() == 6),
        "shadow got {}\n{}",
        shadow.count(),
        proxy.logs()
    );
    // A small HTTP/1.1 body is complete before forwarding: mirrored too.
    let r = curl(&["--data-binary", "x", &url(addr, "/upload")]);
    assert_eq!(r.body, "main got 1\n", "{r:?}");
    assert!(
        wait_until(Duration::from_secs(5), || shadow.count() == 7),
        "shadow got {}",
        shadow.count()
    );
    // An HTTP/2 body, complete when the answer's head arrives: mirrored
    // once the answer's head is here.
    let r = curl(&[
        "--http2-prior-knowledge",
        "--data-binary",
        "x",
        &url(addr, "/upload"),
    ]);
    assert_eq!(r.body, "main got 1\n", "{r:?}");
    assert!(
        wait_until(Duration::from_secs(5), || shadow.count() == 8),
        "shadow got {}",
        shadow.count()
    );
    assert_eq!(main.count(), 8);
}

/// Every HTTP pool takes the cluster's `max_requests_per_connection`: the
/// lean HTTP/1.1 path, hyper's HTTP/1.1 connections (an h2c client to an
/// `http1` cluster) and shared HTTP/2 connections each open a new upstream
/// connection after two requests.
#[test]
fn every_http_pool_replaces_a_connection_after_its_request_quota() {
    let lean = Backend::start("lean");
    let hyper1 = Backend::start("hyper1");
    let h2 = Backend::start("h2");
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - match: [ {{ key: ":path", prefix: /lean }} ]
        route: {{ cluster: lean }}
      - match: [ {{ key: ":path", prefix: /hyper1 }} ]
        route: {{ cluster: hyper1 }}
      - match: [ {{ key: ":path", prefix: /h2 }} ]
        route: {{ cluster: h2 }}
clusters:
  - name: lean
    protocol: http1
    circuit_breaker: {{ max_requests_per_connection: 2 }}
    endpoints: [ {{ address: "{lean}" }} ]
  - name: hyper1
    protocol: http1
    circuit_breaker: {{ max_requests_per_connection: 2 }}
    endpoints: [ {{ address: "{hyper1}" }} ]
  - name: h2
    protocol: http2
    connections_per_endpoint: 1
    circuit_breaker: {{ max_requests_per_connection: 2 }}
    endpoints: [ {{ address: "{h2}" }} ]
"#,
        lean = lean.address(),
        hyper1 = hyper1.address(),
        h2 = h2.address(),
    );
    // One worker: each worker keeps its own idle upstream connections, and
    // the count below is of connections the client connections share.
    let proxy = Proxy::start_file(
        &common::write_config("http_request_quota", &config),
        &["--workers", "1"],
    );
    let addr = proxy.addr("http-in");
    for i in 0..6 {
        let r = curl(&[&url(addr, &format!("/lean/{i}"))]);
        assert_eq!(tag(&r.body), "lean", "{r:?}\n{}", proxy.logs());
        let r = curl(&[
            "--http2-prior-knowledge",
            &url(addr, &format!("/hyper1/{i}")),
        ]);
        assert_eq!(tag(&r.body), "hyper1", "{r:?}\n{}", proxy.logs());
        let r = curl(&[&url(addr, &format!("/h2/{i}"))]);
        assert_eq!(tag(&r.body), "h2", "{r:?}\n{}", proxy.logs());
    }
    for backend in [&lean, &hyper1, &h2] {
        assert_eq!(backend.count(), 6);
        assert_eq!(
            backend.connections.load(Ordering::SeqCst),
            3,
            "{}: six requests, two per connection\n{}",
            backend.tag,
            proxy.logs()
        );
    }
}

/// An HTTP/1.1 cluster holds to the breaker's connection cap: at one
/// connection, concurrent requests wait for it (pending) instead of
/// opening more; with no room to wait, they are refused as over limit.
#[test]
fn http_requests_wait_for_a_connection_at_the_cap_and_are_refused_past_pending() {
    let slow = Backend::start_with(
        "slow",
        Quirks {
            delay: Some(Duration::from_millis(400)),
            ..Quirks::default()
        },
    );
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - match: [ {{ key: ":path", prefix: /queue }} ]
        route: {{ cluster: queue, timeout: 10s }}
      - match: [ {{ key: ":path", prefix: /refuse }} ]
        route: {{ cluster: refuse, timeout: 10s }}
clusters:
  - name: queue
    protocol: http1
    circuit_breaker: {{ max_connections: 1, max_pending: 8 }}
    endpoints: [ {{ address: "{slow}" }} ]
  - name: refuse
    protocol: http1
    circuit_breaker: {{ max_connections: 1, max_pending: 0 }}
    endpoints: [ {{ address: "{slow}" }} ]
"#,
        slow = slow.address(),
    );
    let proxy = Proxy::start("http_connection_cap", &config);
    let addr = proxy.addr("http-in");
    let run = |path: &'static str| {
        let u = url(addr, path);
        std::thread::spawn(move || curl(&[&u]))
    };

    // Three at once on one connection: all answered, one after another.
    let queued: Vec<_> = (0..3).map(|_| run("/queue")).collect();
    let queued: Vec<_> = queued.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        queued.iter().all(|r| r.status == 200),
        "{queued:?}\n{}",
        proxy.logs()
    );
    assert_eq!(
        slow.connections.load(Ordering::SeqCst),
        1,
        "{}",
        proxy.logs()
    );

    // The first holds the one connection; the next, with no pending room, is refused.
    let before = slow.count();
    let first = run("/refuse");
    assert!(
        wait_until(Duration::from_secs(5), || slow.count() > before),
        "the first request reached the backend"
    );
    let refused = curl(&[&url(addr, "/refuse")]);
    assert_eq!(refused.status, 503, "{refused:?}\n{}", proxy.logs());
    assert_eq!(refused.header("x-metaproxy-reason"), Some("over_limit"));
    assert!(
        refused.body.contains("waiting for a connection"),
        "{refused:?}"
    );
    assert_eq!(first.join().unwrap().status, 200);
    assert_eq!(slow.connections.load(Ordering::SeqCst), 2);
}
