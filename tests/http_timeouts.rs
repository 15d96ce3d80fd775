//! Envoy's timeout meanings through the release binary, on both HTTP
//! engines (curl over HTTP/1.1 takes the lean path, curl over h2c takes
//! hyper's), against a streaming Node `http` upstream: the route `timeout`
//! cuts an answer whose body is not over in time; `stream_idle_timeout`
//! cuts a body that goes silent; a body that keeps moving runs on.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ChildGuard, Proxy, example_config, repo_root, spawn_peer};

fn stream_upstream() -> (ChildGuard, u16) {
    let (child, _, v) = spawn_peer(
        Command::new("node").arg(repo_root().join("tests/peers/http/stream_upstream.js")),
        "the streaming Node upstream",
    );
    (child, v["port"].as_u64().unwrap() as u16)
}

/// What curl got: whether it finished cleanly, the body, the time taken.
struct Fetched {
    ok: bool,
    body: String,
    took: Duration,
}

fn fetch(addr: SocketAddr, path: &str, h2: bool) -> Fetched {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "10"]);
    if h2 {
        cmd.arg("--http2-prior-knowledge");
    }
    let start = Instant::now();
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl");
    Fetched {
        ok: out.status.success(),
        body: String::from_utf8_lossy(&out.stdout).into_owned(),
        took: start.elapsed(),
    }
}

#[test]
fn the_route_timeout_bounds_the_whole_answer_and_silence_has_its_own_bound() {
    let (_upstream, port) = stream_upstream();
    let config = example_config(
        "examples/timeouts/config.yaml",
        &[
            ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
            ("127.0.0.1:9001", format!("127.0.0.1:{port}")),
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ],
    );
    let proxy = Proxy::start("timeouts", &config);
    let web = proxy.addr("web-in");
    let bounded =
        |took: Duration| took >= Duration::from_millis(900) && took < Duration::from_secs(4);
    for h2 in [false, true] {
        let engine = if h2 { "hyper (h2c)" } else { "lean (HTTP/1.1)" };
        // 10 chunks 300 ms apart (about 2.7 s) under a 1 s route timeout:
        // the head and the first chunks arrive, the rest is cut.
        let cut = fetch(web, "/quick/drip/10/300", h2);
        assert!(!cut.ok, "{engine}: a late body must be cut: {:?}", cut.body);
        assert!(
            cut.body.starts_with("chunk 0\n"),
            "{engine}: {:?}",
            cut.body
        );
        assert!(!cut.body.contains("chunk 9"), "{engine}: {:?}", cut.body);
        assert!(bounded(cut.took), "{engine}: cut after {:?}", cut.took);

        // The same stream on a route with a long timeout: each silence is
        // 300 ms, under the 1 s stream idle timeout, so it runs to its end.
        let whole = fetch(web, "/downloads/drip/10/300", h2);
        assert!(whole.ok, "{engine}: {:?}", whole.body);
        assert_eq!(whole.body.lines().count(), 10, "{engine}: {:?}", whole.body);

        // A body that stops moving is cut after the stream idle timeout,
        // whatever the route allows.
        let stalled = fetch(web, "/downloads/stall", h2);
        assert!(!stalled.ok, "{engine}: {:?}", stalled.body);
        assert_eq!(stalled.body, "first and last chunk\n", "{engine}");
        assert!(
            bounded(stalled.took),
            "{engine}: cut after {:?}",
            stalled.took
        );
    }
}
