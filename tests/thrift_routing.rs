//! The Thrift routing example (examples/thrift_routing) end to end: route by
//! method, by THeader header, by multiplexed service, 80/20 split, no route.

mod common;
#[path = "common/thrift.rs"]
mod thrift_peers;

use std::time::Duration;

use common::{Proxy, example_config};
use thrift_peers::{ThriftServer, client};

const LISTENER: &str = "thrift-in";

/// The example config with its endpoints pointed at three live servers.
/// THeader servers answer clients of every transport and protocol.
fn start_example(test: &str) -> (Proxy, ThriftServer, ThriftServer, ThriftServer) {
    let v1 = ThriftServer::start("header", "binary", "v1");
    let v2 = ThriftServer::start("header", "binary", "v2");
    let canary = ThriftServer::start("header", "binary", "canary");
    let config = example_config(
        "examples/thrift_routing/config.yaml",
        &[
            ("127.0.0.1:9090", "127.0.0.1:0".to_string()),
            ("127.0.0.1:9091", v1.address()),
            ("127.0.0.1:9092", v2.address()),
            ("127.0.0.1:9093", canary.address()),
        ],
    );
    (Proxy::start(test, &config), v1, v2, canary)
}

#[test]
fn hello_splits_80_20_between_v1_and_v2() {
    let (proxy, _v1, _v2, _canary) = start_example("thrift-split");
    let port = proxy.addr(LISTENER).port();
    let s = client(port, &["--count", "500", "--concurrency", "8"]);
    assert_eq!(s.ok, 500, "{} / proxy logs:\n{}", s.raw, proxy.logs());
    let v1 = s.result("Hello bob, from v1");
    let v2 = s.result("Hello bob, from v2");
    assert_eq!(v1 + v2, 500, "nothing may reach the canary: {}", s.raw);
    // Binomial(500, 0.8): mean 400, sd ≈ 8.9; ±6 sd.
    assert!((347..=453).contains(&v1), "v1 got {v1} of 500: {}", s.raw);
}

#[test]
fn a_theader_header_routes_to_the_canary() {
    let (proxy, _v1, _v2, canary) = start_example("thrift-header-route");
    let port = proxy.addr(LISTENER).port();
    for p in ["binary", "compact"] {
        let s = client(
            port,
            &[
                "--transport",
                "header",
                "--protocol",
                p,
                "--count",
                "20",
                "--concurrency",
                "4",
                "--header",
                "x-canary=true",
            ],
        );
        assert_eq!(
            s.result("Hello bob, from canary"),
            20,
            "{p}: {} / logs:\n{}",
            s.raw,
            proxy.logs()
        );
    }
    // The server saw the header the route matched on.
    let call = canary.wait_call("hello", Duration::from_secs(5)).unwrap();
    assert_eq!(call["headers"]["x-canary"], "true", "{call}");
    // Another value is not the canary.
    let s = client(
        port,
        &[
            "--transport",
            "header",
            "--count",
            "10",
            "--header",
            "x-canary=false",
        ],
    );
    assert_eq!(s.result("Hello bob, from canary"), 0, "{}", s.raw);
}

#[test]
fn routes_by_method_and_by_multiplexed_service() {
    let (proxy, v1, _v2, canary) = start_example("thrift-method-route");
    let port = proxy.addr(LISTENER).port();
    // `sleep` always goes to v1.
    let s = client(
        port,
        &[
            "--method",
            "sleep",
            "--arg",
            "1",
            "--count",
            "10",
            "--transport",
            "buffered",
        ],
    );
    assert_eq!(s.result("1"), 10, "{} / logs:\n{}", s.raw, proxy.logs());
    assert!(
        v1.calls
            .wait_for(Duration::from_secs(5), |c| c["method"] == "sleep")
            .is_some()
    );
    // `Calculator:add` (service Calculator) goes to the canary.
    let s = client(
        port,
        &[
            "--multiplexed",
            "Calculator",
            "--arg",
            "20,22",
            "--protocol",
            "compact",
        ],
    );
    assert_eq!(s.result("42"), 1, "{}", s.raw);
    assert!(canary.wait_call("add", Duration::from_secs(5)).is_some());
}

#[test]
fn no_route_is_an_unknown_method_exception() {
    let (proxy, _v1, _v2, _canary) = start_example("thrift-no-route");
    let port = proxy.addr(LISTENER).port();
    for (t, p) in [
        ("framed", "binary"),
        ("buffered", "compact"),
        ("header", "compact"),
    ] {
        let s = client(
            port,
            &["--transport", t, "--protocol", p, "--method", "nosuch"],
        );
        // TApplicationException.UNKNOWN_METHOD = 1.
        assert_eq!(s.exceptions("1"), 1, "{t}/{p}: {}", s.raw);
        assert!(
            s.has_message("metaproxy: route not found"),
            "{t}/{p}: {}",
            s.raw
        );
    }
    // The connection survives: a later call on a new client works.
    let s = client(port, &["--count", "3"]);
    assert_eq!(s.ok, 3, "{}", s.raw);
}

#[test]
fn oneway_and_declared_exceptions_pass_through() {
    let (proxy, v1, v2, _canary) = start_example("thrift-oneway");
    let port = proxy.addr(LISTENER).port();
    let s = client(port, &["--method", "notify", "--arg", "n", "--count", "10"]);
    assert_eq!(s.ok, 10, "{}", s.raw);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while v1.calls.count("notify") + v2.calls.count("notify") < 10
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        v1.calls.count("notify") + v2.calls.count("notify"),
        10,
        "logs:\n{}",
        proxy.logs()
    );
    let s = client(
        port,
        &[
            "--method",
            "fail",
            "--arg",
            "declared",
            "--transport",
            "header",
            "--protocol",
            "compact",
        ],
    );
    assert_eq!(s.exceptions("MyError"), 1, "{}", s.raw);
}
