//! RPC listeners from a control plane: Envoy's `dubbo_proxy`,
//! `generic_proxy` (Dubbo codec) and `thrift_proxy` network filters, their
//! routes written in the listener or sent on their own (DRDS, generic RDS,
//! TRDS), pushed by go-control-plane (`tests/peers/xds/`) to the release
//! binary and to Envoy 1.40 alike; real clients (sofa-rpc-node for Dubbo,
//! Apache Thrift's Python client) are routed the same way by both.

mod common;
#[path = "common/thrift.rs"]
mod thrift_peers;
#[path = "common/xds.rs"]
mod xds_peers;

use serde_json::{Value, json};
use xds_peers::{ControlPlane, Envoy, NODE, proxy_with, socket, static_cluster};

/// Where an RPC listener's routes come from on the control plane.
#[derive(Clone, Copy, PartialEq)]
enum Routes {
    /// Written in the listener.
    Inline,
    /// A resource of their own (DRDS, TRDS), named by the listener.
    Discovered,
}

fn ads() -> Value {
    json!({ "ads": {}, "resource_api_version": "V3" })
}

/// The route configuration of the Dubbo demo service: `sayHello` with
/// `batchJob: true` to `batch`, every other call to `users`.
fn dubbo_routes() -> Value {
    json!({
        "name": "demo",
        "interface": "org.apache.dubbo.samples.DemoService",
        "routes": [
            { "match": { "method": { "name": { "exact": "sayHello" } },
                         "headers": [{ "name": "batchJob", "string_match": { "exact": "true" } }] },
              "route": { "cluster": "batch" } },
            { "match": { "method": { "name": { "safe_regex": { "regex": ".*" } } } },
              "route": { "cluster": "users" } }
        ]
    })
}

fn dubbo_listener(routes: Routes) -> Value {
    let mut proxy = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy",
        "stat_prefix": "dubbo",
        "dubbo_filters": [{
            "name": "envoy.filters.dubbo.router",
            "config": { "@type": "type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.router.v3.Router" }
        }]
    });
    match routes {
        Routes::Inline => proxy["route_config"] = json!([dubbo_routes()]),
        Routes::Discovered => {
            proxy["drds"] = json!({ "config_source": ads(), "route_config_name": "dubbo-routes" })
        }
    }
    json!({
        "name": "xds-dubbo",
        "address": socket(0),
        "filter_chains": [{ "filters": [{ "name": "envoy.filters.network.dubbo_proxy", "typed_config": proxy }] }]
    })
}

#[test]
fn a_dubbo_listener_from_the_control_plane_routes_by_attachment_as_envoy_does() {
    dubbo_by_attachment(Filter::DubboProxy, Routes::Inline);
}

/// The same routes sent as a DRDS `MultipleRouteConfiguration`.
#[test]
fn dubbo_routes_from_drds_route_by_attachment_as_envoy_does() {
    dubbo_by_attachment(Filter::DubboProxy, Routes::Discovered);
}

/// Envoy's successor of `dubbo_proxy`: `generic_proxy` with the Dubbo
/// codec, its routes a unified matcher written in the listener.
#[test]
fn a_generic_proxy_listener_routes_dubbo_by_attachment_as_envoy_does() {
    dubbo_by_attachment(Filter::GenericProxy, Routes::Inline);
}

/// The same matcher sent as a generic RDS `RouteConfiguration`.
#[test]
fn generic_proxy_routes_from_generic_rds_route_dubbo_by_attachment_as_envoy_does() {
    dubbo_by_attachment(Filter::GenericProxy, Routes::Discovered);
}

/// The network filter of a Dubbo listener.
#[derive(Clone, Copy, PartialEq)]
enum Filter {
    DubboProxy,
    GenericProxy,
}

