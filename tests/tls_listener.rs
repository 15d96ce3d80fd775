//! TLS termination on listeners, through the release binary, with TLS
//! clients nobody here wrote: curl, openssl s_client, grpcio and Apache
//! Thrift's `TSSLSocket`. Certificates are made per test with rcgen.

mod common;
#[path = "common/http.rs"]
mod http_peers;
#[path = "common/thrift.rs"]
mod thrift_peers;
#[path = "common/tls.rs"]
mod tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proxy, scratch_dir};
use http_peers::{Backend, CurlOut, GrpcServer, grpc_client};
use tls::{Ca, curl_https, s};

/// `openssl s_client` output (stdout and stderr) for one handshake.
fn s_client(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is needed for the TLS tests");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One HTTPS listener `https` with the `tls:` lines given, to `backend`.
fn start_https(test: &str, tls: &str, backend: &Backend) -> Proxy {
    let config = format!(
        r#"
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: https
    address: 127.0.0.1:0
    protocol: http
    tls:{tls}
    routes: [ {{ route: {{ cluster: b }} }} ]
clusters:
  - {{ name: b, protocol: http1, endpoints: [ {{ address: "{}" }} ] }}
"#,
        backend.address()
    );
    Proxy::start(test, &config)
}

#[test]
fn https_picks_the_certificate_by_sni_offers_h2_by_alpn_and_routes_on_sni() {
    let dir = scratch_dir("tls-sni");
    let ca = Ca::new(&dir, "main");
    let default = ca.issue(&dir, "default", "default.test", &["localhost"], None);
    let shop = ca.issue(
        &dir,
        "shop",
        "shop.example.com",
        &["shop.example.com", "*.shop.example.com"],
        None,
    );
    let shop_backend = Backend::start("shop");
    let other_backend = Backend::start("other");
    let config = format!(
        r#"
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: https
    address: 127.0.0.1:0
    protocol: http
    tls:
      certificates:
        - {{ cert: "{}", key: "{}" }}
        - {{ cert: "{}", key: "{}", server_names: ["shop.example.com", "*.shop.example.com"] }}
    routes:
      - match: [ {{ key: sni, exact: shop.example.com }} ]
        route: {{ cluster: shop }}
      - route: {{ cluster: other }}
clusters:
  - {{ name: shop, protocol: http1, endpoints: [ {{ address: "{}" }} ] }}
  - {{ name: other, protocol: http1, endpoints: [ {{ address: "{}" }} ] }}
"#,
        s(&default.cert),
        s(&default.key),
        s(&shop.cert),
        s(&shop.key),
        shop_backend.address(),
        other_backend.address(),
    );
    let proxy = Proxy::start("tls-sni", &config);
    let addr = proxy.addr("https");
    let ca = s(&ca.pem);

    // The shop certificate for its name (curl verifies it), routed by SNI,
    // over HTTP/1.1 and over HTTP/2 agreed by ALPN.
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let r = curl_https(
            addr,
            "shop.example.com",
            "/cart",
            ca,
            &[flag, "-w", "\nversion=%{http_version}"],
        );
        assert_eq!(r.status, 200, "{flag}: {r:?}\n{}", proxy.logs());
        assert!(r.body.starts_with("shop GET /cart"), "{r:?}");
        assert!(r.body.contains("x-forwarded-proto: https"), "{r:?}");
        assert!(
            r.body.ends_with(&format!("version={version}")),
            "{flag}: {r:?}"
        );
    }
    // A wildcard name gets the shop certificate but not the exact-SNI route.
    let r = curl_https(addr, "a.shop.example.com", "/", ca, &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.starts_with("other GET /"), "{r:?}");
    // Any other name (or none) gets the default certificate.
    let r = curl_https(addr, "localhost", "/", ca, &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.starts_with("other GET /"), "{r:?}");

    // openssl agrees on the certificate chosen and the ALPN protocol.
    let out = s_client(addr, &["-servername", "shop.example.com", "-alpn", "h2"]);
    assert!(
        out.contains("CN = shop.example.com") || out.contains("CN=shop.example.com"),
        "{out}"
    );
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    let out = s_client(addr, &["-servername", "nobody.test", "-alpn", "http/1.1"]);
    assert!(
        out.contains("CN = default.test") || out.contains("CN=default.test"),
        "{out}"
    );
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");

    assert!(
        proxy.metric("metaproxy_tls_handshakes_total{listener=\"https\",result=\"ok\"}") >= 6.0
    );
    let (status, certs) = proxy.admin("GET", "/certs");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&certs).unwrap();
    let list = v["listeners"][0]["certificates"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{certs}");
    assert!(
        list[1]["subject"]
            .as_str()
            .unwrap()
            .contains("shop.example.com"),
        "{certs}"
    );
    assert_eq!(list[1]["sans"][1], "*.shop.example.com", "{certs}");
    assert!(list[0]["not_after_unix"].as_i64().unwrap() > 0, "{certs}");
}

