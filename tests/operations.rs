//! Operating the real binary: admin endpoint, metrics, hot reload (file
//! watch, SIGHUP, POST /reload) without losing requests, rejected configs,
//! graceful shutdown. Real sofa-rpc-node Dubbo peers.

mod common;

use std::time::{Duration, Instant};

use common::{DubboProvider, Proxy, dubbo_client, write_config};

fn config(v1: &DubboProvider, v2: &DubboProvider, w1: u32, w2: u32) -> String {
    format!(
        r#"admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: dubbo-in
    address: 127.0.0.1:0
    protocol: dubbo
    routes:
      - name: batch
        match: [ {{ key: batchJob, exact: "true" }} ]
        route: {{ cluster: demo, subset: v2 }}
      - name: split
        route:
          weighted:
            - {{ cluster: demo, subset: v1, weight: {w1} }}
            - {{ cluster: demo, subset: v2, weight: {w2} }}
clusters:
  - name: demo
    protocol: dubbo
    endpoints:
      - {{ address: "{}", labels: {{ version: v1 }} }}
      - {{ address: "{}", labels: {{ version: v2 }} }}
    subsets: {{ v1: {{ version: v1 }}, v2: {{ version: v2 }} }}
"#,
        v1.address(),
        v2.address()
    )
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Successful requests the proxy has answered on `dubbo-in`, from its metrics.
fn answered(proxy: &Proxy) -> u64 {
    let (_, metrics) = proxy.admin("GET", "/metrics");
    metrics
        .lines()
        .filter(|l| {
            l.starts_with(r#"metaproxy_requests_total{listener="dubbo-in""#)
                && l.contains(r#"outcome="success""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn admin_endpoint_reports_health_metrics_clusters_and_route_explanations() {
    let v1 = DubboProvider::start("v1");
    let v2 = DubboProvider::start("v2");
    let proxy = Proxy::start("admin", &config(&v1, &v2, 100, 0));
    assert_eq!(proxy.admin("GET", "/live").0, 200);
    assert_eq!(proxy.admin("GET", "/ready").0, 200);
    let s = dubbo_client(proxy.addr("dubbo-in").port(), &["--count", "5"]);
    assert_eq!(s.ok, 5, "{}", s.raw);
    let (status, metrics) = proxy.admin("GET", "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"metaproxy_requests_total{listener="dubbo-in",route="split",cluster="demo",protocol="dubbo",outcome="success"} 5"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("metaproxy_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"metaproxy_downstream_connections_total{listener="dubbo-in",protocol="dubbo"}"#
    ));
    let (_, clusters) = proxy.admin("GET", "/clusters");
    let v: serde_json::Value = serde_json::from_str(&clusters).unwrap();
    let eps = &v["clusters"][0]["endpoints"];
    assert_eq!(eps.as_array().unwrap().len(), 2, "{clusters}");
    assert_eq!(eps[0]["healthy"], true);
    assert_eq!(eps[0]["ejected"], false);
    let (_, explain) = proxy.admin("GET", "/routes/explain?listener=dubbo-in&batchJob=false");
    let e: serde_json::Value = serde_json::from_str(&explain).unwrap();
    assert_eq!(e["matched"], "split", "{explain}");
    assert_eq!(e["routes"][0]["route"], "batch");
    assert_eq!(e["routes"][0]["conditions"][0]["holds"], false);
    assert_eq!(e["routes"][0]["conditions"][0]["value"], "false");
    let (_, dump) = proxy.admin("GET", "/config_dump");
    let d: serde_json::Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(d["version"], 1);
    assert_eq!(d["config"]["listeners"][0]["name"], "dubbo-in", "{dump}");
    assert_eq!(proxy.admin("GET", "/nope").0, 404);
    // The log level changes at run time. Each client run opens one
    // connection, logged ("accepted") at debug level only.
    assert_eq!(proxy.admin("POST", "/log_level?level=[nonsense").0, 400);
    let accepted = || proxy.logs().matches("accepted").count();
    assert_eq!(proxy.admin("POST", "/log_level?level=warn").0, 200);
    let before = accepted();
    assert_eq!(dubbo_client(proxy.addr("dubbo-in").port(), &[]).ok, 1);
    assert_eq!(proxy.admin("POST", "/log_level?level=debug").0, 200);
    assert_eq!(dubbo_client(proxy.addr("dubbo-in").port(), &[]).ok, 1);
    wait_until("the debug line of the second connection", || {
        accepted() > before
    });
    // The first connection's line would have come first: only the second was logged.
    assert_eq!(
        accepted(),
        before + 1,
        "warn level still logged debug lines"
    );
}

#[test]
fn hot_reload_shifts_a_canary_without_losing_requests() {
    let v1 = DubboProvider::start("v1");
    let v2 = DubboProvider::start("v2");
    let path = write_config("reload", &config(&v1, &v2, 100, 0));
    let proxy = Proxy::start_file(&path, &[]);
    let port = proxy.addr("dubbo-in").port();
    let s = dubbo_client(port, &["--count", "20"]);
    assert_eq!(s.results.get("Hello bob, from v1"), Some(&20), "{}", s.raw);

    // Traffic runs across the reload (it goes on until the test says
    // stop, and answers from both versions prove it spanned the switch);
    // not one request may fail.
    let stop = path.with_extension("stop");
    let until = stop.to_str().unwrap().to_string();
    let load = std::thread::spawn(move || {
        dubbo_client(
            port,
            &[
                "--count",
                "100",
                "--concurrency",
                "8",
                "--until-file",
                &until,
            ],
        )
    });
    wait_until("the load under way", || answered(&proxy) >= 20 + 100);
    std::fs::write(&path, config(&v1, &v2, 0, 100)).unwrap();
    wait_until("the file-watch reload", || {
        proxy.logs().contains("config reloaded")
    });
    let at_reload = answered(&proxy);
    wait_until("load after the reload", || {
        answered(&proxy) >= at_reload + 100
    });
    std::fs::write(&stop, "").unwrap();
    let during = load.join().unwrap();
    assert_eq!(
        during.errors, 0,
        "requests lost during reload: {}",
        during.raw
    );
    for version in ["v1", "v2"] {
        let from = format!("Hello bob, from {version}");
        assert!(
            during.results.get(&from).is_some_and(|n| *n > 0),
            "the load did not span the reload (no answer from {version}): {}",
            during.raw
        );
    }
    let s = dubbo_client(port, &["--count", "20"]);
    assert_eq!(s.results.get("Hello bob, from v2"), Some(&20), "{}", s.raw);

    // An invalid file is rejected; the running config keeps serving.
    std::fs::write(&path, "listeners: [ { name: broken } ]\n").unwrap();
    wait_until("the rejection", || {
        proxy.logs().contains("config reload rejected")
    });
    let s = dubbo_client(port, &["--count", "5"]);
    assert_eq!(s.results.get("Hello bob, from v2"), Some(&5), "{}", s.raw);
    let (_, metrics) = proxy.admin("GET", "/metrics");
    assert!(
        metrics.contains(r#"metaproxy_config_reloads_total{result="rejected"}"#),
        "{metrics}"
    );

    // SIGHUP and POST /reload reload the (fixed) file too.
    std::fs::write(&path, config(&v1, &v2, 100, 0)).unwrap();
    wait_until("reload after the fix", || {
        dubbo_client(port, &["--count", "1"])
            .results
            .contains_key("Hello bob, from v1")
    });
    proxy.signal("HUP");
    let (status, body) = proxy.admin("POST", "/reload");
    assert_eq!(status, 200, "{body}");
    let (_, dump) = proxy.admin("GET", "/config_dump");
    let d: serde_json::Value = serde_json::from_str(&dump).unwrap();
    assert!(d["version"].as_u64().unwrap() >= 3, "{dump}");
    assert_eq!(d["last_reload_error"], serde_json::Value::Null);
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let v1 = DubboProvider::start("v1");
    let v2 = DubboProvider::start("v2");
    let mut proxy = Proxy::start("drain", &config(&v1, &v2, 100, 0));
    let port = proxy.addr("dubbo-in").port();
    let slow = std::thread::spawn(move || {
        dubbo_client(
            port,
            &["--method", "sleep", "--arg", "800", "--timeout", "5000"],
        )
    });
    wait_until("the slow call to arrive", || {
        v1.calls.all().iter().any(|l| l.contains("\"sleep\""))
    });
    proxy.signal("TERM");
    let s = slow.join().unwrap();
    assert_eq!(s.ok, 1, "the in-flight call finished: {}", s.raw);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = proxy.child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "proxy did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}\n{}", proxy.logs());
    assert!(proxy.logs().contains("all connections drained"));
    assert!(!proxy.is_running());
}

#[test]
fn access_logs_write_one_line_per_request_in_json_or_a_template() {
    let v1 = DubboProvider::start("v1");
    let v2 = DubboProvider::start("v2");
    let dir = common::scratch_dir("access-log");
    let json_path = dir.join("access.json");
    let text_path = dir.join("access.log");
    let base = config(&v1, &v2, 100, 0);
    let with_logs = base
        .replacen(
            "    protocol: dubbo\n    routes:",
            &format!(
                "    protocol: dubbo\n    access_log: {{ path: \"{}\" }}\n    routes:",
                json_path.display()
            ),
            1,
        )
        .replace(
            "listeners:\n",
            &format!(
                "listeners:\n  - name: plain\n    address: 127.0.0.1:0\n    protocol: dubbo\n    access_log: {{ path: \"{}\", format: \"%method% %route% %upstream_host% %outcome% %batchJob% %duration_ms%\" }}\n    routes: [ {{ route: {{ cluster: demo, subset: v1 }} }} ]\n",
                text_path.display()
            ),
        );
    let proxy = Proxy::start("access-log", &with_logs);
    let s = dubbo_client(proxy.addr("dubbo-in").port(), &["--count", "3"]);
    assert_eq!(s.ok, 3, "{}", s.raw);
    let s = dubbo_client(
        proxy.addr("plain").port(),
        &["--count", "2", "--attach", "batchJob=nope"],
    );
    assert_eq!(s.ok, 2, "{}", s.raw);
    let read_lines = |p: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    wait_until("3 JSON lines", || read_lines(&json_path).len() >= 3);
    wait_until("2 template lines", || read_lines(&text_path).len() >= 2);
    let lines = read_lines(&json_path);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["listener"], "dubbo-in");
    assert_eq!(v["method"], "sayHello");
    assert_eq!(v["route"], "split");
    assert_eq!(v["cluster"], "demo");
    assert_eq!(v["outcome"], "success");
    assert_eq!(v["status"], "20");
    assert_eq!(v["upstream_host"], v1.address());
    assert_eq!(v["source.ip"], "127.0.0.1");
    let text = read_lines(&text_path);
    let fields: Vec<&str> = text[0].split(' ').collect();
    assert_eq!(
        &fields[..5],
        &[
            "sayHello",
            "route-0",
            v1.address().as_str(),
            "success",
            "nope"
        ],
        "{text:?}"
    );
    assert!(fields[5].parse::<f64>().is_ok(), "{text:?}");
}

/// The config for the reload storm: weights `w1`/`w2`, and an extra route when `extra`.
fn storm_config(v1: &DubboProvider, v2: &DubboProvider, w1: u32, w2: u32, extra: bool) -> String {
    let base = config(v1, v2, w1, w2);
    if extra {
        base.replace(
            "    routes:\n",
            "    routes:\n      - name: extra\n        match: [ { key: extra, present: true } ]\n        route: { cluster: demo, subset: v1 }\n",
        )
    } else {
        base
    }
}

#[test]
fn fifty_reloads_under_load_lose_nothing_and_weights_follow() {
    use common::dubbo_wire::{read_frame, request};
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let v1 = DubboProvider::start("v1");
    let v2 = DubboProvider::start("v2");
    let path = write_config("storm", &storm_config(&v1, &v2, 100, 0, false));
    let proxy = Proxy::start_file(&path, &[]);
    let addr = proxy.addr("dubbo-in");
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    // 32 client connections, one call in flight each, for the whole storm.
    let clients: Vec<_> = (0..32)
        .map(|n| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut id = n * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    id += 1;
                    let frame = request(
                        id,
                        "org.apache.dubbo.samples.DemoService",
                        "sayHello",
                        "x",
                        &[],
                    );
                    s.write_all(&frame).unwrap();
                    match read_frame(&mut s) {
                        Some(f) if f.id == id && f.status == 20 => {
                            ok.fetch_add(1, Ordering::Relaxed)
                        }
                        other => {
                            eprintln!("failed call: {other:?}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for i in 0..50u32 {
        let (w1, w2) = if i % 2 == 0 { (0, 100) } else { (100, 0) };
        std::fs::write(&path, storm_config(&v1, &v2, w1, w2, i % 3 == 0)).unwrap();
        let (status, body) = proxy.admin("POST", "/reload");
        assert_eq!(status, 200, "reload {i}: {body}");
        // Traffic follows the new weights at once: a fresh call lands on the new side.
        let want = if w1 == 100 { "from v1" } else { "from v2" };
        let s = dubbo_client(proxy.addr("dubbo-in").port(), &["--count", "3"]);
        assert_eq!(s.ok, 3, "{}", s.raw);
        assert!(
            s.results.keys().all(|k| k.contains(want)),
            "reload {i} wants {want}: {}",
            s.raw
        );
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed calls during 50 reloads"
    );
    assert!(
        ok.load(Ordering::Relaxed) > 1000,
        "the clients kept busy: {}",
        ok.load(Ordering::Relaxed)
    );
    let (_, dump) = proxy.admin("GET", "/config_dump");
    let d: serde_json::Value = serde_json::from_str(&dump).unwrap();
    assert!(d["version"].as_u64().unwrap() >= 51, "{dump}");
    // The metrics parse as Prometheus text and count the reloads.
    let (_, metrics) = proxy.admin("GET", "/metrics");
    let samples = parse_prometheus(&metrics);
    assert!(
        samples
            .get("metaproxy_config_reloads_total{result=\"ok\"}")
            .copied()
            .unwrap_or(0.0)
            >= 50.0
    );
    let served: f64 = samples
        .iter()
        .filter(|(k, _)| {
            k.starts_with("metaproxy_requests_total{") && k.contains("outcome=\"success\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert!(
        served >= ok.load(Ordering::Relaxed) as f64,
        "requests_total {served} counts every call"
    );
}

/// A strict little parser of the Prometheus/OpenMetrics text format:
/// `# TYPE/HELP/UNIT` comments, `# EOF`, and `name{labels} value` samples.
fn parse_prometheus(text: &str) -> std::collections::HashMap<String, f64> {
    let mut out = std::collections::HashMap::new();
    let mut saw_eof = false;
    for line in text.lines() {
        assert!(!saw_eof, "content after # EOF");
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.starts_with("# UNIT ")
        {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "bad metric name in {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels in {line}");
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        out.insert(series.to_string(), value);
    }
    assert!(saw_eof, "no # EOF");
    out
}

#[test]
fn a_reload_moves_removes_and_restores_the_admin_endpoint() {
    let v1 = DubboProvider::start("v1");
    let v2 = DubboProvider::start("v2");
    let first = config(&v1, &v2, 100, 0);
    let path = write_config("admin-move", &first);
    let proxy = Proxy::start_file(&path, &[]);
    let old = proxy.admin.expect("admin bound");
    assert_eq!(common::http_call(old, "GET", "/ready").0, 200);

    // Moved: a port the system just handed out, on another loopback
    // address (127.0.0.2), so that no parallel test's connection can take
    // it as its own local port before the proxy binds it.
    let moved = std::net::TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(
        &path,
        first.replace("127.0.0.1:0 }", &format!("{moved} }}")),
    )
    .unwrap();
    proxy.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(moved).is_err() {
        assert!(
            Instant::now() < deadline,
            "the admin endpoint did not move to {moved}; proxy log:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(common::http_call(moved, "GET", "/ready").0, 200);
    wait_until("the old admin address to close", || {
        std::net::TcpStream::connect(old).is_err()
    });

    // Removed, then added back.
    let without = first.replacen("admin: { address: 127.0.0.1:0 }\n", "", 1);
    assert!(!without.contains("admin:"));
    std::fs::write(&path, &without).unwrap();
    proxy.signal("HUP");
    wait_until("the admin endpoint to close", || {
        std::net::TcpStream::connect(moved).is_err()
    });
    std::fs::write(
        &path,
        first.replace("127.0.0.1:0 }", &format!("{moved} }}")),
    )
    .unwrap();
    proxy.signal("HUP");
    wait_until("the admin endpoint to come back", || {
        std::net::TcpStream::connect(moved).is_ok()
    });
    assert_eq!(common::http_call(moved, "GET", "/ready").0, 200);
}