/// `generic_proxy` routes as a unified matcher: the demo service's
/// `sayHello` with the `batchJob: true` attachment to `batch`, anything
/// else to `users`.
fn generic_matcher() -> Value {
    let input = |name: &str, extra: Value| {
        let mut config = json!({ "@type": format!("type.googleapis.com/envoy.extensions.filters.network.generic_proxy.matcher.v3.{name}") });
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        json!({ "name": name, "typed_config": config })
    };
    let is = |input: Value, value: &str| json!({ "single_predicate": { "input": input, "value_match": { "exact": value } } });
    let to = |cluster: &str| {
        json!({ "action": { "name": "envoy.filters.generic_proxy.action", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.action.v3.RouteAction",
            "cluster": cluster
        }}})
    };
    json!({
        "matcher_list": { "matchers": [{
            "predicate": { "and_matcher": { "predicate": [
                is(input("ServiceMatchInput", json!({})), "org.apache.dubbo.samples.DemoService"),
                is(input("MethodMatchInput", json!({})), "sayHello"),
                is(input("PropertyMatchInput", json!({ "property_name": "batchJob" })), "true"),
            ]}},
            "on_match": to("batch")
        }]},
        "on_no_match": to("users")
    })
}

fn generic_listener(routes: Routes) -> Value {
    let mut proxy = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.v3.GenericProxy",
        "stat_prefix": "generic",
        "codec_config": { "name": "envoy.generic_proxy.codecs.dubbo", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.codecs.dubbo.v3.DubboCodecConfig" } },
        "filters": [{ "name": "envoy.filters.generic.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.router.v3.Router" } }]
    });
    match routes {
        Routes::Inline => {
            proxy["route_config"] = json!({ "name": "generic-routes", "routes": generic_matcher() })
        }
        Routes::Discovered => {
            proxy["generic_rds"] =
                json!({ "config_source": ads(), "route_config_name": "generic-routes" })
        }
    }
    json!({
        "name": "xds-dubbo",
        "address": socket(0),
        "filter_chains": [{ "filters": [{ "name": "envoy.filters.network.generic_proxy", "typed_config": proxy }] }]
    })
}

fn dubbo_by_attachment(filter: Filter, routes: Routes) {
    let (users, batch) = (
        common::DubboProvider::start("users"),
        common::DubboProvider::start("batch"),
    );
    let s = common::dead_address();
    let mut cp = ControlPlane::start(None);
    let (test, envoy_node) = match (filter, routes) {
        (Filter::DubboProxy, Routes::Inline) => ("xds-dubbo", "envoy-dubbo"),
        (Filter::DubboProxy, Routes::Discovered) => ("xds-drds", "envoy-drds"),
        (Filter::GenericProxy, Routes::Inline) => ("xds-generic", "envoy-generic"),
        (Filter::GenericProxy, Routes::Discovered) => ("xds-generic-rds", "envoy-generic-rds"),
    };
    let proxy = proxy_with(test, cp.grpc, &s);
    let envoy = Envoy::start(envoy_node, cp.grpc);
    let port = |p: &common::DubboProvider| -> u16 {
        p.address().rsplit(':').next().unwrap().parse().unwrap()
    };
    let listener = match filter {
        Filter::DubboProxy => dubbo_listener(routes),
        Filter::GenericProxy => generic_listener(routes),
    };
    let mut resources = json!({
        "listeners": [listener],
        "clusters": [static_cluster("users", port(&users)), static_cluster("batch", port(&batch))],
    });
    let discovered = match (filter, routes) {
        (_, Routes::Inline) => None,
        (Filter::DubboProxy, Routes::Discovered) => {
            resources["dubbo_routes"] =
                json!([{ "name": "dubbo-routes", "route_config": [dubbo_routes()] }]);
            Some("MultipleRouteConfiguration")
        }
        (Filter::GenericProxy, Routes::Discovered) => {
            resources["generic_routes"] =
                json!([{ "name": "generic-routes", "routes": generic_matcher() }]);
            Some("generic_proxy.v3.RouteConfiguration")
        }
    };
    for node in [NODE, envoy_node] {
        cp.snapshot_for(node, "v1", resources.clone());
        cp.wait_request_of(node, "Listener", "v1", false);
        if let Some(type_name) = discovered {
            cp.wait_request_of(node, type_name, "v1", false);
        }
    }
    let ours = proxy.bound("xds-dubbo");
    let theirs = envoy.listener("xds-dubbo");
    for (who, addr) in [("metaproxy", ours), ("envoy", theirs)] {
        let to_batch =
            common::dubbo_client(addr.port(), &["--count", "5", "--attach", "batchJob=true"]);
        assert_eq!(
            to_batch.results.get("Hello bob, from batch"),
            Some(&5),
            "{who}: {}",
            to_batch.raw
        );
        let to_users = common::dubbo_client(addr.port(), &["--count", "5"]);
        assert_eq!(
            to_users.results.get("Hello bob, from users"),
            Some(&5),
            "{who}: {}",
            to_users.raw
        );
    }
}

