//! HTTP test peers: an in-process hyper backend (HTTP/1.1 + h2c), curl,
//! h2load, and the Python grpcio / httpx scripts in tests/peers/http.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::common::{ChildGuard, START_TIMEOUT, repo_root};

type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// An in-process HTTP backend on 127.0.0.1:0 speaking HTTP/1.1 and h2c.
///
/// - any path: `200`, body = `<tag> <METHOD> <path?query> <version>` then
///   one `name: value` line per request header;
/// - `/bytes/N`: streams N zero bytes in 64 KiB chunks;
/// - `…/upload`: reads the body to the end, answers `<tag> got N`;
/// - `/status/N`: answers status N;
/// - `/slow/MS`: waits MS milliseconds before answering.
///
/// [`Backend::start_with`] changes that: every request answered with one
/// status, or only `/health` failing.
pub struct Backend {
    pub addr: SocketAddr,
    pub tag: String,
    pub requests: Arc<AtomicU64>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

/// How a test backend misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quirks {
    /// Every request (`/health` included) is answered with this status.
    pub status_all: Option<u16>,
    /// `/health` is answered with this status.
    pub health: Option<u16>,
    /// Every request except `/health` is answered this late (a slow backend).
    pub delay: Option<Duration>,
}

impl Backend {
    pub fn start(tag: &str) -> Backend {
        Backend::start_with(tag, Quirks::default())
    }

    /// A backend that answers every request with `status`.
    pub fn failing(tag: &str, status: u16) -> Backend {
        Backend::start_with(
            tag,
            Quirks {
                status_all: Some(status),
                ..Quirks::default()
            },
        )
    }

    pub fn start_with(tag: &str, quirks: Quirks) -> Backend {
        Backend::start_on(tag, quirks, 0)
    }

    /// [`Backend::start_with`] on `port` (0: ephemeral), e.g. to restart a
    /// stopped backend where it was.
    pub fn start_on(tag: &str, quirks: Quirks, port: u16) -> Backend {
        Backend::start_at(tag, quirks, "127.0.0.1", port)
    }

    /// [`Backend::start_on`] at loopback address `ip` (127.0.0.2, ...).
    pub fn start_at(tag: &str, quirks: Quirks, ip: &str, port: u16) -> Backend {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind((ip, port)))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let count = requests.clone();
        let connections = Arc::new(AtomicU64::new(0));
        let accepted = connections.clone();
        let tag_owned: Arc<str> = Arc::from(tag);
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let tag = tag_owned.clone();
                let count = count.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        count.fetch_add(1, Ordering::Relaxed);
                        let path = req.uri().path();
                        let status = quirks
                            .status_all
                            .or(quirks.health.filter(|_| path == "/health"));
                        let tag = tag.clone();
                        let delay = quirks.delay.filter(|_| path != "/health");
                        async move {
                            if let Some(d) = delay {
                                tokio::time::sleep(d).await;
                            }
                            match status {
                                Some(code) => {
                                    let mut resp =
                                        Response::new(full(format!("{tag} status {code}\n")));
                                    *resp.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
                                    resp.headers_mut().insert("x-backend", tag.parse().unwrap());
                                    Ok(resp)
                                }
                                None => answer(tag, req).await,
                            }
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Backend {
            addr,
            tag: tag.to_string(),
            requests,
            connections,
            _runtime: runtime,
        }
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    pub fn count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

fn full(text: String) -> BoxBody {
    Full::new(Bytes::from(text)).boxed()
}

async fn answer(tag: Arc<str>, req: Request<Incoming>) -> Result<Response<BoxBody>, Infallible> {
    let path = req.uri().path().to_string();
    if let Some(n) = path.strip_prefix("/bytes/") {
        let left: u64 = n.parse().unwrap_or(0);
        let body = Zeros {
            left,
            chunk: Bytes::from(vec![0u8; 64 * 1024]),
        };
        return Ok(Response::new(body.boxed()));
    }
    if path.ends_with("/upload") {
        let mut body = req.into_body();
        let mut total: u64 = 0;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => total += f.data_ref().map_or(0, |d| d.len() as u64),
                Err(_) => break,
            }
        }
        return Ok(Response::new(full(format!("{tag} got {total}\n"))));
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let mut resp = Response::new(full(format!("{tag} status {code}\n")));
        *resp.status_mut() = hyper::StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
        return Ok(resp);
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    let mut text = format!(
        "{tag} {} {} {:?}\n",
        req.method(),
        req.uri()
            .path_and_query()
            .map_or(req.uri().path(), |p| p.as_str()),
        req.version()
    );
    if let Some(a) = req.uri().authority() {
        text.push_str(&format!(":authority: {a}\n"));
    }
    for (k, v) in req.headers() {
        text.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    let mut resp = Response::new(full(text));
    resp.headers_mut().insert("x-backend", tag.parse().unwrap());
    Ok(resp)
}

/// `left` zero bytes in 64 KiB frames.
struct Zeros {
    left: u64,
    chunk: Bytes,
}

impl hyper::body::Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = this.left.min(this.chunk.len() as u64);
        this.left -= n;
        std::task::Poll::Ready(Some(Ok(Frame::data(this.chunk.slice(..n as usize)))))
    }
}

