//! The L7 filters end to end through the real binary, over Dubbo: a
//! third-party client and provider (sofa-rpc-node) and hand-built frames
//! where the exact status matters. Each test runs an example from
//! `examples/filters/` with its addresses pointed at test ports.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::dubbo_wire::{self, Frame};
use common::{DubboProvider, Proxy, dubbo_client, example_config};

const LISTENER: &str = "dubbo-in";
const IFACE: &str = "org.apache.dubbo.samples.DemoService";
/// Dubbo statuses the proxy answers with.
const OK: u8 = 20;
const SERVICE_NOT_FOUND: u8 = 60;
const SERVICE_ERROR: u8 = 70;
const THREADPOOL_EXHAUSTED: u8 = 100;

/// Runs `examples/filters/<file>` against one live provider.
fn start_example(test: &str, file: &str) -> (Proxy, DubboProvider) {
    let provider = DubboProvider::start(test);
    let config = example_config(
        &format!("examples/filters/{file}"),
        &[
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:20881", provider.address()),
        ],
    );
    (Proxy::start(test, &config), provider)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// One call on `stream`: the answer frame.
fn call(stream: &mut TcpStream, id: u64, method: &str, attachments: &[(&str, &str)]) -> Frame {
    stream
        .write_all(&dubbo_wire::request(id, IFACE, method, "ann", attachments))
        .unwrap();
    let f = dubbo_wire::read_frame(stream).expect("an answer");
    assert_eq!(f.id, id);
    f
}

/// Runs the sofa client for `count` calls, returning (ok, errors, seconds it took).
fn burst(port: u16, count: usize, attach: &[&str]) -> (u64, u64, f64) {
    let count = count.to_string();
    let mut args = vec!["--count", count.as_str(), "--concurrency", "4"];
    for a in attach {
        args.extend(["--attach", a]);
    }
    let start = Instant::now();
    let s = dubbo_client(port, &args);
    (s.ok, s.errors, start.elapsed().as_secs_f64())
}

/// `burst + rate × seconds + 1`: the most a bucket can let through in `secs`.
fn most(burst: f64, rate: f64, secs: f64) -> u64 {
    (burst + rate * secs).floor() as u64 + 1
}

#[test]
fn local_ratelimit_per_user_buckets() {
    let (proxy, _provider) = start_example("lrl-user", "local_ratelimit.yaml");
    let port = proxy.addr(LISTENER).port();
    // Bucket per user: 1/s, bursts of 5.
    for user in ["x-user-id=alice", "x-user-id=bob"] {
        let (ok, errors, secs) = burst(port, 20, &[user]);
        assert_eq!(ok + errors, 20);
        assert!(
            (5..=most(5.0, 1.0, secs)).contains(&ok),
            "{user}: {ok} ok in {secs:.2}s / logs:\n{}",
            proxy.logs()
        );
    }
    // Without a user the default bucket (bursts of 200) applies.
    let (ok, _, _) = burst(port, 50, &[]);
    assert_eq!(ok, 50);
}

#[test]
fn local_ratelimit_answers_with_the_native_over_limit_status() {
    let (proxy, _provider) = start_example("lrl-wire", "local_ratelimit.yaml");
    let mut s = connect(proxy.addr(LISTENER));
    // Route `checkout` overrides the limit: bursts of 2, one token per 5 s.
    let start = Instant::now();
    let frames: Vec<Frame> = (1..=4)
        .map(|id| call(&mut s, id, "sayHello", &[("x-route", "checkout")]))
        .collect();
    let statuses: Vec<u8> = frames.iter().map(|f| f.status).collect();
    if start.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            statuses,
            [OK, OK, THREADPOOL_EXHAUSTED, THREADPOOL_EXHAUSTED],
            "{}",
            proxy.logs()
        );
    }
    let refused = frames
        .iter()
        .find(|f| f.status == THREADPOOL_EXHAUSTED)
        .expect("4 calls at 0.2/s with bursts of 2: at least one refused");
    assert_eq!(
        refused.body_string(),
        "metaproxy: over limit: local rate limit `default` exceeded"
    );
    // The connection is still usable, and other routes are unaffected.
    assert_eq!(call(&mut s, 10, "sayHello", &[]).status, OK);
}

