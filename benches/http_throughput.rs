//! HTTP throughput: direct vs through metaproxy (one worker thread), in one run.
//!
//! `cargo bench --bench http_throughput` (env: `BENCH_SECS` per run, default 3;
//! `BENCH_ROUNDS`, default 3; `BENCH_CONNS`, default 32). Needs `h2load`
//! (Debian `nghttp2-client`).
//!
//! Method (design §6): h2load with 32 connections and one request in flight
//! each sends `GET /` to a small in-process hyper backend answering `ok`,
//! directly and through metaproxy, interleaved (A B A B ...), once over
//! HTTP/1.1 (`--h1`) and once over HTTP/2 (h2c). The proxy runs with
//! `--workers 1` pinned to core 1 (`taskset`), h2load and the backend on
//! core 0. Reported: median requests/s of each, the ratio, and the proxy's
//! CPU time per request (utime+stime from /proc/PID/stat divided by
//! requests served).

#[path = "support/mod.rs"]
mod support;

use support::{cpu_seconds, env_num, has, median};

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

async fn backend(listener: TcpListener) {
    loop {
        let Ok((s, _)) = listener.accept().await else {
            return;
        };
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok\n"))))
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
    }
}

fn start_proxy(backend: SocketAddr, pin: bool) -> (Child, SocketAddr) {
    let config = format!(
        "listeners:\n  - name: bench\n    address: 127.0.0.1:0\n    protocol: http\n    routes:\n      - route: {{ cluster: echo }}\nclusters:\n  - name: echo\n    protocol: http\n    endpoints: [ {{ address: \"{backend}\" }} ]\n"
    );
    let path =
        std::env::temp_dir().join(format!("metaproxy-http-bench-{}.yaml", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(config.as_bytes())
        .unwrap();
    let bin = env!("CARGO_BIN_EXE_metaproxy");
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", bin]);
        c
    } else {
        Command::new(bin)
    };
    let mut child = cmd
        .args(["run", "--workers", "1", "--log", "warn", "-c"])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start metaproxy");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = line.split("address=").nth(1) {
            addr = a.trim().parse().ok();
        }
        if line == "ready" {
            break;
        }
    }
    (child, addr.expect("proxy address"))
}

/// Runs h2load for `secs`; returns (req/s, succeeded, failed).
fn load(addr: SocketAddr, h1: bool, conns: u64, secs: u64, pin: bool) -> (f64, u64, u64) {
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", "h2load"]);
        c
    } else {
        Command::new("h2load")
    };
    if h1 {
        cmd.arg("--h1");
    }
    let out = cmd
        .args(["-c", &conns.to_string(), "-m", "1", "-t", "1"])
        .args(["-D", &secs.to_string(), "--warm-up-time", "300ms"])
        .arg(format!("http://{addr}/"))
        .output()
        .expect("run h2load (apt nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("finished in "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(0.0);
    let field = |name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with("requests:"))
            .and_then(|l| l.split(", ").find(|p| p.ends_with(name)))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (rps, field("succeeded"), field("failed") + field("errored"))
}

fn main() {
    let secs = env_num("BENCH_SECS", 3);
    let rounds = env_num("BENCH_ROUNDS", 3) as usize;
    let conns = env_num("BENCH_CONNS", 32);
    if !has("h2load") {
        println!("h2load not found (apt-get install nghttp2-client): skipping");
        return;
    }
    let pin = has("taskset") && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    if pin {
        let _ = Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let upstream = listener.local_addr().unwrap();
    rt.spawn(backend(listener));
    let (mut proxy, proxy_addr) = start_proxy(upstream, pin);
    let pid = proxy.id();
    for h1 in [true, false] {
        let name = if h1 { "HTTP/1.1" } else { "HTTP/2 (h2c)" };
        let (mut direct, mut proxied, mut cpu_us) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (d, _, de) = load(upstream, h1, conns, secs, pin);
            let cpu0 = cpu_seconds(pid);
            let (p, served, pe) = load(proxy_addr, h1, conns, secs, pin);
            let cpu = cpu_seconds(pid) - cpu0;
            let per = cpu * 1e6 / (served.max(1) as f64);
            println!(
                "{name} round {}: direct {d:>9.0} req/s ({de} failed) | metaproxy {p:>9.0} req/s ({pe} failed), {per:.1} µs CPU/req",
                round + 1
            );
            direct.push(d);
            proxied.push(p);
            cpu_us.push(per);
        }
        let (d, p, c) = (
            median(&mut direct),
            median(&mut proxied),
            median(&mut cpu_us),
        );
        println!(
            "\n{name} GET, {conns} connections x 1 in flight, {secs}s x {rounds} rounds{}",
            if pin {
                ", proxy pinned to core 1"
            } else {
                " (not pinned: taskset missing or 1 core)"
            }
        );
        println!("direct     {d:>10.0} req/s");
        println!(
            "metaproxy  {p:>10.0} req/s   ratio to direct {:.2}   CPU {c:.1} µs/req (1 worker)\n",
            p / d.max(1.0)
        );
    }
    let _ = proxy.kill();
    let _ = proxy.wait();
}
