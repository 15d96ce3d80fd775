//! The L7 filters over Thrift, through the real binary with Apache
//! Thrift's Python client and server: what a real Thrift client sees when a
//! filter answers (a `TApplicationException`), and THeader headers as the
//! metadata filters read and write.

mod common;
#[path = "common/thrift.rs"]
mod thrift_peers;

use common::Proxy;
use thrift_peers::{ThriftServer, client};

/// TApplicationException type INTERNAL_ERROR (permission and rate limits have no own type).
const INTERNAL_ERROR: &str = "6";

fn start(test: &str, server: &ThriftServer, filters: &str) -> Proxy {
    Proxy::start(
        test,
        &format!(
            r#"listeners:
  - name: thrift-in
    address: 127.0.0.1:0
    protocol: thrift
    filters:
{filters}
    routes:
      - route: {{ cluster: backend }}
clusters:
  - name: backend
    protocol: thrift
    options: {{ transport: header }}
    endpoints: [ {{ address: "{}" }} ]
"#,
            server.address()
        ),
    )
}

#[test]
fn authz_denies_by_theader_header_with_an_application_exception() {
    let server = ThriftServer::start("header", "binary", "t");
    let proxy = start(
        "thrift-authz",
        &server,
        "      - authz:\n          default: allow\n          rules:\n            - { name: no-guests, action: deny, match: [ { key: x-role, exact: guest } ] }\n",
    );
    let port = proxy.addr("thrift-in").port();
    let denied = client(port, &["--transport", "header", "--header", "x-role=guest"]);
    assert_eq!(denied.exceptions(INTERNAL_ERROR), 1, "{}", denied.raw);
    assert!(denied.has_message("permission denied"), "{}", denied.raw);
    let allowed = client(port, &["--transport", "header", "--header", "x-role=admin"]);
    assert_eq!(allowed.ok, 1, "{}", allowed.raw);
    assert!(server.calls.count("hello") >= 1);
}

#[test]
fn local_ratelimit_and_trace_context_over_thrift() {
    let server = ThriftServer::start("header", "binary", "t");
    let proxy = start(
        "thrift-ratelimit",
        &server,
        "      - local_ratelimit: { tokens_per_second: 0.001, burst: 3 }\n      - trace_context: {}\n",
    );
    let port = proxy.addr("thrift-in").port();
    let s = client(port, &["--transport", "header", "--count", "6"]);
    assert_eq!(s.ok, 3, "burst of 3: {}", s.raw);
    assert_eq!(s.exceptions(INTERNAL_ERROR), 3, "{}", s.raw);
    assert!(s.has_message("over limit"), "{}", s.raw);
    // The admitted calls reached the server with a traceparent THeader header.
    let call = server
        .wait_call("hello", std::time::Duration::from_secs(5))
        .expect("a call");
    let tp = call["headers"]["traceparent"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        metaproxy::filters::trace_context::is_traceparent(&tp),
        "{call}"
    );
}
