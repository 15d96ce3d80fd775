//! A listener's connection limit through the release binary: a connection
//! above `max_connections` is closed at accept, and a reload that changes
//! the limit applies from the next connection on (open ones stay).

mod common;
#[path = "common/http.rs"]
mod http_peers;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Proxy, write_config};
use http_peers::Backend;

fn config(backend: &Backend, max_connections: usize) -> String {
    format!(
        r#"admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    limits: {{ max_connections: {max_connections} }}
    routes:
      - route: {{ cluster: web }}
clusters:
  - name: web
    protocol: http
    endpoints: [ {{ address: "{}" }} ]
"#,
        backend.address()
    )
}

/// A connection that got an answer (kept open, so it holds its slot), or
/// why it got none.
fn answered(proxy: SocketAddr) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(proxy).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A refused connection may be closed before the request is written.
    s.write_all(b"GET /limits HTTP/1.1\r\nhost: limits\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut head = [0u8; 12];
    match s.read(&mut head) {
        Ok(0) => Err("closed without an answer".into()),
        Ok(n) if head[..n].starts_with(b"HTTP/1.1 200") => Ok(s),
        Ok(n) => Err(format!("answer {:?}", String::from_utf8_lossy(&head[..n]))),
        Err(e) => Err(format!("read: {e}")),
    }
}

fn reload(proxy: &Proxy, path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let (status, body) = proxy.admin("POST", "/reload");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn connections_above_the_limit_are_closed_and_a_reload_changes_the_limit() {
    let backend = Backend::start("web");
    let path = write_config("listener-limits", &config(&backend, 1));
    let proxy = Proxy::start_file(&path, &[]);
    let addr = proxy.addr("http-in");

    let a = answered(addr).expect("the first connection is served");
    answered(addr).expect_err("a second connection is over the limit of 1");

    reload(&proxy, &path, &config(&backend, 2));
    let b = answered(addr).unwrap_or_else(|e| {
        panic!(
            "after raising the limit to 2 a second connection is served: {e}\n{}",
            proxy.logs()
        )
    });
    answered(addr).expect_err("a third connection is over the limit of 2");

    // Lowered under what is open: both stay, new ones wait for room.
    reload(&proxy, &path, &config(&backend, 1));
    answered(addr).expect_err("over the lowered limit");
    drop(a);
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Err(e) = answered(addr) {
        assert!(
            Instant::now() < deadline,
            "no room once both connections closed: {e}\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        proxy.logs().contains("connection limit reached"),
        "refusals are logged"
    );
}
