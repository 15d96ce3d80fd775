//! Translation and composition in process: Envoy resources (written as
//! Envoy's own JSON would be, then as prost messages) become a config the
//! core builds, or a refusal naming the resource and field.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiConfigSource, ConfigSource, Metadata, PathConfigSource,
    SocketAddress, address, config_source, socket_address,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster, route,
    route_action, route_match, weighted_cluster,
};
use envoy_types::pb::envoy::extensions::filters::network::dubbo_proxy::v3 as dubbo;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::thrift_proxy::v3 as thrift;
use envoy_types::pb::google::protobuf::{Any, Struct, UInt32Value, Value as PbValue, value};
use metaproxy_core::config::parse_str;
use metaproxy_core::snapshot::Snapshot;
use prost::{Message, Name};
use serde_json::json;

use super::compose::{Resources, compose};
use super::kind::Kind;

fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

fn address(port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: "127.0.0.1".into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

fn ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource::default(),
        )),
        ..Default::default()
    }
}

fn listener(name: &str, network: Any) -> Listener {
    Listener {
        name: name.into(),
        address: Some(address(0)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "network".into(),
                config_type: Some(filter::ConfigType::TypedConfig(network)),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn hcm(rds: &str) -> Any {
    any(&HttpConnectionManager {
        stat_prefix: "in".into(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: rds.into(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(Any {
                type_url: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                    .into(),
                value: Vec::new(),
            })),
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn labels(pairs: &[(&str, &str)]) -> Metadata {
    let fields = pairs
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                PbValue {
                    kind: Some(value::Kind::StringValue(v.to_string())),
                },
            )
        })
        .collect();
    Metadata {
        filter_metadata: HashMap::from([("envoy.lb".to_string(), Struct { fields })]),
        ..Default::default()
    }
}

fn route_to(
    prefix: &str,
    action: route_action::ClusterSpecifier,
    subset: Option<Metadata>,
) -> Route {
    Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix(prefix.into())),
            ..Default::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(action),
            metadata_match: subset,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn route_config(name: &str, routes: Vec<Route>) -> RouteConfiguration {
    RouteConfiguration {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn eds_cluster(name: &str) -> Cluster {
    Cluster {
        name: name.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(3)),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: String::new(),
        }),
        ..Default::default()
    }
}

fn base() -> serde_json::Value {
    json!({ "xds": { "server": "127.0.0.1:1", "node_id": "n" }, "listeners": [], "clusters": [] })
}

/// The composed config, built by the core as the proxy would.
fn build(res: &Resources) -> Snapshot {
    let composed = compose(&base(), res).unwrap();
    let loaded =
        parse_str(&composed.text, "composed").unwrap_or_else(|e| panic!("{e}\n{}", composed.text));
    Snapshot::build(&loaded, &crate::default_registry())
        .unwrap_or_else(|e| panic!("{e}\n{}", composed.text))
}

fn resources(
    listeners: Vec<Listener>,
    routes: Vec<RouteConfiguration>,
    clusters: Vec<Cluster>,
) -> Resources {
    Resources {
        listeners: listeners.into_iter().map(|l| (l.name.clone(), l)).collect(),
        routes: routes.into_iter().map(|r| (r.name.clone(), r)).collect(),
        clusters: clusters.into_iter().map(|c| (c.name.clone(), c)).collect(),
        ..Default::default()
    }
}

#[test]
fn an_http_listener_with_rds_routes_and_subsets_builds() {
    let rc = route_config(
        "r1",
        vec![
            route_to(
                "/v2",
                route_action::ClusterSpecifier::Cluster("svc".into()),
                Some(labels(&[("version", "v2")])),
            ),
            route_to(
                "/",
                route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
                    clusters: vec![
                        weighted_cluster::ClusterWeight {
                            name: "svc".into(),
                            weight: Some(UInt32Value { value: 90 }),
                            ..Default::default()
                        },
                        weighted_cluster::ClusterWeight {
                            name: "other".into(),
                            weight: Some(UInt32Value { value: 10 }),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }),
                None,
            ),
        ],
    );
    let res = resources(
        vec![listener("gw", hcm("r1"))],
        vec![rc],
        vec![eds_cluster("svc")],
    );
    let snapshot = build(&res);
    let l = snapshot.listener("gw").expect("the listener");
    assert_eq!(l.protocol, "http");
    let svc = &snapshot.clusters["svc"];
    assert_eq!(&*svc.parts.protocol, "http1");
    assert!(
        svc.subset_index("version=v2").is_some(),
        "the route's selector is a subset"
    );
    // `other` was never sent: a cluster without endpoints stands in.
    assert!(snapshot.clusters["other"].endpoints().all().is_empty());
    let composed = compose(&base(), &res).unwrap();
    assert_eq!(
        composed.names(Kind::Endpoint).iter().collect::<Vec<_>>(),
        ["svc"]
    );
    assert_eq!(
        composed.names(Kind::Route).iter().collect::<Vec<_>>(),
        ["r1"]
    );
}

#[test]
fn a_listener_waits_for_its_route_configuration() {
    let res = resources(vec![listener("gw", hcm("later"))], vec![], vec![]);
    let composed = compose(&base(), &res).unwrap();
    assert_eq!(composed.pending, ["gw"]);
    assert!(build(&res).listener("gw").is_none());
}

#[test]
fn a_field_the_proxy_cannot_honour_is_refused_by_name() {
    let mut l = listener("gw", hcm("r1"));
    l.per_connection_buffer_limit_bytes = Some(UInt32Value { value: 1 });
    let e = compose(&base(), &resources(vec![l], vec![], vec![])).unwrap_err();
    assert_eq!((e.kind, e.name.as_str()), (Kind::Listener, "gw"));
    assert!(
        e.message.contains("per_connection_buffer_limit_bytes"),
        "{e}"
    );

    let mut c = eds_cluster("svc");
    c.lb_policy = 7; // LOAD_BALANCING_POLICY_CONFIG
    let rc = route_config(
        "r1",
        vec![route_to(
            "/",
            route_action::ClusterSpecifier::Cluster("svc".into()),
            None,
        )],
    );
    let e = compose(
        &base(),
        &resources(vec![listener("gw", hcm("r1"))], vec![rc], vec![c]),
    )
    .unwrap_err();
    assert_eq!((e.kind, e.name.as_str()), (Kind::Cluster, "svc"));
    assert!(e.message.contains("lb_policy 7"), "{e}");
}

#[test]
fn a_build_error_maps_back_to_its_resource() {
    let rc = route_config(
        "r1",
        vec![route_to(
            "/",
            route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
                clusters: vec![weighted_cluster::ClusterWeight {
                    name: "svc".into(),
                    weight: Some(UInt32Value { value: 0 }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            None,
        )],
    );
    let res = resources(
        vec![listener("gw", hcm("r1"))],
        vec![rc],
        vec![eds_cluster("svc")],
    );
    let composed = compose(&base(), &res).unwrap();
    let loaded = parse_str(&composed.text, "composed").unwrap();
    let errors = Snapshot::build(&loaded, &crate::default_registry()).unwrap_err();
    let e = &errors.0[0];
    assert!(e.message.contains("add up to 0"), "{e}");
    assert_eq!(
        composed.resource_at(e.line as usize),
        Some((Kind::Listener, "gw"))
    );
}

/// Thrift routes sending method `ping` to cluster `calc`.
fn thrift_routes(name: &str) -> thrift::RouteConfiguration {
    thrift::RouteConfiguration {
        name: name.into(),
        routes: vec![thrift::Route {
            r#match: Some(thrift::RouteMatch {
                match_specifier: Some(thrift::route_match::MatchSpecifier::MethodName(
                    "ping".into(),
                )),
                ..Default::default()
            }),
            route: Some(thrift::RouteAction {
                cluster_specifier: Some(thrift::route_action::ClusterSpecifier::Cluster(
                    "calc".into(),
                )),
                ..Default::default()
            }),
        }],
        ..Default::default()
    }
}

#[test]
fn a_thrift_proxy_listener_and_its_cluster_speak_thrift() {
    let t = thrift::ThriftProxy {
        transport: 1, // FRAMED
        protocol: 1,  // BINARY
        stat_prefix: "t".into(),
        route_config: Some(thrift_routes("t")),
        ..Default::default()
    };
    let res = resources(
        vec![listener("rpc", any(&t))],
        vec![],
        vec![eds_cluster("calc")],
    );
    let snapshot = build(&res);
    assert_eq!(snapshot.listener("rpc").unwrap().protocol, "thrift");
    assert_eq!(&*snapshot.clusters["calc"].parts.protocol, "thrift");
}

#[test]
fn a_thrift_listener_takes_its_routes_from_trds_and_a_dubbo_one_from_drds() {
    let t = thrift::ThriftProxy {
        stat_prefix: "t".into(),
        trds: Some(thrift::Trds {
            config_source: Some(ads()),
            route_config_name: "thrift-routes".into(),
        }),
        ..Default::default()
    };
    let d = dubbo::DubboProxy {
        stat_prefix: "d".into(),
        route_specifier: Some(dubbo::dubbo_proxy::RouteSpecifier::Drds(dubbo::Drds {
            config_source: Some(ads()),
            route_config_name: "dubbo-routes".into(),
        })),
        ..Default::default()
    };
    let mut res = resources(
        vec![listener("rpc", any(&t)), listener("dub", any(&d))],
        vec![],
        vec![eds_cluster("calc"), eds_cluster("users")],
    );
    // Both wait for their route configurations, which are asked for.
    let composed = compose(&base(), &res).unwrap();
    assert_eq!(composed.pending, ["dub", "rpc"]);
    let subs = composed.subscriptions();
    assert!(subs.contains(&(Kind::ThriftRoute, ["thrift-routes".to_string()].into())));
    assert!(subs.contains(&(Kind::DubboRoute, ["dubbo-routes".to_string()].into())));
    // Once sent, they route.
    res.thrift_routes
        .insert("thrift-routes".into(), thrift_routes("thrift-routes"));
    res.dubbo_routes.insert(
        "dubbo-routes".into(),
        dubbo::MultipleRouteConfiguration {
            name: "dubbo-routes".into(),
            route_config: vec![dubbo::RouteConfiguration {
                interface: "org.apache.dubbo.samples.UserService".into(),
                routes: vec![dubbo::Route {
                    r#match: Some(dubbo::RouteMatch::default()),
                    route: Some(dubbo::RouteAction {
                        cluster_specifier: Some(dubbo::route_action::ClusterSpecifier::Cluster(
                            "users".into(),
                        )),
                        ..Default::default()
                    }),
                }],
                ..Default::default()
            }],
        },
    );
    let snapshot = build(&res);
    assert_eq!(snapshot.listener("rpc").unwrap().protocol, "thrift");
    assert_eq!(snapshot.listener("dub").unwrap().protocol, "dubbo");
    assert_eq!(&*snapshot.clusters["users"].parts.protocol, "dubbo");
    // A route to a cluster routed to by two protocols names its TRDS
    // resource.
    res.thrift_routes.insert("thrift-routes".into(), {
        let mut rc = thrift_routes("thrift-routes");
        rc.routes[0].route.as_mut().unwrap().cluster_specifier = Some(
            thrift::route_action::ClusterSpecifier::Cluster("users".into()),
        );
        rc
    });
    let e = compose(&base(), &res).unwrap_err();
    assert_eq!(e.kind, Kind::Cluster, "{e}");
}

#[test]
fn a_config_source_must_name_the_control_plane() {
    let rc = route_config(
        "r1",
        vec![route_to(
            "/",
            route_action::ClusterSpecifier::Cluster("svc".into()),
            None,
        )],
    );
    // A REST `api_config_source` (sovereign's templates) means this proxy's
    // control plane, as `ads` does.
    let rest = ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::ApiConfigSource(
            ApiConfigSource {
                api_type: 1, // REST
                cluster_names: vec!["xds".into()],
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let mut c = eds_cluster("svc");
    c.eds_cluster_config.as_mut().unwrap().eds_config = Some(rest);
    let res = resources(vec![listener("gw", hcm("r1"))], vec![rc.clone()], vec![c]);
    build(&res);
    // A file is not the control plane.
    let file = ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::PathConfigSource(
            PathConfigSource {
                path: "/etc/eds.yaml".into(),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let mut c = eds_cluster("svc");
    c.eds_cluster_config.as_mut().unwrap().eds_config = Some(file);
    let e = compose(
        &base(),
        &resources(vec![listener("gw", hcm("r1"))], vec![rc], vec![c]),
    )
    .unwrap_err();
    assert_eq!((e.kind, e.name.as_str()), (Kind::Cluster, "svc"));
    assert!(e.message.contains("eds_config"), "{e}");
}

/// A message written as Envoy's JSON.
fn from_json<M: Message + Default>(name: &'static str, v: serde_json::Value) -> M {
    super::json::message_from_json(name, v.to_string().as_bytes()).unwrap()
}

fn generic_input(name: &str) -> serde_json::Value {
    json!({ "name": name, "typed_config": {
        "@type": format!("type.googleapis.com/envoy.extensions.filters.network.generic_proxy.matcher.v3.{name}")
    }})
}

const DUBBO_CODEC: &str = "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.codecs.dubbo.v3.DubboCodecConfig";

fn generic_router() -> serde_json::Value {
    json!([{ "name": "router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.router.v3.Router" } }])
}

/// A `generic_proxy` listener `gen`: its codec, filters and routes (a
/// `route_config` or `generic_rds` field).
fn generic_listener(
    codec: &str,
    filters: serde_json::Value,
    routes: serde_json::Value,
) -> Listener {
    let mut proxy = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.v3.GenericProxy",
        "stat_prefix": "g",
        "codec_config": { "name": "codec", "typed_config": { "@type": codec } },
        "filters": filters,
    });
    if let (Some(p), Some(r)) = (proxy.as_object_mut(), routes.as_object()) {
        p.extend(r.clone());
    }
    from_json(
        "envoy.config.listener.v3.Listener",
        json!({
            "name": "gen",
            "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } },
            "filter_chains": [{ "filters": [{ "name": "generic", "typed_config": proxy }] }]
        }),
    )
}

fn generic_action(cluster: &str) -> serde_json::Value {
    json!({ "action": { "name": "route", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.action.v3.RouteAction",
        "cluster": cluster
    }}})
}

#[test]
fn a_generic_proxy_matcher_becomes_first_match_routes() {
    let property = json!({ "name": "p", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.matcher.v3.PropertyMatchInput",
        "property_name": "batchJob"
    }});
    let single = |input: serde_json::Value, exact: &str| json!({ "single_predicate": { "input": input, "value_match": { "exact": exact } } });
    let routes = json!({
        "matcher_list": { "matchers": [
            // Service and method and batchJob: the batch cluster.
            { "predicate": { "and_matcher": { "predicate": [
                single(generic_input("ServiceMatchInput"), "org.apache.dubbo.samples.DemoService"),
                single(generic_input("MethodMatchInput"), "sayHello"),
                single(property.clone(), "true"),
            ]}}, "on_match": generic_action("batch") },
            // Not (sayBye or batchJob=false): a nested tree on the method.
            { "predicate": { "not_matcher": { "or_matcher": { "predicate": [
                single(generic_input("MethodMatchInput"), "sayBye"),
                single(property, "false"),
            ]}}}, "on_match": { "matcher": {
                "matcher_tree": {
                    "input": generic_input("MethodMatchInput"),
                    "exact_match_map": { "map": { "ping": generic_action("pings") } }
                }
            }}}
        ]},
        "on_no_match": generic_action("users")
    });
    let listener = generic_listener(
        DUBBO_CODEC,
        generic_router(),
        json!({ "route_config": { "name": "gen-routes", "routes": routes } }),
    );
    let clusters = ["batch", "pings", "users"].map(eds_cluster).to_vec();
    let res = resources(vec![listener], vec![], clusters);
    let snapshot = build(&res);
    assert_eq!(snapshot.listener("gen").unwrap().protocol, "dubbo");
    assert_eq!(&*snapshot.clusters["pings"].parts.protocol, "dubbo");
    let composed = compose(&base(), &res).unwrap();
    let config: serde_json::Value = serde_json::from_str(&composed.text).unwrap();
    let got: Vec<(serde_json::Value, serde_json::Value)> = config["listeners"][0]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["match"].clone(), r["route"]["cluster"].clone()))
        .collect();
    let want = vec![
        (
            json!([
                { "key": "interface", "exact": "org.apache.dubbo.samples.DemoService" },
                { "key": "method", "exact": "sayHello" },
                { "key": "batchJob", "exact": "true" }
            ]),
            json!("batch"),
        ),
        // not(a or b) = not a and not b; then the nested tree's key.
        (
            json!([
                { "key": "method", "exact": "sayBye", "invert": true },
                { "key": "batchJob", "exact": "false", "invert": true },
                { "key": "method", "exact": "ping" }
            ]),
            json!("pings"),
        ),
        (json!([]), json!("users")),
    ];
    assert_eq!(got, want);
}

#[test]
fn a_generic_proxy_with_another_codec_or_filter_is_refused_by_name() {
    let listener = |codec: &str, filters: serde_json::Value| {
        let rds = json!({ "config_source": { "ads": {} }, "route_config_name": "r" });
        generic_listener(codec, filters, json!({ "generic_rds": rds }))
    };
    let router = generic_router();
    let http1 = "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.codecs.http1.v3.Http1CodecConfig";
    let e = compose(
        &base(),
        &resources(vec![listener(http1, router)], vec![], vec![]),
    )
    .unwrap_err();
    assert!(e.message.contains("Http1CodecConfig"), "{e}");
    let dubbo = DUBBO_CODEC;
    let e = compose(
        &base(),
        &resources(vec![listener(dubbo, json!([]))], vec![], vec![]),
    )
    .unwrap_err();
    assert!(e.message.contains("router alone"), "{e}");
    // With the Dubbo codec and the router, it waits for its generic RDS.
    let composed = compose(
        &base(),
        &resources(vec![listener(dubbo, generic_router())], vec![], vec![]),
    )
    .unwrap();
    assert_eq!(composed.pending, ["gen"]);
    assert!(
        composed
            .subscriptions()
            .contains(&(Kind::GenericRoute, ["r".to_string()].into()))
    );
}
