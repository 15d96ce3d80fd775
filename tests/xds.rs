//! Configuration from a control plane: the release binary follows Envoy's
//! reference xDS server library (go-control-plane, `tests/peers/xds/`,
//! built by `.ci/run`) over ADS. Snapshots pushed to it become listeners,
//! routes, clusters and endpoints; a resource the proxy cannot honour is
//! NACKed with its name and field while the last good config keeps
//! serving; a control-plane outage changes nothing until it comes back.

mod common;
#[path = "common/http.rs"]
mod http_peers;
#[path = "common/xds.rs"]
mod xds_peers;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Proxy;
use http_peers::{Backend, curl};
use serde_json::{Value, json};
use xds_peers::{ControlPlane, Envoy, NODE, WAIT, proxy_with, socket, static_cluster};

fn http_listener(name: &str, route_config: &str, extra: Value) -> Value {
    let mut l = json!({
        "name": name,
        "address": socket(0),
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "in",
                "rds": { "route_config_name": route_config, "config_source": { "ads": {}, "resource_api_version": "V3" } },
                "http_filters": [{
                    "name": "envoy.filters.http.router",
                    "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
                }]
            }
        }]}]
    });
    if let (Some(l), Some(extra)) = (l.as_object_mut(), extra.as_object()) {
        l.extend(extra.clone());
    }
    l
}