#[test]
fn mutual_tls_refuses_clients_without_a_valid_certificate_and_routes_on_the_spiffe_id() {
    let dir = scratch_dir("tls-mtls");
    let ca = Ca::new(&dir, "mesh");
    let rogue_ca = Ca::new(&dir, "rogue");
    let server = ca.issue(&dir, "server", "server", &["localhost"], None);
    let cart = ca.issue(
        &dir,
        "cart",
        "cart",
        &[],
        Some("spiffe://cluster.local/ns/shop/sa/cart"),
    );
    let other = ca.issue(
        &dir,
        "other",
        "other",
        &[],
        Some("spiffe://cluster.local/ns/shop/sa/other"),
    );
    let rogue = rogue_ca.issue(
        &dir,
        "rogue",
        "rogue",
        &[],
        Some("spiffe://cluster.local/ns/shop/sa/cart"),
    );
    let backend = Backend::start("orders");
    let config = format!(
        r#"
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: mtls
    address: 127.0.0.1:0
    protocol: http
    tls:
      certificates: [ {{ cert: "{cert}", key: "{key}" }} ]
      client_ca: "{ca}"
    routes:
      - match: [ {{ key: tls.peer.uri_san, exact: "spiffe://cluster.local/ns/shop/sa/cart" }} ]
        route: {{ cluster: orders }}
  - name: optional
    address: 127.0.0.1:0
    protocol: http
    tls:
      certificates: [ {{ cert: "{cert}", key: "{key}" }} ]
      client_ca: "{ca}"
      client_auth: optional
      min_version: "1.3"
    routes:
      - route: {{ cluster: orders }}
clusters:
  - {{ name: orders, protocol: http1, endpoints: [ {{ address: "{backend}" }} ] }}
"#,
        cert = s(&server.cert),
        key = s(&server.key),
        ca = s(&ca.pem),
        backend = backend.address(),
    );
    let proxy = Proxy::start("tls-mtls", &config);
    let addr = proxy.addr("mtls");
    let ca_pem = s(&ca.pem);

    let with = |leaf: &tls::Leaf| -> CurlOut {
        curl_https(
            addr,
            "localhost",
            "/orders",
            ca_pem,
            &["--cert", s(&leaf.cert), "--key", s(&leaf.key)],
        )
    };
    let r = with(&cart);
    assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
    assert!(r.body.starts_with("orders GET /orders"), "{r:?}");
    // A valid certificate with another identity matches no route.
    let r = with(&other);
    assert_eq!(r.status, 404, "{r:?}");
    // A certificate from another CA, or none, ends the handshake.
    let r = with(&rogue);
    assert_eq!(r.status, 0, "{r:?}");
    let r = curl_https(addr, "localhost", "/orders", ca_pem, &[]);
    assert_eq!(r.status, 0, "{r:?}");
    // TLS 1.2, where the refusal comes inside the handshake (with 1.3 it
    // comes after the client's Finished, which s_client may not wait for).
    let out = s_client(addr, &["-servername", "localhost", "-tls1_2"]);
    assert!(out.to_ascii_lowercase().contains("alert"), "{out}");
    assert!(
        proxy.wait_metric(
            "metaproxy_tls_handshakes_total{listener=\"mtls\",result=\"bad_client_certificate\"}",
            1.0
        ) >= 1.0
    );
    assert!(
        proxy.wait_metric(
            "metaproxy_tls_handshakes_total{listener=\"mtls\",result=\"no_client_certificate\"}",
            1.0
        ) >= 1.0
    );

    // `optional`: no certificate is fine, a bad one is not; TLS 1.2 is refused.
    let opt = proxy.addr("optional");
    let r = curl_https(opt, "localhost", "/", ca_pem, &[]);
    assert_eq!(r.status, 200, "{r:?}");
    let r = curl_https(
        opt,
        "localhost",
        "/",
        ca_pem,
        &["--cert", s(&rogue.cert), "--key", s(&rogue.key)],
    );
    assert_eq!(r.status, 0, "{r:?}");
    let r = curl_https(opt, "localhost", "/", ca_pem, &["--tls-max", "1.2"]);
    assert_eq!(r.status, 0, "{r:?}");
}