#[test]
fn a_reload_does_not_refill_the_local_ratelimit_buckets() {
    // Route `checkout` with bursts of 2 and no refill to speak of (one token per 1000 s).
    let provider = DubboProvider::start("lrl-reload");
    let config = example_config(
        "examples/filters/local_ratelimit.yaml",
        &[
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:20881", provider.address()),
            (
                "local_ratelimit: { tokens_per_second: 0.2, burst: 2 }",
                "local_ratelimit: { tokens_per_second: 0.001, burst: 2 }".to_string(),
            ),
        ],
    );
    let proxy = Proxy::start("lrl-reload", &config);
    let mut s = connect(proxy.addr(LISTENER));
    let checkout = [("x-route", "checkout")];
    let statuses: Vec<u8> = (1..=3)
        .map(|id| call(&mut s, id, "sayHello", &checkout).status)
        .collect();
    assert_eq!(statuses, [OK, OK, THREADPOOL_EXHAUSTED], "{}", proxy.logs());
    // Reload the unchanged config twice (SIGHUP); the bucket stays empty.
    for round in 1..=2 {
        proxy.signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(15);
        while proxy.logs().matches("config reloaded").count() < round {
            assert!(
                Instant::now() < deadline,
                "no reload {round}: {}",
                proxy.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // A new connection is served by the reloaded config.
        let mut fresh = connect(proxy.addr(LISTENER));
        let id = 10 + round as u64;
        assert_eq!(
            call(&mut fresh, id, "sayHello", &checkout).status,
            THREADPOOL_EXHAUSTED,
            "reload {round} refilled the bucket"
        );
    }
    assert_eq!(call(&mut s, 20, "sayHello", &[]).status, OK);
}

#[test]
fn per_route_overrides_stricter_limit_and_disabled_filter() {
    let (proxy, _provider) = start_example("lrl-routes", "local_ratelimit.yaml");
    let port = proxy.addr(LISTENER).port();
    // `checkout` has its own bucket: bursts of 2 at 0.2/s, whoever the user.
    let (ok, errors, secs) = burst(port, 20, &["x-route=checkout", "x-user-id=carol"]);
    assert_eq!(ok + errors, 20);
    assert!(
        (2..=most(2.0, 0.2, secs)).contains(&ok),
        "{ok} ok in {secs:.2}s"
    );
    // `health` has no rate limit at all: the same user is never refused there...
    let (ok, _, _) = burst(port, 60, &["x-route=health", "x-user-id=dave"]);
    assert_eq!(ok, 60, "{}", proxy.logs());
    // ...while the listener's per-user bucket still limits dave elsewhere.
    let (ok, _, secs) = burst(port, 20, &["x-user-id=dave"]);
    assert!(
        (5..=most(5.0, 1.0, secs)).contains(&ok),
        "{ok} ok in {secs:.2}s"
    );
}

#[test]
fn authz_rules_and_default() {
    let (proxy, provider) = start_example("authz", "authz.yaml");
    let mut s = connect(proxy.addr(LISTENER));
    // From 127.0.0.1: the `internal` rule lets it in.
    let f = call(&mut s, 1, "sayHello", &[]);
    assert_eq!(f.status, OK, "{}", f.body_string());
    assert!(
        provider
            .wait_call("sayHello", Duration::from_secs(5))
            .is_some()
    );
    // Earlier rules win over the source rule.
    let f = call(&mut s, 2, "adminReset", &[]);
    assert_eq!(f.status, SERVICE_ERROR);
    assert_eq!(
        f.body_string(),
        "metaproxy: permission denied: denied by rule `no-admin`"
    );
    let f = call(&mut s, 3, "sayHello", &[("x-role", "guest")]);
    assert_eq!(f.status, SERVICE_ERROR);
    assert_eq!(
        f.body_string(),
        "metaproxy: permission denied: denied by rule `no-guests`"
    );
    // A real client sees the denial as an error too.
    let port = proxy.addr(LISTENER).port();
    let c = dubbo_client(port, &["--count", "5", "--attach", "x-role=guest"]);
    assert_eq!((c.ok, c.errors), (0, 5), "{}", c.raw);
    assert!(c.raw.contains("permission denied"), "{}", c.raw);
    let c = dubbo_client(port, &["--count", "5"]);
    assert_eq!(c.ok, 5, "{}", c.raw);
}

#[test]
fn authz_source_networks_and_default_deny() {
    let provider = DubboProvider::start("authz-net");
    // Only 10.0.0.0/8 and an IPv6 block are allowed: loopback falls to the default.
    let config = example_config(
        "examples/filters/authz.yaml",
        &[
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:20881", provider.address()),
            (
                "source: [ 127.0.0.0/8, \"::1\", 10.0.0.0/8, \"fd00::/8\" ]",
                "source: [ 10.0.0.0/8, \"fd00::/8\" ]".to_string(),
            ),
        ],
    );
    let proxy = Proxy::start("authz-net", &config);
    let mut s = connect(proxy.addr(LISTENER));
    let f = call(&mut s, 1, "sayHello", &[]);
    assert_eq!(f.status, SERVICE_ERROR);
    assert_eq!(
        f.body_string(),
        "metaproxy: permission denied: denied by default"
    );
}

#[test]
fn fault_delay_applies_only_to_selected_requests() {
    let (proxy, _provider) = start_example("fault-delay", "fault.yaml");
    let mut s = connect(proxy.addr(LISTENER));
    assert_eq!(call(&mut s, 1, "sayHello", &[]).status, OK, "warm-up");
    let timed = |s: &mut TcpStream, id, attachments: &[(&str, &str)]| {
        let start = Instant::now();
        assert_eq!(call(s, id, "sayHello", attachments).status, OK);
        start.elapsed()
    };
    let delayed = timed(&mut s, 2, &[("x-fault", "delay")]);
    assert!(delayed >= Duration::from_millis(300), "{delayed:?}");
    assert!(delayed < Duration::from_secs(5), "{delayed:?}");
    let plain = (3..6).map(|id| timed(&mut s, id, &[])).min().unwrap();
    assert!(plain < Duration::from_millis(300), "{plain:?}");
}

#[test]
fn fault_abort_by_percentage() {
    let (proxy, _provider) = start_example("fault-abort", "fault.yaml");
    let port = proxy.addr(LISTENER).port();
    let c = dubbo_client(
        port,
        &[
            "--count",
            "400",
            "--concurrency",
            "16",
            "--attach",
            "x-fault=abort",
        ],
    );
    assert_eq!(c.ok + c.errors, 400, "{}", c.raw);
    // Binomial(400, 0.5): mean 200, sd 10; ±6 sd.
    assert!((140..=260).contains(&c.errors), "{}", c.raw);
    // Requests the rule does not select are never aborted.
    let c = dubbo_client(port, &["--count", "50", "--concurrency", "4"]);
    assert_eq!(c.ok, 50, "{}", c.raw);
    // The aborted ones carry the native status for the configured kind.
    let mut s = connect(proxy.addr(LISTENER));
    let statuses: Vec<u8> = (1..=40)
        .map(|id| call(&mut s, id, "sayHello", &[("x-fault", "abort")]).status)
        .collect();
    assert!(
        statuses.iter().all(|s| [OK, SERVICE_NOT_FOUND].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&SERVICE_NOT_FOUND), "{statuses:?}");
}

#[test]
fn filter_config_errors_are_reported_by_validate() {
    let path = common::write_config(
        "filters-invalid",
        "listeners:\n  - name: d\n    address: 127.0.0.1:0\n    protocol: dubbo\n    filters:\n      \
         - cors: { allow_origins: [\"*\"] }\n      - local_ratelimit: { tokens_per_second: 0 }\n      \
         - authz: { default: maybe }\n    routes:\n      - route: { cluster: c }\n\
         clusters:\n  - name: c\n    protocol: dubbo\n    endpoints: [ { address: 127.0.0.1:1 } ]\n",
    );
    let (ok, out, err) = common::validate(&path);
    assert!(!ok, "{out}{err}");
    let text = format!("{out}{err}");
    for want in [
        "needs an HTTP listener, not `dubbo`",
        "tokens_per_second must be a positive number",
        "unknown variant `maybe`",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn trace_context_is_created_when_absent_and_kept_when_sent() {
    let (proxy, _provider) = start_example("trace", "trace_context.yaml");
    let port = proxy.addr(LISTENER).port();
    let s = dubbo_client(
        port,
        &[
            "--method",
            "getAttachment",
            "--arg",
            "traceparent",
            "--count",
            "2",
        ],
    );
    assert_eq!(s.ok, 2, "{}", s.raw);
    // Two requests, two fresh traces, both well formed.
    assert_eq!(s.results.len(), 2, "{}", s.raw);
    for tp in s.results.keys() {
        assert!(
            metaproxy::filters::trace_context::is_traceparent(tp),
            "{tp}"
        );
    }
    let given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let s = dubbo_client(
        port,
        &[
            "--method",
            "getAttachment",
            "--arg",
            "traceparent",
            "--attach",
            &format!("traceparent={given}"),
        ],
    );
    assert_eq!(s.results.get(given), Some(&1), "{}", s.raw);
    let s = dubbo_client(
        port,
        &["--method", "getAttachment", "--arg", "x-request-id"],
    );
    let id = s.results.keys().next().unwrap();
    assert_eq!(id.len(), 32, "{}", s.raw);
}
