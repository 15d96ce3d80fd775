//! `protocol: auto`: one port serving HTTP/1.1, HTTP/2 and gRPC, Dubbo and
//! Thrift, each plain and over TLS, through the release binary, with
//! clients nobody here wrote (curl, grpcio, sofa-rpc-node, Apache Thrift
//! Python) and one route table matching on `protocol`.

mod common;
#[path = "common/http.rs"]
mod http_peers;
#[path = "common/thrift.rs"]
mod thrift_peers;
#[path = "common/tls.rs"]
mod tls;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{DubboProvider, Proxy, dubbo_client, scratch_dir};
use http_peers::{Backend, GrpcServer, curl, grpc_client};
use thrift_peers::ThriftServer;
use tls::{Ca, s, tunnel};

#[test]
fn one_port_serves_every_protocol_plain_and_over_tls() {
    let dir = scratch_dir("auto");
    let ca = Ca::new(&dir, "main");
    let leaf = ca.issue(&dir, "server", "server", &["localhost"], None);
    let web = Backend::start("web");
    let grpc = GrpcServer::start("g1");
    let dubbo = DubboProvider::start("dubbo-p");
    let thrift = ThriftServer::start("framed", "binary", "thrift-p");
    let config = format!(
        r#"
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: any
    address: 127.0.0.1:0
    protocol: auto
    limits: {{ header_read_timeout: 1s }}
    tls: {{ certificates: [ {{ cert: "{cert}", key: "{key}" }} ] }}
    routes:
      - name: grpc
        match: [ {{ key: protocol, exact: http }}, {{ key: ":path", prefix: /demo.Echo/ }} ]
        route: {{ cluster: grpc, timeout: 5s }}
      - name: web
        match: [ {{ key: protocol, exact: http }} ]
        route: {{ cluster: web }}
      - name: dubbo
        match: [ {{ key: protocol, exact: dubbo }} ]
        route: {{ cluster: dubbo, timeout: 5s }}
      - name: thrift
        match: [ {{ key: protocol, exact: thrift }} ]
        route: {{ cluster: thrift, timeout: 5s }}
clusters:
  - {{ name: web, protocol: http1, endpoints: [ {{ address: "{web}" }} ] }}
  - {{ name: grpc, protocol: http2, endpoints: [ {{ address: "{grpc}" }} ] }}
  - {{ name: dubbo, protocol: dubbo, endpoints: [ {{ address: "{dubbo}" }} ] }}
  - {{ name: thrift, protocol: thrift, endpoints: [ {{ address: "{thrift}" }} ] }}
"#,
        cert = s(&leaf.cert),
        key = s(&leaf.key),
        web = web.address(),
        grpc = grpc.address(),
        dubbo = dubbo.address(),
        thrift = thrift.address(),
    );
    let proxy = Proxy::start("auto", &config);
    let addr = proxy.addr("any");
    let port = addr.port();
    let ca_pem = s(&ca.pem);
    let logs = || proxy.logs();

    // HTTP/1.1 and HTTP/2, plain and TLS (HTTP/2 over TLS by ALPN).
    let plain = format!("http://127.0.0.1:{port}/page");
    let secure = format!("https://localhost:{port}/page");
    let resolve = format!("localhost:{port}:127.0.0.1");
    for (args, version) in [
        (vec![plain.as_str()], "1.1"),
        (vec!["--http2-prior-knowledge", plain.as_str()], "2"),
        (
            vec![
                "--cacert",
                ca_pem,
                "--resolve",
                &resolve,
                "--http1.1",
                &secure,
            ],
            "1.1",
        ),
        (
            vec![
                "--cacert",
                ca_pem,
                "--resolve",
                &resolve,
                "--http2",
                &secure,
            ],
            "2",
        ),
    ] {
        let mut args = args.clone();
        args.extend(["-w", "\nversion=%{http_version}"]);
        let r = curl(&args);
        assert_eq!(r.status, 200, "{args:?}: {r:?}\n{}", logs());
        assert!(r.body.starts_with("web GET /page"), "{r:?}");
        assert!(
            r.body.ends_with(&format!("version={version}")),
            "{args:?}: {r:?}"
        );
    }
    // gRPC, plain and TLS.
    let v = grpc_client(addr, &["--call", "unary", "--count", "3"]);
    assert_eq!(v["ok"], 3, "{v}\n{}", logs());
    let v = grpc_client(
        addr,
        &[
            "--call",
            "unary",
            "--count",
            "3",
            "--tls-ca",
            ca_pem,
            "--tls-name",
            "localhost",
        ],
    );
    assert_eq!(v["ok"], 3, "{v}\n{}", logs());
    // Dubbo, plain and TLS (the client over Node's TLS).
    let sum = dubbo_client(port, &["--count", "3"]);
    assert_eq!(
        sum.results.get("Hello bob, from dubbo-p"),
        Some(&3),
        "{}\n{}",
        sum.raw,
        logs()
    );
    let (_t, tunnel_port, _) = tunnel(addr, ca_pem, None);
    let sum = dubbo_client(tunnel_port, &["--count", "3"]);
    assert_eq!(
        sum.results.get("Hello bob, from dubbo-p"),
        Some(&3),
        "{}\n{}",
        sum.raw,
        logs()
    );
    // Thrift, plain and TLS.
    let r = thrift_peers::client(port, &["--count", "3"]);
    assert_eq!(
        r.result("Hello bob, from thrift-p"),
        3,
        "{}\n{}",
        r.raw,
        logs()
    );
    let r = thrift_peers::client(
        port,
        &[
            "--count",
            "3",
            "--tls-ca",
            ca_pem,
            "--tls-name",
            "localhost",
        ],
    );
    assert_eq!(
        r.result("Hello bob, from thrift-p"),
        3,
        "{}\n{}",
        r.raw,
        logs()
    );

    // Bytes of no known protocol, and silence: that connection is closed
    // (silence at the sniffing timeout), the others go on.
    let mut junk = TcpStream::connect(addr).unwrap();
    junk.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let _ = junk.read_to_end(&mut buf);
    assert!(buf.is_empty(), "{buf:?}");
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let r = curl(&[plain.as_str()]);
    assert_eq!(r.status, 200, "{r:?}");
    let started = std::time::Instant::now();
    let n = silent.read(&mut [0u8; 8]);
    assert!(matches!(n, Ok(0)) || n.is_err(), "{n:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(proxy.metric("metaproxy_tls_handshakes_total{listener=\"any\",result=\"ok\"}") >= 4.0);
}