/// Lines a child printed, read by a background thread.
pub struct ChildLines(std::sync::mpsc::Receiver<String>);

impl ChildLines {
    pub fn spawn(reader: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        Self(rx)
    }

    pub fn next(&self, timeout: Duration) -> Option<String> {
        self.0.recv_timeout(timeout).ok()
    }
}

/// What curl saw.
#[derive(Debug)]
pub struct CurlOut {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub stderr: String,
}

impl CurlOut {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|s| s.as_str())
    }
}

/// Runs `curl -s -i` with `args`; `-i` output is split into head and body.
pub fn curl(args: &[&str]) -> CurlOut {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl is needed for the HTTP tests");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Skip interim 1xx heads.
    let mut rest = text.as_str();
    loop {
        let Some((head, body)) = rest.split_once("\r\n\r\n") else {
            return CurlOut {
                status: 0,
                headers: HashMap::new(),
                body: rest.to_string(),
                stderr,
            };
        };
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return CurlOut {
            status,
            headers,
            body: body.to_string(),
            stderr,
        };
    }
}

/// The Python peers' venv, created from requirements.txt on first use
/// (.ci/run does it up front).
pub fn python() -> PathBuf {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let dir = repo_root().join("tests/peers/http");
    let py = dir.join(".venv/bin/python");
    INSTALL.call_once(|| {
        let ready = Command::new(&py)
            .args(["-c", "import grpc, httpx"])
            .status()
            .is_ok_and(|s| s.success());
        if !ready {
            let status = Command::new("python3")
                .args(["-m", "venv"])
                .arg(dir.join(".venv"))
                .status()
                .expect("python3 is needed for the HTTP test peers");
            assert!(status.success(), "python3 -m venv failed");
            let status = Command::new(&py)
                .args(["-m", "pip", "install", "-q", "-r"])
                .arg(dir.join("requirements.txt"))
                .status()
                .expect("pip");
            assert!(
                status.success(),
                "pip install -r tests/peers/http/requirements.txt failed"
            );
        }
    });
    py
}

/// A grpcio server (tests/peers/http/grpc_server.py).
pub struct GrpcServer {
    pub child: ChildGuard,
    pub port: u16,
    pub calls: ChildLines,
}

impl GrpcServer {
    pub fn start(tag: &str) -> GrpcServer {
        GrpcServer::start_with(tag, &[])
    }

    /// [`GrpcServer::start`] with more arguments (`--tls-cert`, `--tls-key`).
    pub fn start_with(tag: &str, extra: &[&str]) -> GrpcServer {
        let py = python();
        let mut child = Command::new(py)
            .arg(repo_root().join("tests/peers/http/grpc_server.py"))
            .args(["--tag", tag, "--port", "0"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn grpc server");
        let calls = ChildLines::spawn(child.stdout.take().unwrap());
        let child = ChildGuard(child);
        let first = calls
            .next(START_TIMEOUT)
            .expect("grpc server printed nothing");
        let v: serde_json::Value = serde_json::from_str(&first).expect("first line is JSON");
        assert_eq!(v["event"], "listening", "{first}");
        GrpcServer {
            child,
            port: v["port"].as_u64().unwrap() as u16,
            calls,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Runs h2load for `n` requests to `url` (`shape`: its connection and
/// stream options); every request must succeed with a 2xx, else the test
/// fails with h2load's output and `context()` (the proxy's logs).
pub fn h2load_all_2xx(url: &str, n: usize, shape: &[&str], context: impl Fn() -> String) {
    let out = Command::new("h2load")
        .args(["-n", &n.to_string()])
        .args(shape)
        .arg(url)
        .output()
        .expect("h2load is needed (apt nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{n} succeeded, 0 failed, 0 errored")),
        "{text}\n{}",
        context()
    );
    assert!(text.contains(&format!("status codes: {n} 2xx")), "{text}");
}

/// Runs grpc_client.py; returns its JSON summary.
pub fn grpc_client(target: SocketAddr, args: &[&str]) -> serde_json::Value {
    python_json("grpc_client.py", &["--target", &target.to_string()], args)
}

/// Runs httpx_client.py; returns its JSON summary.
pub fn httpx_client(url: &str, args: &[&str]) -> serde_json::Value {
    python_json("httpx_client.py", &["--url", url], args)
}

fn python_json(script: &str, first: &[&str], args: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(repo_root().join("tests/peers/http").join(script))
        .args(first)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python peer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{script} output is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
