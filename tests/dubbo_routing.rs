//! Dubbo end to end through the real binary, with a third-party Dubbo
//! implementation (Ant Group's sofa-rpc-node + dubbo-remoting) as both the
//! clients and the providers.

mod common;

use std::time::Duration;

use common::{DubboProvider, Proxy, dubbo_client, example_config};

const LISTENER: &str = "dubbo-in";

/// The example config with its endpoints pointed at three live providers.
fn start_example(test: &str) -> (Proxy, DubboProvider, DubboProvider, DubboProvider) {
    let v1 = DubboProvider::start("v1");
    let v2 = DubboProvider::start("v2");
    let batch = DubboProvider::start("batch");
    let config = example_config(
        "examples/dubbo_batchjob/config.yaml",
        &[
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:20881", v1.address()),
            ("127.0.0.1:20882", v2.address()),
            ("127.0.0.1:20883", batch.address()),
        ],
    );
    let proxy = Proxy::start(test, &config);
    (proxy, v1, v2, batch)
}

#[test]
fn batchjob_attachment_routes_to_the_batchjob_group() {
    let (proxy, _v1, _v2, batch) = start_example("batchjob");
    let port = proxy.addr(LISTENER).port();
    let s = dubbo_client(
        port,
        &[
            "--count",
            "40",
            "--concurrency",
            "4",
            "--attach",
            "batchJob=true",
        ],
    );
    assert_eq!(s.ok, 40, "{} / proxy logs:\n{}", s.raw, proxy.logs());
    assert_eq!(
        s.results.get("Hello bob, from batch"),
        Some(&40),
        "{}",
        s.raw
    );
    // The provider saw the client's attachment, case kept.
    let call = batch.wait_call("sayHello", Duration::from_secs(5)).unwrap();
    assert_eq!(call["attachments"]["batchJob"], "true", "{call}");
}

#[test]
fn other_calls_split_90_10_between_v1_and_v2() {
    let (proxy, _v1, _v2, _batch) = start_example("split");
    let port = proxy.addr(LISTENER).port();
    let s = dubbo_client(port, &["--count", "1000", "--concurrency", "16"]);
    assert_eq!(s.ok, 1000, "{} / proxy logs:\n{}", s.raw, proxy.logs());
    let v1 = *s.results.get("Hello bob, from v1").unwrap_or(&0);
    let v2 = *s.results.get("Hello bob, from v2").unwrap_or(&0);
    assert_eq!(
        v1 + v2,
        1000,
        "nothing may reach the batch group: {}",
        s.raw
    );
    // Binomial(1000, 0.9): mean 900, sd ≈ 9.5; ±6 sd keeps this test honest and stable.
    assert!((843..=957).contains(&v1), "v1 got {v1} of 1000: {}", s.raw);
    // A batchJob value other than "true" is not the batch job.
    let s = dubbo_client(port, &["--count", "20", "--attach", "batchJob=false"]);
    assert_eq!(s.results.get("Hello bob, from batch"), None, "{}", s.raw);
}

#[test]
fn filter_mutations_arrive_as_attachments() {
    let (proxy, _v1, _v2, _batch) = start_example("mutation");
    let port = proxy.addr(LISTENER).port();
    let s = dubbo_client(
        port,
        &["--method", "getAttachment", "--arg", "x-forwarded-by"],
    );
    assert_eq!(s.results.get("metaproxy"), Some(&1), "{}", s.raw);
    let s = dubbo_client(port, &["--method", "getAttachment", "--arg", "x-client-ip"]);
    assert_eq!(s.results.get("127.0.0.1"), Some(&1), "{}", s.raw);
}

#[test]
fn provider_errors_pass_through_unchanged() {
    let (proxy, _v1, _v2, _batch) = start_example("passthrough");
    let port = proxy.addr(LISTENER).port();
    let s = dubbo_client(
        port,
        &["--method", "fail", "--arg", "boom from the provider"],
    );
    assert_eq!(s.errors, 1, "{}", s.raw);
    assert!(
        s.error_messages.contains_key("boom from the provider"),
        "{}",
        s.raw
    );
}

