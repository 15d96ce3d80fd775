//! `protocol: tls_passthrough`: TLS connections routed by their SNI and
//! relayed without decryption, through the release binary. curl verifies
//! the backend's own certificate end to end (the proxy has no key), and
//! Python's `ssl` servers are the backends.

mod common;
#[path = "common/http.rs"]
mod http_peers;
#[path = "common/tls.rs"]
mod tls;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Proxy, dead_address, scratch_dir};
use tls::{Ca, HttpsServer, curl_https, s};

#[test]
fn tls_is_routed_by_sni_without_decrypting_it() {
    let dir = scratch_dir("tls-pass");
    let ca = Ca::new(&dir, "main");
    let db_leaf = ca.issue(&dir, "db", "db.example.com", &["db.example.com"], None);
    let api_leaf = ca.issue(&dir, "api", "api.example.com", &["api.example.com"], None);
    let db = HttpsServer::start("db", &db_leaf, None);
    let api = HttpsServer::start("api", &api_leaf, None);
    let config = format!(
        r#"
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: pass
    address: 127.0.0.1:0
    protocol: tls_passthrough
    limits: {{ header_read_timeout: 1s }}
    filters:
      - authz:
          default: allow
          rules:
            - {{ name: no-secret, action: deny, match: [ {{ key: sni, exact: secret.example.com }} ] }}
    routes:
      - name: db
        match: [ {{ key: sni, exact: db.example.com }} ]
        route: {{ cluster: db }}
      - name: api
        match: [ {{ key: sni, suffix: .example.com }} ]
        route: {{ cluster: api, retries: {{ attempts: 2, on: [connect-failure] }} }}
clusters:
  - {{ name: db, protocol: tls_passthrough, endpoints: [ {{ address: "{db}" }} ] }}
  - name: api
    protocol: tls_passthrough
    lb: round_robin
    connect_timeout: 500ms
    endpoints: [ {{ address: "{dead}" }}, {{ address: "{api}" }} ]
"#,
        db = db.address(),
        api = api.address(),
        dead = dead_address(),
    );
    let proxy = Proxy::start("tls-pass", &config);
    let addr = proxy.addr("pass");
    let ca = s(&ca.pem);

    // curl verifies each backend's certificate for the name it asked for:
    // the bytes went through unchanged.
    for i in 0..3 {
        let r = curl_https(addr, "db.example.com", &format!("/q/{i}"), ca, &[]);
        assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
        assert_eq!(r.body, format!("db /q/{i} peer=-\n"), "{r:?}");
    }
    // A dead endpoint is skipped by the retry on connect failure.
    for _ in 0..4 {
        let r = curl_https(addr, "api.example.com", "/v1", ca, &[]);
        assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
        assert_eq!(r.body, "api /v1 peer=-\n", "{r:?}");
    }
    // A name no route takes: the connection is closed.
    let r = curl_https(addr, "nobody.test", "/", ca, &[]);
    assert_eq!(r.status, 0, "{r:?}");
    assert!(
        proxy.wait_metric(
            "metaproxy_local_replies_total{listener=\"pass\",reason=\"route_not_found\"}",
            1.0
        ) >= 1.0
    );
    assert!(
        proxy.metric(
            "metaproxy_requests_total{listener=\"pass\",route=\"db\",cluster=\"db\",protocol=\"tls_passthrough\",outcome=\"success\"}"
        ) >= 3.0,
        "{}",
        proxy.admin("GET", "/metrics").1
    );

    // The listener's filters run on passthrough connections too: a name
    // the api route would take is denied by authz, and closed.
    let r = curl_https(addr, "secret.example.com", "/", ca, &[]);
    assert_eq!(r.status, 0, "{r:?}");
    assert!(
        proxy.wait_metric(
            "metaproxy_local_replies_total{listener=\"pass\",reason=\"permission_denied\"}",
            1.0
        ) >= 1.0,
        "{}",
        proxy.admin("GET", "/metrics").1
    );

    // Plaintext, and a client that sends nothing: closed, others unaffected.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nhost: db.example.com\r\n\r\n")
        .unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(buf.is_empty(), "{buf:?}");
    let mut silent = TcpStream::connect(addr).unwrap();
    let r = curl_https(addr, "db.example.com", "/still", ca, &[]);
    assert_eq!(r.status, 200, "{r:?}");
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = std::time::Instant::now();
    let n = silent.read(&mut [0u8; 8]);
    assert!(matches!(n, Ok(0)) || n.is_err(), "{n:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn passthrough_listeners_refuse_a_tls_section() {
    let dir = scratch_dir("tls-pass-bad");
    let ca = Ca::new(&dir, "main");
    let leaf = ca.issue(&dir, "x", "x", &["localhost"], None);
    let text = format!(
        r#"
listeners:
  - name: pass
    address: 127.0.0.1:0
    protocol: tls_passthrough
    tls: {{ certificates: [ {{ cert: "{}", key: "{}" }} ] }}
    routes: [ {{ route: {{ cluster: c }} }} ]
clusters:
  - {{ name: c, protocol: tls_passthrough, endpoints: [ {{ address: 127.0.0.1:1 }} ] }}
"#,
        s(&leaf.cert),
        s(&leaf.key)
    );
    let path = common::write_config("tls-pass-bad", &text);
    let (ok, _, err) = common::validate(&path);
    assert!(!ok);
    assert!(err.contains("relays TLS as it is"), "{err}");
}
