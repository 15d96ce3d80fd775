//! An independent control plane over Envoy's REST-JSON transport: the
//! release binary polls sovereign (PyPI, `tests/peers/sovereign/`, set up by
//! `.ci/run`), which renders listeners, routes, clusters and endpoints from
//! a data file this test rewrites. A weighted split moves 0 → 50 → 100 and
//! an endpoint is added and removed while a client keeps sending: every
//! request is answered.

mod common;
#[path = "common/http.rs"]
mod http_peers;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{ChildGuard, Lines, Proxy, START_TIMEOUT, repo_root};
use http_peers::Backend;
use serde_json::{Value, json};

/// How long a change may take to show: sovereign re-reads its data file
/// every second, the proxy polls every 50 ms.
const WAIT: Duration = Duration::from_secs(20);

/// sovereign, serving what `data` says.
struct Sovereign {
    _child: ChildGuard,
    _lines: Lines,
    data: PathBuf,
    port: u16,
}

impl Sovereign {
    fn start(data: &Path) -> Sovereign {
        let dir = repo_root().join("tests/peers/sovereign");
        let python = dir.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: .ci/run installs tests/peers/sovereign/requirements.txt",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(dir.join("serve.py"))
            .arg(data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sovereign");
        let lines = Lines::spawn(child.stdout.take().unwrap());
        let first = lines.next(START_TIMEOUT).expect("sovereign did not start");
        let v: Value = serde_json::from_str(&first).unwrap();
        Sovereign {
            _child: ChildGuard(child),
            _lines: lines,
            data: data.to_path_buf(),
            port: v["port"].as_u64().unwrap() as u16,
        }
    }

    /// Replaces the data file at once (sovereign reads it every second).
    fn serve(&self, clusters: Value) {
        write_data(&self.data, clusters);
    }
}

fn write_data(path: &Path, clusters: Value) {
    let tmp = path.with_extension("tmp");
    let data = json!({ "listener_port": 0, "clusters": clusters });
    std::fs::write(&tmp, data.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn cluster(name: &str, weight: u32, endpoints: &[&Backend]) -> Value {
    let endpoints: Vec<String> = endpoints.iter().map(|b| b.address()).collect();
    json!({ "name": name, "weight": weight, "endpoints": endpoints })
}

/// The backend that answered a GET of `/` on `addr` (its tag, the first
/// word of its body), or the status of a failed request (0: no HTTP
/// answer, with why).
fn ask(addr: SocketAddr) -> Result<String, (u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| (0, e.to_string()))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: sov\r\n\r\n")
        .map_err(|e| (0, e.to_string()))?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| (0, e.to_string()))?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    if status == 200 {
        Ok(body
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string())
    } else {
        Err((status, text))
    }
}

/// How many updates of `resource` (`rds`, `eds`, ...) the proxy accepted.
fn accepted(proxy: &Proxy, resource: &str) -> f64 {
    proxy.metric(&format!(
        "metaproxy_config_updates_total{{source=\"xds\",resource=\"{resource}\",result=\"accepted\"}}"
    ))
}

/// Replaces sovereign's data and waits until the proxy has accepted the
/// `resource` update it brings; a few requests then flush any routed
/// before it.
fn change(cp: &Sovereign, proxy: &Proxy, addr: SocketAddr, resource: &str, clusters: Value) {
    let before = accepted(proxy, resource);
    cp.serve(clusters);
    let deadline = Instant::now() + WAIT;
    while accepted(proxy, resource) <= before {
        assert!(
            Instant::now() < deadline,
            "the proxy never took the {resource} update\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..5 {
        let _ = ask(addr);
    }
}

/// How many of the requests sent through `addr` while `n` are sent from
/// here (the load client's too) each backend answered.
fn spread<const N: usize>(addr: SocketAddr, n: usize, backends: [&Backend; N]) -> [u64; N] {
    let before = backends.map(Backend::count);
    for _ in 0..n {
        let _ = ask(addr);
    }
    let mut out = [0; N];
    for (i, b) in backends.iter().enumerate() {
        out[i] = b.count() - before[i];
    }
    out
}

/// A client sending requests one after another until stopped: how many
/// were sent and which failed.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Vec<(u16, String)>>>,
}

impl Load {
    fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            let mut failed = Vec::new();
            while !s.load(Ordering::Relaxed) {
                if let Err(why) = ask(addr) {
                    failed.push(why);
                }
                n.fetch_add(1, Ordering::Relaxed);
            }
            failed
        });
        Load {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Stops it: (requests sent, statuses of the failed ones).
    fn finish(mut self) -> (u64, Vec<(u16, String)>) {
        self.stop.store(true, Ordering::Relaxed);
        let failed = self.thread.take().unwrap().join().unwrap();
        (self.sent.load(Ordering::Relaxed), failed)
    }
}

