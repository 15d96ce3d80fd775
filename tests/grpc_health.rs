//! `health_check: { kind: grpc }` through the release binary against
//! grpcio servers serving the reference `grpc.health.v1.Health`
//! (grpcio-health-checking): an endpoint that says NOT_SERVING, or stops,
//! leaves the balancer within the configured interval and comes back when
//! it serves again.

mod common;
#[path = "common/http.rs"]
mod http_peers;

use std::time::{Duration, Instant};

use common::{Proxy, example_config, poke};
use http_peers::{GrpcServer, grpc_client};

/// Whether each endpoint of cluster `echo` is healthy, by address.
fn health(proxy: &Proxy) -> Vec<(String, bool)> {
    let (status, body) = proxy.admin("GET", "/clusters");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let cluster = v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "echo")
        .expect("cluster echo")
        .clone();
    cluster["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["address"].as_str().unwrap().to_string(),
                e["healthy"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Waits until `address` is (or is not) healthy; the time it took.
fn wait_health(proxy: &Proxy, address: &str, healthy: bool) -> Duration {
    let start = Instant::now();
    loop {
        let now = health(proxy);
        if now.iter().any(|(a, h)| a == address && *h == healthy) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{address} not healthy={healthy} after 5 s: {now:?}; logs:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn grpc_health_checks_follow_serving_status_and_dead_servers() {
    let mut a = GrpcServer::start_with("a", &["--health"]);
    let b = GrpcServer::start_with("b", &["--health"]);
    let config = example_config(
        "examples/grpc_health/config.yaml",
        &[
            ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
            ("127.0.0.1:50051", a.address()),
            ("127.0.0.1:50052", b.address()),
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ],
    );
    let proxy = Proxy::start("grpc-health", &config);
    let addr = proxy.addr("grpc-in");
    wait_health(&proxy, &a.address(), true);
    wait_health(&proxy, &b.address(), true);
    let v = grpc_client(addr, &["--call", "unary", "--count", "20"]);
    assert_eq!(v["ok"], 20, "{v}");
    assert!(v["results"]["a:hello"].as_u64().unwrap_or(0) > 0, "{v}");

    // `a` says NOT_SERVING for demo.Echo: out within 2 intervals (200 ms
    // each, plus a check's round trip), and no call goes there.
    poke(&mut a.child.0, "set demo.Echo NOT_SERVING\n");
    let took = wait_health(&proxy, &a.address(), false);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let v = grpc_client(addr, &["--call", "unary", "--count", "20"]);
    assert_eq!(v["results"]["b:hello"], 20, "{v}");

    // Serving again: back in after one passing check.
    poke(&mut a.child.0, "set demo.Echo SERVING\n");
    wait_health(&proxy, &a.address(), true);

    // `b` dies: its checks fail to connect, it is out, calls go to `a`.
    let b_address = b.address();
    drop(b);
    let took = wait_health(&proxy, &b_address, false);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let v = grpc_client(addr, &["--call", "unary", "--count", "10"]);
    assert_eq!(v["results"]["a:hello"], 10, "{v}");
}
