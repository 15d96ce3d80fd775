//! Thrift end to end through the real binary, with Apache Thrift's Python
//! library as both the clients and the servers: every transport × protocol,
//! calls, oneway, declared exceptions, multiplexed services.

mod common;
#[path = "common/thrift.rs"]
mod thrift_peers;

use std::time::Duration;

use common::Proxy;
use thrift_peers::{ThriftServer, client};

const FORMATS: [(&str, &str); 6] = [
    ("framed", "binary"),
    ("framed", "compact"),
    ("buffered", "binary"),
    ("buffered", "compact"),
    ("header", "binary"),
    ("header", "compact"),
];

fn name(t: &str, p: &str) -> String {
    format!("{t}-{p}")
}

/// One listener and one passthrough cluster per format, each to its own server.
fn start_all() -> (Proxy, Vec<ThriftServer>) {
    let servers: Vec<ThriftServer> = FORMATS
        .iter()
        .map(|(t, p)| ThriftServer::start(t, p, &name(t, p)))
        .collect();
    let mut listeners = String::new();
    let mut clusters = String::new();
    for ((t, p), s) in FORMATS.iter().zip(&servers) {
        let n = name(t, p);
        listeners.push_str(&format!(
            "  - name: {n}\n    address: 127.0.0.1:0\n    protocol: thrift\n    routes:\n      - route: {{ cluster: {n}, timeout: 5s }}\n"
        ));
        clusters.push_str(&format!(
            "  - name: {n}\n    protocol: thrift\n    endpoints: [ {{ address: {} }} ]\n",
            s.address()
        ));
    }
    let config = format!("listeners:\n{listeners}clusters:\n{clusters}");
    (Proxy::start("thrift-pairs", &config), servers)
}

#[test]
fn every_transport_and_protocol_round_trips_through_the_proxy() {
    let (proxy, servers) = start_all();
    for ((t, p), server) in FORMATS.iter().zip(&servers) {
        let port = proxy.addr(&name(t, p)).port();
        let fmt = ["--transport", t, "--protocol", p];
        let what = format!("{t}/{p}");

        let s = client(
            port,
            &[&fmt[..], &["--count", "20", "--concurrency", "4"]].concat(),
        );
        assert_eq!(
            s.ok,
            20,
            "{what}: {} / proxy logs:\n{}",
            s.raw,
            proxy.logs()
        );
        assert_eq!(
            s.result(&format!("Hello bob, from {}", server.tag)),
            20,
            "{what}: {}",
            s.raw
        );

        // A declared exception raised by the server arrives as such.
        let s = client(
            port,
            &[
                &fmt[..],
                &["--method", "fail", "--arg", "boom from the server"],
            ]
            .concat(),
        );
        assert_eq!(s.exceptions("MyError"), 1, "{what}: {}", s.raw);
        assert!(s.has_message("boom from the server"), "{what}: {}", s.raw);

        // A struct with every field type survives the trip.
        let s = client(port, &[&fmt[..], &["--method", "echo"]].concat());
        assert_eq!(s.result("echo-ok"), 1, "{what}: {}", s.raw);

        // Oneway calls reach the server.
        let s = client(
            port,
            &[&fmt[..], &["--method", "notify", "--arg", "ping"]].concat(),
        );
        assert_eq!(s.ok, 1, "{what}: {}", s.raw);
        let call = server.wait_call("notify", Duration::from_secs(10));
        assert_eq!(
            call.map(|c| c["args"]["msg"].clone()),
            Some("ping".into()),
            "{what}"
        );

        // Multiplexed service names pass through untouched.
        let s = client(
            port,
            &[&fmt[..], &["--multiplexed", "Calculator", "--arg", "2,3"]].concat(),
        );
        assert_eq!(s.result("5"), 1, "{what}: {}", s.raw);
    }
}

#[test]
fn theader_headers_reach_the_server_and_answers_keep_the_format() {
    let (proxy, servers) = start_all();
    for p in ["binary", "compact"] {
        let port = proxy.addr(&name("header", p)).port();
        let s = client(
            port,
            &[
                "--transport",
                "header",
                "--protocol",
                p,
                "--method",
                "header",
                "--arg",
                "x-User",
                "--header",
                "x-User=alice",
            ],
        );
        assert_eq!(s.result("alice"), 1, "{p}: {}", s.raw);
        let server = servers.iter().find(|s| s.tag == name("header", p)).unwrap();
        let call = server.wait_call("header", Duration::from_secs(5)).unwrap();
        assert_eq!(call["headers"]["x-User"], "alice", "{call}");
    }
}

#[test]
fn bad_thrift_options_are_reported_with_their_position() {
    let path = common::write_config(
        "thrift-bad-options",
        r#"listeners:
  - name: in
    address: 127.0.0.1:0
    protocol: thrift
    options: { transport: tcp }
    routes: [ { route: { cluster: c } } ]
clusters:
  - name: c
    protocol: thrift
    options: { transport: framed, compression: zlib }
    endpoints: [ { address: 127.0.0.1:1 } ]
"#,
    );
    let (ok, out, err) = common::validate(&path);
    let text = format!("{out}{err}");
    assert!(!ok, "{text}");
    assert!(
        text.contains("tcp") && text.contains("compression"),
        "{text}"
    );
    assert!(
        text.contains(":4:") || text.contains(":5:"),
        "listener error has a position: {text}"
    );
}