#[test]
fn sovereign_drives_a_weighted_split_and_endpoint_changes_without_a_failed_request() {
    let blue = Backend::start("blue");
    let (green_a, green_b) = (Backend::start("green-a"), Backend::start("green-b"));
    let static_backend = Backend::start("static");
    let data = common::scratch_dir("xds-sovereign").join("data.json");
    write_data(
        &data,
        json!([
            cluster("blue", 100, &[&blue]),
            cluster("green", 0, &[&green_a])
        ]),
    );
    let cp = Sovereign::start(&data);
    let config = common::example_config(
        "examples/xds/rest.yaml",
        &[
            ("127.0.0.1:18001", format!("127.0.0.1:{}", cp.port)),
            ("refresh_delay: 1s", "refresh_delay: 50ms".into()),
            ("127.0.0.1:9901", "127.0.0.1:0".into()),
            ("127.0.0.1:8080", "127.0.0.1:0".into()),
            ("127.0.0.1:8081", static_backend.address()),
        ],
    );
    let proxy = Proxy::start("xds-sovereign", &config);
    let addr = proxy.bound("sov-http");
    // The listener is there; its cluster's endpoints come a poll later.
    let deadline = Instant::now() + WAIT;
    while ask(addr).is_err() {
        assert!(Instant::now() < deadline, "no answer\n{}", proxy.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let [b, g] = spread(addr, 20, [&blue, &green_a]);
    assert_eq!(
        (b, g),
        (20, 0),
        "blue takes everything at 100/0\n{}",
        proxy.logs()
    );

    let load = Load::start(addr);
    // The data: blue's and green's weights, green's endpoints; `resource`
    // is the type the change comes in.
    let serve = |resource: &str, blue_weight: u32, green_weight: u32, greens: &[&Backend]| {
        let clusters = json!([
            cluster("blue", blue_weight, &[&blue]),
            cluster("green", green_weight, greens)
        ]);
        change(&cp, &proxy, addr, resource, clusters);
    };
    // 0 → 50: green takes half the requests.
    serve("rds", 50, 50, &[&green_a]);
    let [b, g] = spread(addr, 300, [&blue, &green_a]);
    let half = g as f64 / (b + g) as f64;
    assert!(
        (0.40..=0.60).contains(&half),
        "green's share at 50/50: {b} blue, {g} green"
    );
    // → 100: green takes them all.
    serve("rds", 0, 100, &[&green_a]);
    let [b, g] = spread(addr, 100, [&blue, &green_a]);
    assert_eq!(b, 0, "blue at 0/100: {b} blue, {g} green");
    // An endpoint added to green (EDS), then the first one removed.
    serve("eds", 0, 100, &[&green_a, &green_b]);
    let [a, b] = spread(addr, 100, [&green_a, &green_b]);
    assert!(
        a > 0 && b > 0,
        "both of green's endpoints answer: {a} and {b}"
    );
    serve("eds", 0, 100, &[&green_b]);
    let [a, b] = spread(addr, 100, [&green_a, &green_b]);
    assert_eq!(a, 0, "the removed endpoint answers no more: {a} and {b}");

    let (sent, failed) = load.finish();
    assert!(sent >= 100, "the client sent only {sent} requests");
    assert!(
        failed.is_empty(),
        "{} of {sent} requests failed during the updates: {failed:?}\n{}",
        failed.len(),
        proxy.logs()
    );
    // The static listener serves beside the control plane's.
    assert_eq!(ask(proxy.addr("static-in")).ok().as_deref(), Some("static"));
    // What the proxy holds, with sovereign's versions, over REST.
    let (_, dump) = proxy.admin("GET", "/config_dump");
    let d: Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(d["xds"]["transport"], "rest", "{dump}");
    assert_eq!(d["xds"]["connected"], true, "{dump}");
    for t in ["lds", "rds", "cds", "eds"] {
        assert!(
            d["xds"]["types"][t]["accepted"].as_u64() >= Some(1),
            "{t}: {dump}"
        );
        assert_eq!(d["xds"]["types"][t]["rejected"], 0, "{t}: {dump}");
    }
    assert!(
        proxy.metric(
            "metaproxy_config_updates_total{source=\"xds\",resource=\"eds\",result=\"accepted\"}"
        ) >= 3.0,
        "{}",
        proxy.admin("GET", "/metrics").1
    );
}