#[test]
fn bad_handshakes_close_that_connection_only() {
    let dir = scratch_dir("tls-bad");
    let ca = Ca::new(&dir, "main");
    let leaf = ca.issue(&dir, "server", "server", &["localhost"], None);
    let backend = Backend::start("b");
    let tls = format!(
        r#"
      certificates: [ {{ cert: "{}", key: "{}", server_names: [localhost] }} ]
      handshake_timeout: 1s
      strict_sni: true"#,
        s(&leaf.cert),
        s(&leaf.key)
    );
    let proxy = start_https("tls-bad", &tls, &backend);
    let addr = proxy.addr("https");
    let ca = s(&ca.pem);

    // A client that stalls mid-handshake, held open while others are served.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let stalled_at = Instant::now();

    // Plaintext HTTP to the TLS port, and garbage: closed, not hung.
    for bytes in [
        &b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00][..],
    ] {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(bytes).unwrap();
        let mut buf = Vec::new();
        let r = c.read_to_end(&mut buf);
        assert!(r.is_ok() || buf.is_empty(), "{r:?}");
        // At most a TLS alert comes back, never an HTTP answer.
        assert!(
            !String::from_utf8_lossy(&buf).contains("HTTP/1.1"),
            "{buf:?}"
        );
    }
    // An unknown SNI gets no certificate when SNI is strict.
    let r = curl_https(addr, "unknown.test", "/", ca, &["-k"]);
    assert_eq!(r.status, 0, "{r:?}");
    // Meanwhile a good client is served.
    let r = curl_https(addr, "localhost", "/", ca, &[]);
    assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());

    // The stalled client is closed at the handshake timeout.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let r = stalled.read(&mut buf);
    let waited = stalled_at.elapsed();
    assert!(
        matches!(r, Ok(0)) || r.is_err(),
        "stalled handshake not closed: {r:?}"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Each is counted once its connection is gone: wait for them.
    let count = |result: &str, n: f64| {
        proxy.wait_metric(
            &format!("metaproxy_tls_handshakes_total{{listener=\"https\",result=\"{result}\"}}"),
            n,
        )
    };
    assert!(
        count("timeout", 1.0) >= 1.0,
        "{}",
        proxy.admin("GET", "/metrics").1
    );
    assert!(
        count("bad_message", 2.0) >= 2.0,
        "{}",
        proxy.admin("GET", "/metrics").1
    );
    assert!(
        count("incompatible", 1.0) >= 1.0,
        "{}",
        proxy.admin("GET", "/metrics").1
    );
    assert!(count("ok", 1.0) >= 1.0);
}

#[test]
fn grpcio_and_thrift_tssl_sockets_through_tls_listeners() {
    let dir = scratch_dir("tls-rpc");
    let ca = Ca::new(&dir, "main");
    let leaf = ca.issue(&dir, "server", "server", &["localhost"], None);
    let grpc = GrpcServer::start("g1");
    let thrift = thrift_peers::ThriftServer::start("framed", "binary", "t1");
    let config = format!(
        r#"
listeners:
  - name: grpc
    address: 127.0.0.1:0
    protocol: http
    tls: {{ certificates: [ {{ cert: "{cert}", key: "{key}" }} ] }}
    routes: [ {{ route: {{ cluster: grpc, timeout: 5s }} }} ]
  - name: thrift
    address: 127.0.0.1:0
    protocol: thrift
    tls: {{ certificates: [ {{ cert: "{cert}", key: "{key}" }} ] }}
    routes: [ {{ route: {{ cluster: thrift, timeout: 5s }} }} ]
clusters:
  - {{ name: grpc, protocol: http2, endpoints: [ {{ address: "{grpc}" }} ] }}
  - {{ name: thrift, protocol: thrift, endpoints: [ {{ address: "{thrift}" }} ] }}
"#,
        cert = s(&leaf.cert),
        key = s(&leaf.key),
        grpc = grpc.address(),
        thrift = thrift.address(),
    );
    let proxy = Proxy::start("tls-rpc", &config);

    let v = grpc_client(
        proxy.addr("grpc"),
        &[
            "--call",
            "unary",
            "--count",
            "5",
            "--tls-ca",
            s(&ca.pem),
            "--tls-name",
            "localhost",
        ],
    );
    assert_eq!(v["ok"], 5, "{v}\n{}", proxy.logs());

    let r = thrift_peers::client(
        proxy.addr("thrift").port(),
        &[
            "--count",
            "5",
            "--tls-ca",
            s(&ca.pem),
            "--tls-name",
            "localhost",
        ],
    );
    assert_eq!(r.ok, 5, "{}\n{}", r.raw, proxy.logs());
    // The same client without TLS is refused by the TLS port.
    let r = thrift_peers::client(
        proxy.addr("thrift").port(),
        &["--count", "1", "--timeout-ms", "3000"],
    );
    assert_eq!(r.ok, 0, "{}", r.raw);
}

