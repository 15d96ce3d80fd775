//! `--workers N`: N per-core worker threads, each with its own runtime,
//! take the connections in turn; `--workers 1` runs everything on one.

mod common;
#[path = "common/http.rs"]
mod http;

use std::path::Path;

use common::{Proxy, http_call, write_config};
use http::Backend;

/// The proxy's threads named as per-core workers (`comm` keeps 15 bytes).
fn worker_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|name| name.starts_with("metaproxy-work"))
        .count()
}

fn config(test: &str, backend: &Backend) -> std::path::PathBuf {
    write_config(
        test,
        &format!(
            r#"
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: web
    address: 127.0.0.1:0
    protocol: http
    routes: [ {{ route: {{ cluster: app }} }} ]
clusters:
  - {{ name: app, protocol: http1, endpoints: [ {{ address: "{}" }} ] }}
"#,
            backend.address()
        ),
    )
}

/// Every connection (a new one per call) is answered by the backend.
fn calls_succeed(proxy: &Proxy, backend: &Backend, n: u64) {
    let before = backend.count();
    for _ in 0..n {
        let (status, body) = http_call(proxy.addr("web"), "GET", "/");
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(backend.count() - before, n);
}

fn start(path: &Path, workers: &str) -> Proxy {
    Proxy::start_file(path, &["--workers", workers])
}

#[test]
fn three_workers_take_connections_in_turn() {
    let backend = Backend::start("workers");
    let proxy = start(&config("workers-3", &backend), "3");
    assert_eq!(worker_threads(proxy.child.0.id()), 3);
    // Six connections, handed to the workers in turn.
    calls_succeed(&proxy, &backend, 6);
    // The admin endpoint runs on the control runtime, beside them.
    assert_eq!(proxy.admin("GET", "/ready").0, 200);
}

#[test]
fn one_worker_runs_everything_on_one_thread() {
    let backend = Backend::start("one-worker");
    let proxy = start(&config("workers-1", &backend), "1");
    assert_eq!(worker_threads(proxy.child.0.id()), 0);
    calls_succeed(&proxy, &backend, 3);
}
