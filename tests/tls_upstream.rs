//! TLS from clusters to their endpoints, through the release binary, with
//! TLS servers nobody here wrote: Python's `ssl` HTTPS server (requiring a
//! client certificate), grpcio with `ssl_server_credentials`, and Apache
//! Thrift's `TSSLServerSocket`.

mod common;
#[path = "common/http.rs"]
mod http_peers;
#[path = "common/thrift.rs"]
mod thrift_peers;
#[path = "common/tls.rs"]
mod tls;

use common::{Proxy, scratch_dir};
use http_peers::{GrpcServer, curl, grpc_client};
use tls::{Ca, HttpsServer, s};

#[test]
fn http_clusters_verify_their_endpoints_and_present_client_certificates() {
    let dir = scratch_dir("tls-up-http");
    let ca = Ca::new(&dir, "main");
    let rogue_ca = Ca::new(&dir, "rogue");
    let server = ca.issue(&dir, "server", "server", &["localhost"], None);
    let expired = ca.issue_expired(&dir, "expired", "expired", &["localhost"]);
    let rogue = rogue_ca.issue(&dir, "rogue", "rogue", &["localhost"], None);
    let client = ca.issue(&dir, "client", "proxy-client", &[], None);

    let mtls = HttpsServer::start("mtls", &server, Some(&ca.pem));
    let old = HttpsServer::start("expired", &expired, None);
    let other = HttpsServer::start("rogue", &rogue, None);
    let config = format!(
        r#"
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - {{ match: [ {{ key: ":path", prefix: /ok }} ], route: {{ cluster: secure }} }}
      - {{ match: [ {{ key: ":path", prefix: /nocert }} ], route: {{ cluster: nocert }} }}
      - {{ match: [ {{ key: ":path", prefix: /expired }} ], route: {{ cluster: expired }} }}
      - {{ match: [ {{ key: ":path", prefix: /wrongca }} ], route: {{ cluster: wrongca }} }}
      - {{ match: [ {{ key: ":path", prefix: /unverified }} ], route: {{ cluster: unverified }} }}
clusters:
  - name: secure
    protocol: http1
    tls: {{ sni: localhost, ca: "{ca}", cert: "{cert}", key: "{key}" }}
    endpoints: [ {{ address: "{mtls}" }} ]
  - name: nocert
    protocol: http1
    tls: {{ sni: localhost, ca: "{ca}" }}
    endpoints: [ {{ address: "{mtls}" }} ]
  - name: expired
    protocol: http1
    tls: {{ sni: localhost, ca: "{ca}" }}
    endpoints: [ {{ address: "{old}" }} ]
  - name: wrongca
    protocol: http1
    tls: {{ sni: localhost, ca: "{ca}" }}
    endpoints: [ {{ address: "{other}" }} ]
  - name: unverified
    protocol: http1
    tls: {{ verify: false }}
    endpoints: [ {{ address: "{other}" }} ]
"#,
        ca = s(&ca.pem),
        cert = s(&client.cert),
        key = s(&client.key),
        mtls = mtls.address(),
        old = old.address(),
        other = other.address(),
    );
    let proxy = Proxy::start("tls-up-http", &config);
    let base = format!("http://{}", proxy.addr("in"));

    // Pooled: several requests, the server sees the proxy's certificate.
    for i in 0..3 {
        let r = curl(&[&format!("{base}/ok/{i}")]);
        assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
        assert_eq!(
            r.body,
            format!("mtls /ok/{i} peer=commonName=proxy-client\n"),
            "{r:?}"
        );
    }
    // The server refusing the missing client certificate: with TLS 1.3
    // its alert comes after the client's side of the handshake is done,
    // so it shows on the first exchange, named by the alert.
    let r = curl(&[&format!("{base}/nocert")]);
    assert!(matches!(r.status, 502 | 503), "{r:?}");
    assert!(r.body.contains("CertificateRequired"), "{r:?}");
    // An endpoint that cannot be trusted is a 503 naming the reason.
    for (path, why) in [
        ("/expired", "certificate expired"),
        ("/wrongca", "UnknownIssuer"),
    ] {
        let r = curl(&[&format!("{base}{path}")]);
        assert_eq!(r.status, 503, "{path}: {r:?}");
        assert_eq!(
            r.header("x-metaproxy-reason"),
            Some("connect_failure"),
            "{r:?}"
        );
        assert!(r.body.contains(why), "{path}: {r:?}");
    }
    let r = curl(&[&format!("{base}/unverified")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.starts_with("rogue /unverified"), "{r:?}");
    assert!(
        proxy.metric("metaproxy_local_replies_total{listener=\"in\",reason=\"connect_failure\"}")
            >= 2.0
    );
}

#[test]
fn grpc_and_thrift_clusters_over_tls() {
    let dir = scratch_dir("tls-up-rpc");
    let ca = Ca::new(&dir, "main");
    let server = ca.issue(&dir, "server", "server", &["localhost"], None);
    // Thrift's TSSLServerSocket checks a client certificate's names
    // against the client's address.
    let client = ca.issue(&dir, "client", "proxy-client", &["127.0.0.1"], None);
    let grpc = GrpcServer::start_with(
        "g-tls",
        &["--tls-cert", s(&server.cert), "--tls-key", s(&server.key)],
    );
    let thrift = thrift_peers::ThriftServer::start_with(
        "framed",
        "binary",
        "t-tls",
        &[
            "--tls-cert",
            s(&server.cert),
            "--tls-key",
            s(&server.key),
            "--tls-client-ca",
            s(&ca.pem),
        ],
    );
    let config = format!(
        r#"
listeners:
  - name: grpc
    address: 127.0.0.1:0
    protocol: http
    routes: [ {{ route: {{ cluster: grpc, timeout: 5s }} }} ]
  - name: thrift
    address: 127.0.0.1:0
    protocol: thrift
    routes: [ {{ route: {{ cluster: thrift, timeout: 5s }} }} ]
clusters:
  - name: grpc
    protocol: http2
    tls: {{ sni: localhost, ca: "{ca}" }}
    endpoints: [ {{ address: "{grpc}" }} ]
  - name: thrift
    protocol: thrift
    tls: {{ sni: localhost, ca: "{ca}", cert: "{cert}", key: "{key}" }}
    endpoints: [ {{ address: "{thrift}" }} ]
"#,
        ca = s(&ca.pem),
        cert = s(&client.cert),
        key = s(&client.key),
        grpc = grpc.address(),
        thrift = thrift.address(),
    );
    let proxy = Proxy::start("tls-up-rpc", &config);

    // grpcio's TLS server only speaks HTTP/2 agreed by ALPN.
    let v = grpc_client(proxy.addr("grpc"), &["--call", "unary", "--count", "5"]);
    assert_eq!(v["ok"], 5, "{v}\n{}", proxy.logs());
    let v = grpc_client(
        proxy.addr("grpc"),
        &["--call", "server_stream", "--payload", "3"],
    );
    assert_eq!(v["ok"], 1, "{v}\n{}", proxy.logs());
    assert_eq!(v["results"]["g-tls:0|g-tls:1|g-tls:2"], 1, "{v}");

    let r = thrift_peers::client(
        proxy.addr("thrift").port(),
        &["--count", "5", "--concurrency", "2"],
    );
    assert_eq!(r.ok, 5, "{}\n{}", r.raw, proxy.logs());
    assert_eq!(r.result("Hello bob, from t-tls"), 5, "{}", r.raw);
}

#[test]
fn health_checks_of_a_tls_cluster_go_over_tls() {
    let dir = scratch_dir("tls-up-health");
    let ca = Ca::new(&dir, "main");
    let server = ca.issue(&dir, "server", "server", &["localhost"], None);
    let expired = ca.issue_expired(&dir, "expired", "expired", &["localhost"]);
    let client = ca.issue(&dir, "client", "proxy-client", &[], None);
    let good = HttpsServer::start("good", &server, Some(&ca.pem));
    let bad = HttpsServer::start("bad", &expired, None);
    let config = format!(
        r#"
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: in
    address: 127.0.0.1:0
    protocol: http
    routes: [ {{ route: {{ cluster: secure }} }} ]
clusters:
  - name: secure
    protocol: http1
    tls: {{ sni: localhost, ca: "{ca}", cert: "{cert}", key: "{key}" }}
    health_check: {{ kind: protocol, interval: 100ms, timeout: 1s, unhealthy_threshold: 1, healthy_threshold: 1 }}
    endpoints: [ {{ address: "{good}" }}, {{ address: "{bad}" }} ]
"#,
        ca = s(&ca.pem),
        cert = s(&client.cert),
        key = s(&client.key),
        good = good.address(),
        bad = bad.address(),
    );
    let proxy = Proxy::start("tls-up-health", &config);
    // The probe over TLS passes on the good endpoint (which requires the
    // client certificate) and fails on the expired one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let verdicts = loop {
        let (_, body) = proxy.admin("GET", "/clusters");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let eps = v["clusters"][0]["endpoints"].as_array().unwrap().clone();
        let healthy: Vec<bool> = eps.iter().map(|e| e["healthy"] == true).collect();
        if healthy == [true, false] || std::time::Instant::now() > deadline {
            break healthy;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(verdicts, [true, false], "{}", proxy.logs());
    assert!(
        proxy.wait_metric(
            "metaproxy_health_checks_total{cluster=\"secure\",result=\"pass\"}",
            2.0
        ) >= 2.0
    );
    // Traffic goes to the healthy endpoint only.
    let base = format!("http://{}", proxy.addr("in"));
    for i in 0..4 {
        let r = curl(&[&format!("{base}/h/{i}")]);
        assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
        assert!(r.body.starts_with("good /h/"), "{r:?}");
    }
}