fn routes(name: &str, b_to: &str) -> Value {
    json!({ "name": name, "virtual_hosts": [{
        "name": "all", "domains": ["*"],
        "routes": [
            { "match": { "prefix": "/b" }, "route": { "cluster": b_to, "timeout": "5s" } },
            { "match": { "prefix": "/" }, "route": { "cluster": "a" },
              "response_headers_to_add": [{ "header": { "key": "x-from", "value": "xds" }, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD" }] }
        ]
    }]})
}

fn eds_cluster(name: &str) -> Value {
    json!({ "name": name, "type": "EDS", "connect_timeout": "1s",
            "eds_cluster_config": { "eds_config": { "ads": {}, "resource_api_version": "V3" } } })
}

fn assignment(name: &str, port: u16) -> Value {
    json!({ "cluster_name": name, "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(port) } }] }] })
}

fn port_of(b: &Backend) -> u16 {
    b.address().rsplit(':').next().unwrap().parse().unwrap()
}

/// The proxy of `examples/xds/rest.yaml`, polling the control plane's
/// REST-JSON gateway on `rest` every 50 ms.
fn proxy_polling(test: &str, rest: u16, static_backend: &Backend) -> Proxy {
    let config = common::example_config(
        "examples/xds/rest.yaml",
        &[
            ("127.0.0.1:18001", format!("127.0.0.1:{rest}")),
            ("refresh_delay: 1s", "refresh_delay: 50ms".into()),
            ("127.0.0.1:9901", "127.0.0.1:0".into()),
            ("127.0.0.1:8080", "127.0.0.1:0".into()),
            ("127.0.0.1:8081", static_backend.address()),
            ("max_backoff: 10s", "max_backoff: 200ms".into()),
        ],
    );
    Proxy::start(test, &config)
}

fn get(addr: SocketAddr, path: &str) -> http_peers::CurlOut {
    curl(&[&format!("http://{addr}{path}")])
}

/// Who answered: the backend's tag in its body.
fn answered_by(addr: SocketAddr, path: &str) -> String {
    let r = get(addr, path);
    assert_eq!(r.status, 200, "{r:?}");
    r.body
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn wait_answered_by(addr: SocketAddr, path: &str, tag: &str, proxy: &Proxy) {
    let deadline = Instant::now() + WAIT;
    while answered_by(addr, path) != tag {
        assert!(
            Instant::now() < deadline,
            "{path} never reached {tag}\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn listeners_routes_clusters_and_endpoints_follow_the_control_plane() {
    follow_the_control_plane(false);
}

/// The same, over Envoy's REST-JSON transport: every type polled with a
/// JSON `DiscoveryRequest`, the ACK or NACK being the next poll.
#[test]
fn the_rest_transport_follows_the_control_plane_the_same_way() {
    follow_the_control_plane(true);
}

/// The backends the follow tests route to: `a`, `a2`, `b` and the static
/// listener's.
fn backends() -> (Backend, Backend, Backend, Backend) {
    (
        Backend::start("a"),
        Backend::start("a2"),
        Backend::start("b"),
        Backend::start("static"),
    )
}

fn follow_the_control_plane(rest: bool) {
    let (a, a2, b, s) = backends();
    let mut cp = ControlPlane::start(None);
    let proxy = if rest {
        proxy_polling("xds-follow-rest", cp.rest, &s)
    } else {
        proxy_with("xds-follow", cp.grpc, &s.address())
    };
    cp.snapshot(
        "v1",
        json!({
            "listeners": [http_listener("xds-http", "r1", json!({}))],
            "routes": [routes("r1", "b")],
            "clusters": [eds_cluster("a"), static_cluster("b", port_of(&b))],
            "endpoints": [assignment("a", port_of(&a))],
        }),
    );
    for t in [
        "Cluster",
        "ClusterLoadAssignment",
        "Listener",
        "RouteConfiguration",
    ] {
        let ack = cp.wait_request(t, "v1", false);
        assert_eq!(ack["rest"].as_bool().unwrap_or(false), rest, "{ack}");
    }
    let addr = proxy.bound("xds-http");
    wait_answered_by(addr, "/x", "a", &proxy);
    let r = get(addr, "/x");
    assert_eq!(
        r.header("x-from"),
        Some("xds"),
        "response headers added: {r:?}"
    );
    assert_eq!(answered_by(addr, "/b/1"), "b");
    // The static listener and cluster serve beside the control plane's.
    assert_eq!(answered_by(proxy.addr("static-in"), "/"), "static");

    // An EDS change moves traffic without a reload.
    let reloads = proxy.metric("metaproxy_config_reloads_total{result=\"ok\"}");
    cp.snapshot(
        "v2",
        json!({
            "listeners": [http_listener("xds-http", "r1", json!({}))],
            "routes": [routes("r1", "b")],
            "clusters": [eds_cluster("a"), static_cluster("b", port_of(&b))],
            "endpoints": [assignment("a", port_of(&a2))],
        }),
    );
    cp.wait_request("ClusterLoadAssignment", "v2", false);
    wait_answered_by(addr, "/x", "a2", &proxy);

    // A listener with a field the proxy cannot honour is refused, naming
    // the resource and the field; the last good config keeps serving.
    cp.snapshot(
        "v3",
        json!({
            "listeners": [http_listener("xds-http", "r1", json!({ "per_connection_buffer_limit_bytes": 4096 }))],
            "routes": [routes("r1", "b")],
            "clusters": [eds_cluster("a"), static_cluster("b", port_of(&b))],
            "endpoints": [assignment("a", port_of(&a2))],
        }),
    );
    let nack = cp.wait_request("Listener", "", true);
    let why = nack["error"].as_str().unwrap();
    assert!(
        why.contains("listener `xds-http`") && why.contains("per_connection_buffer_limit_bytes"),
        "{why}"
    );
    assert_eq!(
        nack["version"], "v2",
        "a NACK carries the last version accepted"
    );
    assert_eq!(answered_by(addr, "/x"), "a2");
    assert!(
        proxy.metric(
            "metaproxy_config_updates_total{source=\"xds\",resource=\"lds\",result=\"rejected\"}"
        ) >= 1.0,
        "{}",
        proxy.admin("GET", "/metrics").1
    );
    let (_, dump) = proxy.admin("GET", "/config_dump");
    let d: Value = serde_json::from_str(&dump).unwrap();
    assert!(
        d["xds"]["types"]["lds"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("per_connection_buffer_limit_bytes")),
        "{dump}"
    );
    // The refused listener stays at the version accepted before; the other
    // types took v3.
    assert!(
        d["xds"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "lds" && r["name"] == "xds-http" && r["version"] == "v2"),
        "{dump}"
    );

    // Fixed, with a route change: /b now goes to cluster a.
    cp.snapshot(
        "v4",
        json!({
            "listeners": [http_listener("xds-http", "r1", json!({}))],
            "routes": [routes("r1", "a")],
            "clusters": [eds_cluster("a"), static_cluster("b", port_of(&b))],
            "endpoints": [assignment("a", port_of(&a2))],
        }),
    );
    cp.wait_request("RouteConfiguration", "v4", false);
    wait_answered_by(addr, "/b/1", "a2", &proxy);
    assert!(
        proxy.metric("metaproxy_config_reloads_total{result=\"ok\"}") > reloads,
        "RDS changes apply as reloads"
    );
}

#[test]
fn a_control_plane_outage_keeps_the_last_config_until_it_comes_back() {
    let (a, b, s) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("static"),
    );
    let mut cp = ControlPlane::start(None);
    let port = cp.grpc;
    let proxy = proxy_with("xds-outage", port, &s.address());
    let resources = |to: u16| {
        json!({
            "listeners": [http_listener("xds-http", "r1", json!({}))],
            "routes": [routes("r1", "a")],
            "clusters": [eds_cluster("a")],
            "endpoints": [assignment("a", to)],
        })
    };
    cp.snapshot("v1", resources(port_of(&a)));
    cp.wait_request("RouteConfiguration", "v1", false);
    let addr = proxy.bound("xds-http");
    wait_answered_by(addr, "/", "a", &proxy);

    drop(cp);
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, dump) = proxy.admin("GET", "/config_dump");
        let d: Value = serde_json::from_str(&dump).unwrap();
        if d["xds"]["connected"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "the outage is not seen: {dump}");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..5 {
        assert_eq!(answered_by(addr, "/"), "a", "the last config keeps serving");
    }

    // Back on the same port: the stream reopens and follows new snapshots.
    let mut cp = ControlPlane::start(Some(port));
    cp.snapshot("v2", resources(port_of(&b)));
    wait_answered_by(addr, "/", "b", &proxy);
}

fn split_routes(name: &str) -> Value {
    json!({ "name": name, "virtual_hosts": [{
        "name": "all", "domains": ["*"],
        "routes": [
            { "match": { "prefix": "/", "headers": [{ "name": "X-Canary", "string_match": { "exact": "yes" } }] },
              "route": { "cluster": "b" } },
            { "match": { "prefix": "/" },
              "route": { "weighted_clusters": { "clusters": [
                  { "name": "a", "weight": 80 }, { "name": "b", "weight": 20 } ] } } }
        ]
    }]})
}

/// Share of `n` requests to `addr` that `b` answered.
fn share_of_b(addr: SocketAddr, n: usize, header: Option<&str>) -> f64 {
    let mut b = 0;
    for i in 0..n {
        let url = format!("http://{addr}/r/{i}");
        let r = match header {
            Some(h) => curl(&["-H", h, &url]),
            None => curl(&[&url]),
        };
        assert_eq!(r.status, 200, "{r:?}");
        if r.body.starts_with("b ") || r.body.starts_with("b\n") {
            b += 1;
        }
    }
    b as f64 / n as f64
}

#[test]
fn envoy_and_metaproxy_follow_the_same_control_plane_the_same_way() {
    let (a, b, s) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("static"),
    );
    let mut cp = ControlPlane::start(None);
    let proxy = proxy_with("xds-vs-envoy", cp.grpc, &s.address());
    let envoy = Envoy::start("envoy-1", cp.grpc);
    let resources = |lb_policy: Value| {
        let mut b_cluster = static_cluster("b", port_of(&b));
        b_cluster["lb_policy"] = lb_policy;
        json!({
            "listeners": [http_listener("xds-http", "r2", json!({}))],
            "routes": [split_routes("r2")],
            "clusters": [eds_cluster("a"), b_cluster],
            "endpoints": [assignment("a", port_of(&a))],
        })
    };
    for node in [NODE, "envoy-1"] {
        cp.snapshot_for(node, "v1", resources(json!("ROUND_ROBIN")));
    }
    for node in [NODE, "envoy-1"] {
        for t in [
            "Cluster",
            "ClusterLoadAssignment",
            "Listener",
            "RouteConfiguration",
        ] {
            cp.wait_request_of(node, t, "v1", false);
        }
    }
    let ours = proxy.bound("xds-http");
    let theirs = envoy.listener("xds-http");
    wait_answered_by(ours, "/", "a", &proxy);
    // Both route the same traffic the same way: a header match, and an
    // 80/20 split (each within 4.5 standard deviations of 20%: 0.02 at
    // 400 requests).
    for (who, addr) in [("metaproxy", ours), ("envoy", theirs)] {
        assert_eq!(
            share_of_b(addr, 20, Some("x-canary: yes")),
            1.0,
            "{who}: header match"
        );
        let share = share_of_b(addr, 400, None);
        assert!(
            (0.11..=0.29).contains(&share),
            "{who}: {share} of requests to b, want 0.2"
        );
    }

    // Both refuse the same broken update (an unknown balancer), and both
    // keep serving what they had.
    for node in [NODE, "envoy-1"] {
        cp.snapshot_for(node, "v2", resources(json!(99)));
    }
    let ours_nack = cp.wait_request_of(NODE, "Cluster", "", true);
    let theirs_nack = cp.wait_request_of("envoy-1", "Cluster", "", true);
    assert!(
        ours_nack["error"].as_str().unwrap().contains("cluster `b`"),
        "{ours_nack}"
    );
    assert!(!theirs_nack["error"].is_null(), "{theirs_nack}");
    let deadline = Instant::now() + WAIT;
    while envoy.stat("cluster_manager.cds.update_rejected") == 0 {
        assert!(
            Instant::now() < deadline,
            "envoy counted no rejected CDS update"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        proxy.metric(
            "metaproxy_config_updates_total{source=\"xds\",resource=\"cds\",result=\"rejected\"}"
        ) >= 1.0
    );
    for addr in [ours, theirs] {
        assert_eq!(share_of_b(addr, 5, Some("x-canary: yes")), 1.0);
    }
}

/// Incremental xDS: the same server on a delta ADS stream sends only what
/// changed; the proxy follows each change and NACKs a broken one by name.
#[test]
fn the_delta_transport_follows_the_control_plane_incrementally() {
    let (a, a2, b, s) = backends();
    let mut cp = ControlPlane::start(None);
    let config = common::example_config(
        "examples/xds/delta.yaml",
        &[
            ("127.0.0.1:18000", format!("127.0.0.1:{}", cp.grpc)),
            ("127.0.0.1:9901", "127.0.0.1:0".into()),
            ("127.0.0.1:8080", "127.0.0.1:0".into()),
            ("127.0.0.1:8081", s.address()),
        ],
    );
    let proxy = Proxy::start("xds-delta", &config);
    let snapshot = |listener_extra: Value, b_to: &str, a_at: &Backend| {
        json!({
            "listeners": [http_listener("xds-http", "r1", listener_extra)],
            "routes": [routes("r1", b_to)],
            "clusters": [eds_cluster("a"), static_cluster("b", port_of(&b))],
            "endpoints": [assignment("a", port_of(a_at))],
        })
    };
    cp.snapshot("v1", snapshot(json!({}), "b", &a));
    for t in [
        "Cluster",
        "ClusterLoadAssignment",
        "Listener",
        "RouteConfiguration",
    ] {
        cp.wait_delta_answer(t, "v1", false);
    }
    let addr = proxy.bound("xds-http");
    wait_answered_by(addr, "/x", "a", &proxy);
    assert_eq!(answered_by(addr, "/b/1"), "b");

    // Only the load assignment changed: it alone is sent, and followed.
    cp.snapshot("v2", snapshot(json!({}), "b", &a2));
    cp.wait_delta_answer("ClusterLoadAssignment", "v2", false);
    wait_answered_by(addr, "/x", "a2", &proxy);
    for unchanged in ["Listener", "RouteConfiguration", "Cluster"] {
        assert!(
            !cp.sent_delta(unchanged, "v2"),
            "{unchanged} was sent again"
        );
    }

    // A listener the proxy cannot honour: NACKed by name, the last good
    // config keeps serving.
    let broken = json!({ "per_connection_buffer_limit_bytes": 4096 });
    cp.snapshot("v3", snapshot(broken, "b", &a2));
    let nack = cp.wait_delta_answer("Listener", "v3", true);
    let why = nack["error"].as_str().unwrap();
    assert!(
        why.contains("listener `xds-http`") && why.contains("per_connection_buffer_limit_bytes"),
        "{why}"
    );
    assert_eq!(answered_by(addr, "/x"), "a2");

    // Fixed, with a route change.
    cp.snapshot("v4", snapshot(json!({}), "a", &a2));
    cp.wait_delta_answer("RouteConfiguration", "v4", false);
    wait_answered_by(addr, "/b/1", "a2", &proxy);
    let (_, dump) = proxy.admin("GET", "/config_dump");
    let d: Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(d["xds"]["transport"], "delta_grpc", "{dump}");
    assert_eq!(d["xds"]["types"]["lds"]["rejected"], 1, "{dump}");
}
