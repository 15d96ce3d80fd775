//! WebSocket through the release binary, against the `websockets` library
//! (PyPI) on both ends: a route with `upgrades: [websocket]` relays the
//! handshake and then the frames both ways, closes from either side, and
//! counts the bytes; a route without it refuses the upgrade (403) but lets
//! an `h2c` upgrade through as a plain request; a silent tunnel is cut
//! after `tunnel_idle_timeout`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ChildGuard, Lines, Proxy, example_config, python_venv, repo_root, spawn_peer};

fn python() -> std::path::PathBuf {
    python_venv("tests/peers/http", "import websockets")
}

/// A `websockets` echo server tagged `tag`: its port and its handshake log.
fn ws_server(tag: &str) -> (ChildGuard, Lines, u16) {
    let (child, lines, v) = spawn_peer(
        Command::new(python())
            .arg(repo_root().join("tests/peers/http/ws_peer.py"))
            .args(["server", "--tag", tag]),
        "the websockets server",
    );
    (child, lines, v["port"].as_u64().unwrap() as u16)
}

/// Runs the `websockets` client against `url`; its JSON summary.
fn ws_client(url: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(repo_root().join("tests/peers/http/ws_peer.py"))
        .args(["client", "--url", url])
        .args(extra)
        .stderr(Stdio::inherit())
        .output()
        .expect("python");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap()
}

fn gateway(name: &str, server_port: u16, tunnel_idle: &str) -> Proxy {
    let config = example_config(
        "examples/websocket/config.yaml",
        &[
            ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
            ("127.0.0.1:9001", format!("127.0.0.1:{server_port}")),
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
            (
                "tunnel_idle_timeout: 1h",
                format!("tunnel_idle_timeout: {tunnel_idle}"),
            ),
        ],
    );
    Proxy::start(name, &config)
}

#[test]
fn a_websocket_route_relays_the_handshake_and_frames_both_ways() {
    let (_server, handshakes, port) = ws_server("ws1");
    let proxy = gateway("ws-relay", port, "1h");
    let web = proxy.addr("web-in");

    let summary = ws_client(&format!("ws://{web}/ws/room"), &["--messages", "3"]);
    assert_eq!(summary["greeting"], "hello from ws1", "{summary}");
    assert_eq!(
        summary["answers"],
        serde_json::json!(["ws1: m0", "ws1: m1", "ws1: m2"]),
        "{summary}"
    );
    assert_eq!(summary["close_code"], 1000, "{summary}");
    let seen = handshakes
        .wait_for(Duration::from_secs(5), |l| l.contains("/ws/room"))
        .expect("the server saw the handshake");
    let seen: serde_json::Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1", "{seen}");

    // Large messages (1 MB each way, many reads and writes per frame).
    let big = ws_client(
        &format!("ws://{web}/ws/big"),
        &["--messages", "3", "--size", "1000000"],
    );
    assert_eq!(
        big["answers"],
        serde_json::json!([1000005, 1000005, 1000005]),
        "{big}"
    );

    // Several tunnels at once, on one proxy.
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let url = format!("ws://{web}/ws/{i}");
            std::thread::spawn(move || ws_client(&url, &["--messages", "5"]))
        })
        .collect();
    for c in clients {
        let s = c.join().unwrap();
        assert_eq!(s["close_code"], 1000, "{s}");
        assert_eq!(s["answers"].as_array().unwrap().len(), 5, "{s}");
    }

    // The client closes first: the server's close frame comes back.
    let closing = ws_client(
        &format!("ws://{web}/ws/client-closes"),
        &["--messages", "1", "--client-close"],
    );
    assert_eq!(closing["close_code"], 1000, "{closing}");
    assert_eq!(closing["server_close_code"], 1000, "{closing}");

    // Every byte was counted, and no tunnel is left open.
    let bytes = |d: &str| {
        proxy.metric(&format!(
            "metaproxy_tunnel_bytes_total{{listener=\"web-in\",direction=\"{d}\"}}"
        ))
    };
    assert!(bytes("upstream") > 3_000_000.0, "{}", bytes("upstream"));
    assert!(bytes("downstream") > 3_000_000.0, "{}", bytes("downstream"));
    let start = Instant::now();
    while proxy.metric("metaproxy_tunnels_active{listener=\"web-in\"") != 0.0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "tunnels left open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A route without `upgrades` refuses the upgrade itself (403); the
    // server never sees it.
    let refused = ws_client(&format!("ws://{web}/other"), &[]);
    let why = refused["error"].as_str().unwrap_or_default();
    assert!(why.contains("403"), "{refused}");
    let opened: Vec<String> = handshakes.all();
    assert_eq!(
        opened.iter().filter(|l| l.contains("\"/ws/")).count(),
        7,
        "{opened:?}"
    );
    assert!(!opened.iter().any(|l| l.contains("/other")), "{opened:?}");
    // `h2c` is not an upgrade a proxy makes: the request goes on as a
    // plain GET (the WebSocket server then asks for an upgrade: 426).
    let (_, head) = handshake_as(web, "/other", "h2c");
    assert!(head.starts_with("HTTP/1.1 426"), "{head}");
}

/// Writes a WebSocket handshake by hand and reads the answer's head.
fn handshake(addr: SocketAddr, path: &str) -> (TcpStream, String) {
    handshake_as(addr, path, "websocket")
}

/// [`handshake`] asking for `Upgrade: protocol`.
fn handshake_as(addr: SocketAddr, path: &str, protocol: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "closed before the head ended"
        );
        head.push(byte[0]);
    }
    (s, String::from_utf8(head).unwrap())
}

#[test]
fn a_silent_tunnel_is_cut_after_the_idle_timeout() {
    let (_server, _handshakes, port) = ws_server("ws2");
    let proxy = gateway("ws-idle", port, "1s");
    let (mut s, head) = handshake(proxy.addr("web-in"), "/ws/quiet");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: websocket"), "{head}");
    assert!(
        lower.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "the server's accept key comes through: {head}"
    );
    // The server's greeting arrives, then nothing moves either way.
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let mut got = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => panic!("the tunnel was not cut: {e} after {:?}", start.elapsed()),
        }
    }
    let took = start.elapsed();
    assert!(got > 0, "the greeting frame was relayed");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "cut after {took:?}"
    );
    let _ = s.write_all(b"\x88\x80\0\0\0\0");
}
