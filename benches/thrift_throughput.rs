//! Thrift throughput: direct vs through metaproxy (one worker thread), in one run.
//!
//! `cargo bench --bench thrift_throughput` (env: `BENCH_SECS` per run, default 3;
//! `BENCH_ROUNDS`, default 3; `BENCH_CONNS`, default 32).
//!
//! Method (as benches/dubbo_throughput.rs): a closed-loop load generator
//! with 32 connections and one request in flight each sends a framed
//! binary `echo` call to a small in-process echo server, directly and
//! through metaproxy, interleaved. Two proxies run side by side: the cluster
//! in `exclusive` mode (the Thrift default: one call in flight per upstream
//! connection) and in `multiplex` mode (seqid-matched, shared connections).
//! Each proxy runs with `--workers 1` pinned to core 1 (`taskset`), the load
//! generator and the server on core 0. Reported: median requests/s, the
//! ratio to direct, and the proxy's CPU time per request.

#[path = "support/mod.rs"]
mod support;

use support::{cpu_seconds, env_num, has, median};

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A framed strict-binary `echo(1: string text)` call, seqid 1.
fn request_frame() -> Vec<u8> {
    let mut m = vec![0x80, 0x01, 0x00, 0x01];
    m.extend_from_slice(&4i32.to_be_bytes());
    m.extend_from_slice(b"echo");
    m.extend_from_slice(&1i32.to_be_bytes());
    let text = b"Hello world, this is a thrift echo benchmark payload";
    m.extend_from_slice(&[11, 0, 1]);
    m.extend_from_slice(&(text.len() as i32).to_be_bytes());
    m.extend_from_slice(text);
    m.push(0);
    let mut f = (m.len() as i32).to_be_bytes().to_vec();
    f.extend(m);
    f
}

/// The echo server: answers each call with the same frame typed REPLY
/// (name, seqid and struct kept), batching writes.
async fn echo_server(listener: TcpListener) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(64 * 1024);
            let mut out = Vec::with_capacity(64 * 1024);
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let n = match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                let mut at = 0;
                while buf.len() - at >= 4 {
                    let len = i32::from_be_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
                    if buf.len() - at < 4 + len {
                        break;
                    }
                    let start = out.len();
                    out.extend_from_slice(&buf[at..at + 4 + len]);
                    out[start + 7] = 2; // CALL → REPLY
                    at += 4 + len;
                }
                buf.drain(..at);
                if !out.is_empty() {
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            }
        });
    }
}

/// Closed loop: each connection sends one call, waits for its answer, repeats.
async fn load(addr: SocketAddr, conns: usize, secs: u64) -> (f64, u64) {
    let frame = Arc::new(request_frame());
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (frame, done, errors, stop) =
            (frame.clone(), done.clone(), errors.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = TcpStream::connect(addr).await else {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let _ = s.set_nodelay(true);
            let mut h = [0u8; 4];
            let mut body = vec![0u8; 1024];
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(&frame).await.is_err() || s.read_exact(&mut h).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let len = i32::from_be_bytes(h) as usize;
                if len > body.len()
                    || len < 4
                    || s.read_exact(&mut body[..len]).await.is_err()
                    || body[3] != 2
                {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start_count = done.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let count = done.load(Ordering::Relaxed) - start_count;
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    (count as f64 / elapsed, errors.load(Ordering::Relaxed))
}

fn start_proxy(server: SocketAddr, mode: &str, pin: bool) -> (Child, SocketAddr) {
    let config = format!(
        "listeners:\n  - name: bench\n    address: 127.0.0.1:0\n    protocol: thrift\n    routes:\n      - route: {{ cluster: echo }}\nclusters:\n  - name: echo\n    protocol: thrift\n    mode: {mode}\n    endpoints: [ {{ address: \"{server}\" }} ]\n"
    );
    let path = std::env::temp_dir().join(format!(
        "metaproxy-thrift-bench-{}-{mode}.yaml",
        std::process::id()
    ));
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

fn main() {
    let secs = env_num("BENCH_SECS", 3);
    let rounds = env_num("BENCH_ROUNDS", 3) as usize;
    let conns = env_num("BENCH_CONNS", 32) as usize;
    let pin = has("taskset") && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    if pin {
        let _ = Command::new("taskset")
            .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        tokio::spawn(echo_server(listener));
        let modes = ["exclusive", "multiplex"];
        let mut proxies: Vec<(Child, SocketAddr)> = modes.iter().map(|m| start_proxy(server, m, pin)).collect();
        let mut direct = Vec::new();
        let mut proxied = vec![Vec::new(); modes.len()];
        let mut cpu_us = vec![Vec::new(); modes.len()];
        for round in 0..rounds {
            let (d, de) = load(server, conns, secs).await;
            print!("round {}: direct {d:>9.0} req/s ({de} errors)", round + 1);
            direct.push(d);
            for (i, (child, addr)) in proxies.iter().enumerate() {
                let pid = child.id();
                let cpu0 = cpu_seconds(pid);
                let (p, pe) = load(*addr, conns, secs).await;
                let cpu = cpu_seconds(pid) - cpu0;
                let per = cpu * 1e6 / (p * secs as f64).max(1.0);
                print!(" | {} {p:>9.0} req/s ({pe} errors), {per:.1} µs CPU/req", modes[i]);
                proxied[i].push(p);
                cpu_us[i].push(per);
            }
            println!();
        }
        let d = median(&mut direct);
        println!(
            "\nThrift framed/binary echo, {conns} connections x 1 in flight, {secs}s x {rounds} rounds{}",
            if pin { ", proxy pinned to core 1" } else { " (not pinned: taskset missing or 1 core)" }
        );
        println!("direct               {d:>10.0} req/s");
        for (i, mode) in modes.iter().enumerate() {
            let (p, c) = (median(&mut proxied[i]), median(&mut cpu_us[i]));
            println!(
                "metaproxy {mode:<10} {p:>10.0} req/s   ratio to direct {:.2}   CPU {c:.1} µs/req (1 worker)",
                p / d
            );
        }
        for (child, _) in proxies.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    });
}