/// A `thrift_proxy` listener (framed, binary) taking its routes from TRDS.
fn thrift_listener() -> Value {
    json!({
        "name": "xds-thrift",
        "address": socket(0),
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.thrift_proxy",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.ThriftProxy",
                "stat_prefix": "thrift",
                "transport": "FRAMED",
                "protocol": "BINARY",
                "trds": { "config_source": ads(), "route_config_name": "thrift-routes" },
                "thrift_filters": [{
                    "name": "envoy.filters.thrift.router",
                    "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.router.v3.Router" }
                }]
            }
        }]}]
    })
}

/// TRDS routes: `hello` to `hello_to`, every other method (an empty
/// `method_name` matches any) to `thrift-b`.
fn thrift_routes(hello_to: &str) -> Value {
    json!({ "name": "thrift-routes", "routes": [
        { "match": { "method_name": "hello" }, "route": { "cluster": hello_to } },
        { "match": { "method_name": "" }, "route": { "cluster": "thrift-b" } }
    ]})
}

#[test]
fn thrift_routes_from_trds_route_by_method_follow_an_update_and_refuse_a_broken_one_as_envoy_does()
{
    let (a, b) = (
        thrift_peers::ThriftServer::start("framed", "binary", "a"),
        thrift_peers::ThriftServer::start("framed", "binary", "b"),
    );
    let mut cp = ControlPlane::start(None);
    let proxy = proxy_with("xds-trds", cp.grpc, &common::dead_address());
    let envoy = Envoy::start("envoy-trds", cp.grpc);
    let snapshot = |hello_to: &str| {
        json!({
            "listeners": [thrift_listener()],
            "clusters": [static_cluster("thrift-a", a.port), static_cluster("thrift-b", b.port)],
            "thrift_routes": [thrift_routes(hello_to)],
        })
    };
    const TRDS: &str = "thrift_proxy.v3.RouteConfiguration";
    for node in [NODE, "envoy-trds"] {
        cp.snapshot_for(node, "v1", snapshot("thrift-a"));
        cp.wait_request_of(node, TRDS, "v1", false);
    }
    let ours = proxy.bound("xds-thrift");
    let theirs = envoy.listener("xds-thrift");
    let hello = |port: u16| thrift_peers::client(port, &["--count", "5"]);
    let other = |port: u16| thrift_peers::client(port, &["--method", "header", "--arg", "k"]);
    for (who, addr) in [("metaproxy", ours), ("envoy", theirs)] {
        let h = hello(addr.port());
        assert_eq!(h.result("Hello bob, from a"), 5, "{who}: {}", h.raw);
        let o = other(addr.port());
        assert_eq!(o.ok, 1, "{who}: {}", o.raw);
    }
    assert!(
        b.wait_call("header", xds_peers::WAIT).is_some(),
        "the other method reached thrift-b"
    );
    // The route configuration changes on its own: hello moves to b.
    for node in [NODE, "envoy-trds"] {
        cp.snapshot_for(node, "v2", snapshot("thrift-b"));
        cp.wait_request_of(node, TRDS, "v2", false);
    }
    for (who, addr) in [("metaproxy", ours), ("envoy", theirs)] {
        let h = hello(addr.port());
        assert_eq!(h.result("Hello bob, from b"), 5, "{who}: {}", h.raw);
    }
    // A route without a cluster: both refuse it, keep v2 and keep routing.
    let mut broken = snapshot("thrift-b");
    broken["thrift_routes"][0]["routes"][0]["route"] = json!({});
    for node in [NODE, "envoy-trds"] {
        cp.snapshot_for(node, "v3", broken.clone());
        let nack = cp.wait_request_of(node, TRDS, "", true);
        assert_eq!(nack["version"], "v2", "{node}: {nack}");
    }
    for (who, addr) in [("metaproxy", ours), ("envoy", theirs)] {
        let h = hello(addr.port());
        assert_eq!(h.result("Hello bob, from b"), 5, "{who}: {}", h.raw);
    }
    let (_, dump) = proxy.admin("GET", "/config_dump");
    let d: Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(d["xds"]["types"]["trds"]["version"], "v2", "{dump}");
    assert_eq!(d["xds"]["types"]["trds"]["rejected"], 1, "{dump}");
}