#[test]
fn certificates_rotate_live_without_failing_a_request_and_a_broken_pair_is_refused() {
    let dir = scratch_dir("tls-rotate");
    let ca = Ca::new(&dir, "main");
    let live = ca.issue(&dir, "live", "before.test", &["localhost"], None);
    let backend = Backend::start("b");
    let tls = format!(
        r#"
      certificates: [ {{ cert: "{}", key: "{}" }} ]"#,
        s(&live.cert),
        s(&live.key)
    );
    let proxy = start_https("tls-rotate", &tls, &backend);
    let addr = proxy.addr("https");
    let ca_pem = s(&ca.pem).to_string();
    let subject = |proxy: &Proxy| -> String {
        let (_, certs) = proxy.admin("GET", "/certs");
        let v: serde_json::Value = serde_json::from_str(&certs).unwrap();
        v["listeners"][0]["certificates"][0]["subject"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(subject(&proxy).contains("before.test"));

    // A client loop runs while the files are replaced: requests are
    // answered before the swap and after it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let looping = {
        let (stop, sent) = (stop.clone(), sent.clone());
        let ca_pem = ca_pem.clone();
        std::thread::spawn(move || {
            let mut results = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = curl_https(addr, "localhost", "/", &ca_pem, &[]);
                results.push(r.status);
                sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            results
        })
    };
    let answered_at_least = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while sent.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "{}", proxy.logs());
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    answered_at_least(3);
    // Replace both files atomically (write aside, rename over).
    let (cert, key) = ca.issue_pem("after.test", &["localhost"], None);
    std::fs::write(dir.join("next.pem"), cert).unwrap();
    std::fs::write(dir.join("next.key"), key).unwrap();
    std::fs::rename(dir.join("next.key"), &live.key).unwrap();
    std::fs::rename(dir.join("next.pem"), &live.cert).unwrap();
    let replaced = Instant::now();
    let served_new = loop {
        let r = curl_https(addr, "localhost", "/", &ca_pem, &["-v"]);
        if r.stderr.contains("after.test") {
            break replaced.elapsed();
        }
        assert!(
            replaced.elapsed() < Duration::from_secs(5),
            "{r:?}\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(served_new < Duration::from_secs(2), "{served_new:?}");
    answered_at_least(sent.load(std::sync::atomic::Ordering::SeqCst) + 3);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let results = looping.join().unwrap();
    assert!(results.len() >= 6, "{results:?}");
    assert!(results.iter().all(|s| *s == 200), "{results:?}");
    assert!(subject(&proxy).contains("after.test"));

    // A key that does not match its certificate is refused; the pair
    // before it keeps serving.
    let rejected = |proxy: &Proxy| {
        proxy.metric(
            "metaproxy_tls_certificate_reloads_total{listener=\"https\",result=\"rejected\"}",
        )
    };
    let before = rejected(&proxy);
    let (_, wrong_key) = ca.issue_pem("wrong.test", &["localhost"], None);
    std::fs::write(&live.key, wrong_key).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while rejected(&proxy) <= before {
        assert!(Instant::now() < deadline, "{}", proxy.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = curl_https(addr, "localhost", "/", &ca_pem, &["-v"]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.stderr.contains("after.test"), "{r:?}");
    assert!(
        proxy.metric("metaproxy_tls_certificate_reloads_total{listener=\"https\",result=\"ok\"}")
            >= 1.0
    );
}
