//! Clusters that speak another transport or protocol than the client
//! (translation), THeader mutations from filters, and the local replies a
//! Python client sees for timeouts, dead endpoints and impossible mutations.

mod common;
#[path = "common/thrift.rs"]
mod thrift_peers;

use common::Proxy;
use thrift_peers::{ThriftServer, client};

struct Setup {
    proxy: Proxy,
    _servers: Vec<ThriftServer>,
}

fn start(test: &str) -> Setup {
    let framed = ThriftServer::start("framed", "binary", "framed-binary");
    let compact = ThriftServer::start("buffered", "compact", "buffered-compact");
    let header = ThriftServer::start("header", "compact", "header");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = format!(
        r#"
listeners:
  - name: to-framed
    address: 127.0.0.1:0
    protocol: thrift
    routes: [ {{ route: {{ cluster: framed, timeout: 5s }} }} ]
  - name: to-compact
    address: 127.0.0.1:0
    protocol: thrift
    routes: [ {{ route: {{ cluster: compact, timeout: 5s }} }} ]
  - name: to-header
    address: 127.0.0.1:0
    protocol: thrift
    filters:
      - metadata_mutation: {{ request: {{ set: {{ x-forwarded-by: metaproxy }} }} }}
    routes: [ {{ route: {{ cluster: header, timeout: 5s }} }} ]
  - name: bad-mutation
    address: 127.0.0.1:0
    protocol: thrift
    filters:
      - metadata_mutation: {{ request: {{ set: {{ x-forwarded-by: metaproxy }} }} }}
    routes: [ {{ route: {{ cluster: framed, timeout: 5s }} }} ]
  - name: slow
    address: 127.0.0.1:0
    protocol: thrift
    routes: [ {{ route: {{ cluster: framed, timeout: 300ms }} }} ]
  - name: dead
    address: 127.0.0.1:0
    protocol: thrift
    routes: [ {{ route: {{ cluster: dead, timeout: 2s }} }} ]
clusters:
  - name: framed
    protocol: thrift
    options: {{ transport: framed, protocol: binary }}
    endpoints: [ {{ address: {} }} ]
  - name: compact
    protocol: thrift
    options: {{ transport: buffered, protocol: compact }}
    endpoints: [ {{ address: {} }} ]
  - name: header
    protocol: thrift
    options: {{ transport: header }}
    endpoints: [ {{ address: {} }} ]
  - name: dead
    protocol: thrift
    options: {{ transport: framed }}
    endpoints: [ {{ address: {dead} }} ]
"#,
        framed.address(),
        compact.address(),
        header.address()
    );
    Setup {
        proxy: Proxy::start(test, &config),
        _servers: vec![framed, compact, header],
    }
}

const CLIENTS: [(&str, &str); 6] = [
    ("framed", "binary"),
    ("framed", "compact"),
    ("buffered", "binary"),
    ("buffered", "compact"),
    ("header", "binary"),
    ("header", "compact"),
];

#[test]
fn any_client_format_reaches_a_framed_binary_server() {
    let s = start("thrift-to-framed");
    let port = s.proxy.addr("to-framed").port();
    for (t, p) in CLIENTS {
        let r = client(port, &["--transport", t, "--protocol", p, "--count", "5"]);
        assert_eq!(
            r.result("Hello bob, from framed-binary"),
            5,
            "{t}/{p}: {} / logs:\n{}",
            r.raw,
            s.proxy.logs()
        );
        let r = client(
            port,
            &["--transport", t, "--protocol", p, "--method", "echo"],
        );
        assert_eq!(r.result("echo-ok"), 1, "{t}/{p}: {}", r.raw);
    }
    // Non-strict binary clients are answered in non-strict binary.
    let r = client(
        port,
        &["--transport", "buffered", "--non-strict", "--count", "2"],
    );
    assert_eq!(r.ok, 2, "{}", r.raw);
}

#[test]
fn binary_clients_reach_a_compact_server_and_back() {
    let s = start("thrift-to-compact");
    let port = s.proxy.addr("to-compact").port();
    for (t, p) in CLIENTS {
        let r = client(port, &["--transport", t, "--protocol", p, "--count", "3"]);
        assert_eq!(
            r.result("Hello bob, from buffered-compact"),
            3,
            "{t}/{p}: {} / logs:\n{}",
            r.raw,
            s.proxy.logs()
        );
        let r = client(
            port,
            &["--transport", t, "--protocol", p, "--method", "echo"],
        );
        assert_eq!(r.result("echo-ok"), 1, "{t}/{p}: {}", r.raw);
        let r = client(
            port,
            &[
                "--transport",
                t,
                "--protocol",
                p,
                "--method",
                "fail",
                "--arg",
                "x",
            ],
        );
        assert_eq!(r.exceptions("MyError"), 1, "{t}/{p}: {}", r.raw);
        let r = client(
            port,
            &["--transport", t, "--protocol", p, "--method", "nosuch"],
        );
        // The server's own UNKNOWN_METHOD exception, translated back.
        assert_eq!(r.exceptions("1"), 1, "{t}/{p}: {}", r.raw);
    }
}

#[test]
fn filter_mutations_become_theader_headers() {
    let s = start("thrift-mutation");
    let port = s.proxy.addr("to-header").port();
    for (t, p) in CLIENTS {
        let r = client(
            port,
            &[
                "--transport",
                t,
                "--protocol",
                p,
                "--method",
                "header",
                "--arg",
                "x-forwarded-by",
            ],
        );
        assert_eq!(
            r.result("metaproxy"),
            1,
            "{t}/{p}: {} / logs:\n{}",
            r.raw,
            s.proxy.logs()
        );
    }
    // The client's own headers are kept next to the added one.
    let r = client(
        port,
        &[
            "--transport",
            "header",
            "--method",
            "header",
            "--arg",
            "mine",
            "--header",
            "mine=kept",
        ],
    );
    assert_eq!(r.result("kept"), 1, "{}", r.raw);
}

#[test]
fn a_mutation_a_headerless_cluster_cannot_carry_is_an_error_reply() {
    let s = start("thrift-bad-mutation");
    let port = s.proxy.addr("bad-mutation").port();
    let r = client(port, &["--transport", "header"]);
    assert_eq!(r.errors, 1, "{}", r.raw);
    assert_eq!(r.exceptions("7"), 1, "PROTOCOL_ERROR expected: {}", r.raw);
    assert!(r.has_message("cannot carry headers"), "{}", r.raw);
}

#[test]
fn timeouts_and_dead_endpoints_are_internal_errors() {
    let s = start("thrift-local-replies");
    let r = client(
        s.proxy.addr("slow").port(),
        &["--method", "sleep", "--arg", "1500"],
    );
    assert_eq!(r.exceptions("6"), 1, "INTERNAL_ERROR expected: {}", r.raw);
    assert!(r.has_message("timeout"), "{}", r.raw);
    let r = client(s.proxy.addr("dead").port(), &["--protocol", "compact"]);
    assert_eq!(r.exceptions("6"), 1, "{}", r.raw);
    assert!(r.has_message("metaproxy:"), "{}", r.raw);
}
