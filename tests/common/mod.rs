//! Shared helpers for the end-to-end tests: run the real `metaproxy` binary
//! and third-party peers as child processes, all on ephemeral ports.
#![allow(dead_code)]

pub mod dubbo_wire;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a child gets to print its first line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A unique scratch directory for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "metaproxy-test-{}-{}-{}",
        std::process::id(),
        name,
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Writes `text` to a fresh file and returns its path.
pub fn write_config(name: &str, text: &str) -> PathBuf {
    let path = scratch_dir(name).join("config.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The Python of the venv in `dir` (relative to the repository), made from
/// its requirements.txt when `check` (a Python statement) fails in it.
pub fn python_venv(dir: &str, check: &str) -> PathBuf {
    let dir = repo_root().join(dir);
    let py = dir.join(".venv/bin/python");
    let ready = Command::new(&py)
        .args(["-c", check])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(dir.join(".venv"))
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&py)
                .args(["-m", "pip", "install", "-q", "-r"])
                .arg(dir.join("requirements.txt"))
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "could not install {}/requirements.txt", dir.display());
    }
    py
}

/// Lines a child printed, collected by a background reader so its pipe never fills.
pub struct Lines {
    rx: Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Lines {
    /// Collects the lines `reader` yields, on a background thread.
    pub fn spawn(reader: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                keep.lock().unwrap().push(line.clone());
                // Nobody may listen any more; keep draining so the child never blocks.
                let _ = tx.send(line);
            }
        });
        Self { rx, seen }
    }

    /// The next line, waiting up to `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<String> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Waits for a line for which `pred` holds.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.next(left)?;
            if pred(&line) {
                return Some(line);
            }
        }
    }

    /// Everything printed so far.
    pub fn all(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts a test peer that prints one JSON line first (its port, say):
/// the running child, its later stdout lines, and that first line.
pub fn spawn_peer(cmd: &mut Command, what: &str) -> (ChildGuard, Lines, serde_json::Value) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let lines = Lines::spawn(child.stdout.take().unwrap());
    let first = lines
        .next(START_TIMEOUT)
        .unwrap_or_else(|| panic!("{what} did not start"));
    let v = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{what}: {first}: {e}"));
    (ChildGuard(child), lines, v)
}

