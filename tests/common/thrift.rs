//! Thrift test peers: Apache Thrift's Python library (`tests/peers/thrift`)
//! as servers and clients, run as child processes on ephemeral ports.
//!
//! Use from a test file with `mod common;` and
//! `#[path = "common/thrift.rs"] mod thrift_peers;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{ChildGuard, START_TIMEOUT, repo_root};

/// The peers' folder; its venv is created from requirements.txt on first use
/// (.ci/run does it up front).
pub fn peers_dir() -> PathBuf {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let dir = repo_root().join("tests/peers/thrift");
    INSTALL.call_once(|| {
        if dir.join(".venv/bin/python").exists() && python_has_thrift(&dir) {
            return;
        }
        let venv = dir.join(".venv");
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .expect("python3 is needed for the Thrift test peers")
            .success();
        assert!(ok, "python3 -m venv tests/peers/thrift/.venv failed");
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "-r"])
            .arg(dir.join("requirements.txt"))
            .status()
            .expect("run pip")
            .success();
        assert!(
            ok,
            "pip install -r tests/peers/thrift/requirements.txt failed"
        );
    });
    dir
}

fn python_has_thrift(dir: &std::path::Path) -> bool {
    Command::new(dir.join(".venv/bin/python"))
        .args(["-c", "import thrift"])
        .status()
        .is_ok_and(|s| s.success())
}

fn python() -> PathBuf {
    peers_dir().join(".venv/bin/python")
}

/// Lines a child prints, read by a background thread.
pub struct CallLog {
    rx: Mutex<Receiver<String>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl CallLog {
    fn spawn(reader: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Self {
            rx: Mutex::new(rx),
            seen,
        }
    }

    /// Waits for a line for which `pred` holds.
    pub fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let rx = self.rx.lock().unwrap();
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = rx.recv_timeout(left).ok()?;
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && pred(&v)
            {
                return Some(v);
            }
        }
    }

    /// Every line so far, parsed.
    pub fn all(&self) -> Vec<serde_json::Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many calls of `method` were logged so far.
    pub fn count(&self, method: &str) -> usize {
        self.all().iter().filter(|v| v["method"] == method).count()
    }
}

/// A Python Thrift server (`server.py`).
pub struct ThriftServer {
    pub child: ChildGuard,
    pub port: u16,
    pub calls: CallLog,
    pub tag: String,
}

impl ThriftServer {
    /// Starts a server: `transport` framed|buffered|header, `protocol` binary|compact.
    pub fn start(transport: &str, protocol: &str, tag: &str) -> ThriftServer {
        ThriftServer::start_with(transport, protocol, tag, &[])
    }

    /// [`ThriftServer::start`] with more arguments (`--tls-cert`, ...).
    pub fn start_with(transport: &str, protocol: &str, tag: &str, extra: &[&str]) -> ThriftServer {
        let mut child = Command::new(python())
            .arg(peers_dir().join("server.py"))
            .args([
                "--transport",
                transport,
                "--protocol",
                protocol,
                "--tag",
                tag,
                "--port",
                "0",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python thrift server");
        let calls = CallLog::spawn(child.stdout.take().unwrap());
        let child = ChildGuard(child);
        let first = calls
            .wait_for(START_TIMEOUT, |v| v["event"] == "listening")
            .expect("thrift server did not start");
        let port = first["port"].as_u64().unwrap() as u16;
        ThriftServer {
            child,
            port,
            calls,
            tag: tag.to_string(),
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits for the next call of `method`.
    pub fn wait_call(&self, method: &str, timeout: Duration) -> Option<serde_json::Value> {
        self.calls.wait_for(timeout, |v| v["method"] == method)
    }
}

/// The summary `client.py` prints.
#[derive(Debug)]
pub struct Summary {
    pub ok: u64,
    pub errors: u64,
    pub results: HashMap<String, u64>,
    pub error_messages: HashMap<String, u64>,
    /// TApplicationException types by number, `MyError`, or `transport`.
    pub exception_types: HashMap<String, u64>,
    pub raw: String,
}

impl Summary {
    /// The count of `result`.
    pub fn result(&self, result: &str) -> u64 {
        self.results.get(result).copied().unwrap_or(0)
    }

    /// The count of exceptions of `kind`.
    pub fn exceptions(&self, kind: &str) -> u64 {
        self.exception_types.get(kind).copied().unwrap_or(0)
    }

    /// Whether some error message contains `text`.
    pub fn has_message(&self, text: &str) -> bool {
        self.error_messages.keys().any(|m| m.contains(text))
    }
}

/// Runs `client.py --port PORT` with `args`.
pub fn client(port: u16, args: &[&str]) -> Summary {
    let out = Command::new(python())
        .arg(peers_dir().join("client.py"))
        .args(["--port", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python thrift client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = stdout.lines().last().unwrap_or("").to_string();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!(
            "client output is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let map = |k: &str| -> HashMap<String, u64> {
        v[k].as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    Summary {
        ok: v["ok"].as_u64().unwrap_or(0),
        errors: v["errors"].as_u64().unwrap_or(0),
        results: map("results"),
        error_messages: map("errorMessages"),
        exception_types: map("exceptionTypes"),
        raw: line,
    }
}