#[test]
fn oneway_calls_reach_the_provider() {
    let (proxy, v1, v2, _batch) = start_example("oneway");
    let port = proxy.addr(LISTENER).port();
    let s = dubbo_client(
        port,
        &[
            "--method",
            "notify",
            "--arg",
            "fire-and-forget",
            "--oneway",
            "--count",
            "5",
        ],
    );
    assert_eq!(s.ok, 5, "{}", s.raw);
    // 5 calls split 90/10: they land on v1 or v2; count what arrived.
    let mut arrived = 0;
    for p in [&v1, &v2] {
        while let Some(call) = p.wait_call(
            "notify",
            Duration::from_millis(if arrived < 5 { 3000 } else { 100 }),
        ) {
            assert_eq!(call["args"][0], "fire-and-forget");
            assert_eq!(call["oneway"], true, "forwarded as oneway: {call}");
            arrived += 1;
            if arrived == 5 {
                break;
            }
        }
    }
    assert_eq!(arrived, 5, "proxy logs:\n{}", proxy.logs());
}

#[test]
fn no_route_answers_with_a_readable_dubbo_error() {
    let provider = DubboProvider::start("only");
    let config = format!(
        r#"
listeners:
  - name: dubbo-in
    address: 127.0.0.1:0
    protocol: dubbo
    routes:
      - name: hello-only
        match: [ {{ key: method, exact: sayHello }} ]
        route: {{ cluster: demo }}
clusters:
  - name: demo
    protocol: dubbo
    endpoints: [ {{ address: "{}" }} ]
"#,
        provider.address()
    );
    let proxy = Proxy::start("noroute", &config);
    let port = proxy.addr(LISTENER).port();
    let s = dubbo_client(port, &["--method", "getAttachment", "--arg", "x"]);
    assert_eq!(s.errors, 1, "{}", s.raw);
    let msg = s.error_messages.keys().next().unwrap();
    assert!(msg.contains("no route"), "{msg}");
    assert!(
        msg.contains("org.apache.dubbo.samples.DemoService.getAttachment"),
        "{msg}"
    );
    // The route that matches still works on the same proxy.
    let s = dubbo_client(port, &[]);
    assert_eq!(s.results.get("Hello bob, from only"), Some(&1), "{}", s.raw);
}

#[test]
fn provider_down_answers_service_not_found_and_timeouts_answer_timeout() {
    let provider = DubboProvider::start("slow");
    // A port nothing listens on: bind, note it, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = format!(
        r#"
listeners:
  - name: dubbo-in
    address: 127.0.0.1:0
    protocol: dubbo
    routes:
      - name: down
        match: [ {{ key: down, present: true }} ]
        route: {{ cluster: dead }}
      - name: slow
        route: {{ cluster: live, timeout: 300ms }}
clusters:
  - name: dead
    protocol: dubbo
    endpoints: [ {{ address: "{dead}" }} ]
  - name: live
    protocol: dubbo
    endpoints: [ {{ address: "{}" }} ]
"#,
        provider.address()
    );
    let proxy = Proxy::start("down", &config);
    let port = proxy.addr(LISTENER).port();
    let s = dubbo_client(port, &["--attach", "down=1"]);
    assert_eq!(s.errors, 1, "{}", s.raw);
    let msg = s.error_messages.keys().next().unwrap();
    assert!(msg.contains("cannot connect"), "{msg}");
    let s = dubbo_client(port, &["--method", "sleep", "--arg", "2000"]);
    assert_eq!(s.errors, 1, "{}", s.raw);
    let msg = s.error_messages.keys().next().unwrap();
    assert!(msg.contains("upstream timeout"), "{msg}");
    // And the proxy keeps serving.
    let s = dubbo_client(port, &[]);
    assert_eq!(s.ok, 1, "{}", s.raw);
}