/// A child process killed when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `metaproxy run` process.
pub struct Proxy {
    pub child: ChildGuard,
    pub listeners: HashMap<String, SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Proxy {
    /// Starts the binary with `config` text and waits until every listener is bound.
    pub fn start(test: &str, config: &str) -> Proxy {
        let path = write_config(test, config);
        Self::start_file(&path, &[])
    }

    /// Starts the binary on a config file with extra arguments.
    pub fn start_file(path: &Path, extra: &[&str]) -> Proxy {
        let mut child = Command::new(env!("CARGO_BIN_EXE_metaproxy"))
            .args(["run", "-c"])
            .arg(path)
            .args(["--log", "info,metaproxy_core=debug"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn metaproxy");
        let stdout = Lines::spawn(child.stdout.take().unwrap());
        let stderr = Lines::spawn(child.stderr.take().unwrap());
        let child = ChildGuard(child);
        let mut listeners = HashMap::new();
        let mut admin = None;
        loop {
            let Some(line) = stdout.next(START_TIMEOUT) else {
                panic!(
                    "metaproxy did not start; stderr:\n{}",
                    stderr.all().join("\n")
                );
            };
            if line == "ready" {
                break;
            }
            if let Some(a) = line.strip_prefix("admin address=") {
                admin = a.parse().ok();
            }
            if let Some(rest) = line.strip_prefix("listening ") {
                let mut name = None;
                let mut addr = None;
                for kv in rest.split(' ') {
                    match kv.split_once('=') {
                        Some(("name", v)) => name = Some(v.to_string()),
                        Some(("address", v)) => addr = v.parse().ok(),
                        _ => {}
                    }
                }
                listeners.insert(name.unwrap(), addr.unwrap());
            }
        }
        Proxy {
            child,
            listeners,
            admin,
            stdout,
            stderr,
        }
    }

    /// The bound address of listener `name`.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.listeners[name]
    }

    /// The address listener `name` is bound to, once the proxy has it (a
    /// listener that came later than the start, e.g. from a control plane),
    /// as the admin endpoint's `/listeners` shows it.
    pub fn bound(&self, name: &str) -> SocketAddr {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (_, body) = self.admin("GET", "/listeners");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if let Some(l) = v["listeners"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["name"] == name)
            {
                return l["address"].as_str().unwrap().parse().unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "listener {name} never bound: {body}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The proxy's stderr so far (logs), for failure messages.
    pub fn logs(&self) -> String {
        self.stderr.all().join("\n")
    }

    /// `METHOD path` on the admin endpoint: (status, body).
    pub fn admin(&self, method: &str, path: &str) -> (u16, String) {
        http_call(self.admin.expect("admin endpoint configured"), method, path)
    }

    /// Cluster `name` as `/clusters` shows it: its endpoint addresses,
    /// sorted, and its `discovery` status (null without a source).
    pub fn cluster(&self, name: &str) -> (Vec<String>, serde_json::Value) {
        let (status, body) = self.admin("GET", "/clusters");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let c = v["clusters"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("no cluster {name} in {body}"))
            .clone();
        let mut addrs: Vec<String> = c["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["address"].as_str().unwrap().to_string())
            .collect();
        addrs.sort();
        (addrs, c["discovery"].clone())
    }

    /// The value of the first `/metrics` line starting with `prefix`
    /// (0 when there is none).
    pub fn metric(&self, prefix: &str) -> f64 {
        let (_, text) = self.admin("GET", "/metrics");
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits (up to 5 s) until the metric `prefix` reaches `at_least`, for
    /// counters bumped just after what the test saw; returns the value.
    pub fn wait_metric(&self, prefix: &str, at_least: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = self.metric(prefix);
            if v >= at_least || Instant::now() >= deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`TERM`, `HUP`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.0.try_wait().unwrap().is_none()
    }
}

/// Runs `metaproxy validate -c FILE`: (success, stdout, stderr).
pub fn validate(path: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_metaproxy"))
        .args(["validate", "-c"])
        .arg(path)
        .output()
        .expect("run metaproxy validate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Dubbo peers' folder, installed from its lock file on first use
/// (`npm ci`; .ci/run does it up front).
pub fn dubbo_peers() -> PathBuf {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let dir = repo_root().join("tests/peers/dubbo");
    INSTALL.call_once(|| {
        if !dir.join("node_modules/sofa-rpc-node").exists() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .status()
                .expect("npm is needed for the Dubbo test peers");
            assert!(status.success(), "npm ci --prefix tests/peers/dubbo failed");
        }
    });
    dir
}

/// A sofa-rpc-node Dubbo provider (third-party implementation).
pub struct DubboProvider {
    pub child: ChildGuard,
    pub port: u16,
    pub calls: Lines,
    pub tag: String,
}

impl DubboProvider {
    /// Starts a provider answering `Hello <name>, from <tag>`.
    pub fn start(tag: &str) -> DubboProvider {
        Self::start_with(tag, &[])
    }

    /// [`DubboProvider::start`] that also registers itself in ZooKeeper at
    /// `zk` (sofa-rpc-node's own registry client, Dubbo layout under
    /// `/dubbo`) in Dubbo group `group`; returns once its node is readable.
    pub fn start_registered(tag: &str, zk: &str, group: &str) -> DubboProvider {
        Self::start_with(tag, &["--zk", zk, "--group", group])
    }

    fn start_with(tag: &str, extra: &[&str]) -> DubboProvider {
        let dir = dubbo_peers();
        let mut child = Command::new("node")
            .arg(dir.join("provider.js"))
            .args(["--tag", tag, "--port", "0"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node provider (is node installed?)");
        let calls = Lines::spawn(child.stdout.take().unwrap());
        let child = ChildGuard(child);
        let first = calls.next(START_TIMEOUT).expect("provider printed nothing");
        let v: serde_json::Value = serde_json::from_str(&first).expect("provider's first line");
        assert_eq!(v["event"], "listening", "{first}");
        let port = v["port"].as_u64().unwrap() as u16;
        DubboProvider {
            child,
            port,
            calls,
            tag: tag.to_string(),
        }
    }

    /// A raw Dubbo endpoint answering every call with `status` and `message`
    /// (hessian.js-encoded; heartbeats answered normally).
    pub fn start_failing(status: u8, message: &str) -> DubboProvider {
        let dir = dubbo_peers();
        let mut child = Command::new("node")
            .arg(dir.join("fake_error_server.js"))
            .args([
                "--port",
                "0",
                "--status",
                &status.to_string(),
                "--message",
                message,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node fake_error_server");
        let calls = Lines::spawn(child.stdout.take().unwrap());
        let child = ChildGuard(child);
        let first = calls
            .next(START_TIMEOUT)
            .expect("fake server printed nothing");
        let v: serde_json::Value = serde_json::from_str(&first).expect("first line");
        let port = v["port"].as_u64().unwrap() as u16;
        DubboProvider {
            child,
            port,
            calls,
            tag: format!("failing-{status}"),
        }
    }

    /// Stops the provider (its port then refuses connections).
    pub fn stop(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits for the next call line whose method is `method`.
    pub fn wait_call(&self, method: &str, timeout: Duration) -> Option<serde_json::Value> {
        self.calls
            .wait_for(timeout, |l| l.contains(&format!("\"method\":\"{method}\"")))
            .map(|l| serde_json::from_str(&l).unwrap())
    }
}

/// A summary printed by `client.js`.
#[derive(Debug)]
pub struct ClientSummary {
    pub ok: u64,
    pub errors: u64,
    pub results: HashMap<String, u64>,
    pub error_messages: HashMap<String, u64>,
    pub raw: String,
}

impl ClientSummary {
    /// The summary a Dubbo client peer printed as JSON (`v`, from `line`):
    /// `ok`, `errors`, `results` and `errorMessages` counts.
    pub fn of(v: &serde_json::Value, line: String) -> ClientSummary {
        let map = |k: &str| -> HashMap<String, u64> {
            v[k].as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default()
        };
        ClientSummary {
            ok: v["ok"].as_u64().unwrap_or(0),
            errors: v["errors"].as_u64().unwrap_or(0),
            results: map("results"),
            error_messages: map("errorMessages"),
            raw: line,
        }
    }
}

/// Runs the sofa-rpc-node Dubbo client against `port` with extra arguments.
pub fn dubbo_client(port: u16, args: &[&str]) -> ClientSummary {
    run_dubbo_client(&["--port", &port.to_string()], args)
}

/// Runs the sofa-rpc-node Dubbo client on the providers it reads from the
/// ZooKeeper registry at `zk` (its own registry client), with extra arguments.
pub fn dubbo_client_via_registry(zk: &str, args: &[&str]) -> ClientSummary {
    run_dubbo_client(&["--port", "0", "--zk", zk], args)
}

fn run_dubbo_client(target: &[&str], args: &[&str]) -> ClientSummary {
    let dir = dubbo_peers();
    let out = Command::new("node")
        .arg(dir.join("client.js"))
        .args(target)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run node client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = stdout.lines().last().unwrap_or("").to_string();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!(
            "client output is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    ClientSummary::of(&v, line)
}

/// Reads the example config and points its endpoints and listeners at test addresses.
pub fn example_config(relative: &str, replacements: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(repo_root().join(relative)).expect("read example");
    for (from, to) in replacements {
        assert!(text.contains(from), "{relative} has no `{from}`");
        text = text.replace(from, to);
    }
    text
}

/// Writes to a child's stdin (keeps the provider's stdin pipe open while alive).
pub fn poke(child: &mut Child, text: &str) {
    if let Some(stdin) = child.stdin.as_mut() {
        let _ = stdin.write_all(text.as_bytes());
    }
}

/// An address nothing listens on.
pub fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A tiny HTTP/1.0 call over std TCP (admin endpoint tests): (status, body).
pub fn http_call(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: admin\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
