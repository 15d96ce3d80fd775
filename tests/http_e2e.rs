//! End-to-end HTTP/1.1, HTTP/2 and gRPC through the release binary, with
//! real clients (curl, h2load, httpx, grpcio) and servers (hyper, grpcio).

mod common;
#[path = "common/http.rs"]
mod http_peers;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Proxy;
use http_peers::{Backend, GrpcServer, curl, grpc_client, h2load_all_2xx, httpx_client, rss_kib};

/// An address nothing listens on (bound, then released).
fn dead_address() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn curl_v(args: &[String]) -> http_peers::CurlOut {
    curl(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>())
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

fn routing_config(product: &Backend, user: &Backend, cart: &Backend, dead: &str) -> String {
    format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: old
        match: [ {{ key: ":path", prefix: /old }} ]
        route: {{ redirect: {{ path: /new, code: 302 }} }}
      - name: slow
        match: [ {{ key: ":path", prefix: /slow }} ]
        route: {{ cluster: product, timeout: 300ms }}
      - name: dead
        match: [ {{ key: ":path", prefix: /dead }} ]
        route: {{ cluster: dead }}
      - name: vip
        match: [ {{ key: cookie.session, exact: vip }} ]
        route: {{ cluster: user }}
      - name: debug
        match: [ {{ key: query.debug, present: true }} ]
        route: {{ cluster: user, rewrite: {{ host: debug.internal }} }}
      - name: product
        match: [ {{ key: ":path", prefix: /product }} ]
        route: {{ cluster: product, rewrite: {{ prefix: / }} }}
        request_headers: {{ set: {{ X-Route: product }}, remove: [ x-drop ] }}
        response_headers: {{ set: {{ x-served-by: metaproxy }}, remove: [ x-backend ] }}
      - name: user-me
        match:
          - {{ key: ":path_only", exact: /user/me }}
          - {{ key: ":method", exact: GET }}
        route: {{ cluster: user }}
      - name: tenant
        match: [ {{ key: X-Tenant, exact: beta }} ]
        route: {{ cluster: cart }}
      - name: cart
        match: [ {{ key: ":path", regex: "^/cart(/.*)?$" }} ]
        route: {{ cluster: cart, rewrite: {{ regex: {{ pattern: "^/cart", substitution: /api/cart }} }} }}
clusters:
  - name: product
    protocol: http
    endpoints: [ {{ address: "{product}" }} ]
  - name: user
    protocol: http2
    endpoints: [ {{ address: "{user}" }} ]
  - name: cart
    protocol: http1
    endpoints: [ {{ address: "{cart}" }} ]
  - name: dead
    protocol: http
    connect_timeout: 500ms
    endpoints: [ {{ address: "{dead}" }} ]
"#,
        product = product.address(),
        user = user.address(),
        cart = cart.address(),
    )
}

#[test]
fn http_routing_rewrites_mutations_and_local_replies() {
    let product = Backend::start("product");
    let user = Backend::start("user");
    let cart = Backend::start("cart");
    let dead = dead_address();
    let proxy = Proxy::start(
        "http_routing",
        &routing_config(&product, &user, &cart, &dead),
    );
    let addr = proxy.addr("http-in");
    let logs = || proxy.logs();

    for h2 in [false, true] {
        let with = |extra: &[&str]| -> Vec<String> {
            let mut a: Vec<String> = Vec::new();
            if h2 {
                a.push("--http2-prior-knowledge".into());
            }
            a.extend(extra.iter().map(|s| s.to_string()));
            a
        };

        // Prefix rewrite, header mutations, forwarding headers, request id.
        let u = url(addr, "/product/42?x=1");
        let r = curl_v(&with(&["-H", "x-drop: secret", "-H", "X-Keep: yes", &u]));
        assert_eq!(r.status, 200, "h2={h2} {r:?}\n{}", logs());
        let version = if h2 { "HTTP/2.0" } else { "HTTP/1.1" };
        assert!(
            r.body
                .starts_with(&format!("product GET /42?x=1 {version}\n")),
            "{r:?}"
        );
        assert!(r.body.contains("x-route: product\n"), "{}", r.body);
        assert!(r.body.contains("x-keep: yes\n"), "{}", r.body);
        assert!(!r.body.contains("x-drop"), "{}", r.body);
        assert!(
            r.body.contains("x-forwarded-for: 127.0.0.1\n"),
            "{}",
            r.body
        );
        assert!(r.body.contains("x-forwarded-proto: http\n"), "{}", r.body);
        assert!(r.body.contains("x-request-id: "), "{}", r.body);
        assert_eq!(r.header("x-served-by"), Some("metaproxy"), "{r:?}");
        assert_eq!(r.header("x-backend"), None, "{r:?}");

        // The client's request id and forwarded-for chain are kept.
        let r = curl_v(&with(&[
            "-H",
            "x-request-id: abc-123",
            "-H",
            "x-forwarded-for: 10.1.2.3",
            &u,
        ]));
        assert!(r.body.contains("x-request-id: abc-123\n"), "{}", r.body);
        assert!(
            r.body.contains("x-forwarded-for: 10.1.2.3, 127.0.0.1\n"),
            "{}",
            r.body
        );

        // `:path_only` exact match ignores the query; an http2 cluster gets HTTP/2.
        let r = curl_v(&with(&[&url(addr, "/user/me?tab=orders")]));
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            r.body
                .starts_with("user GET /user/me?tab=orders HTTP/2.0\n"),
            "{r:?}"
        );
        // POST does not match the GET-only route: no route.
        let r = curl_v(&with(&["-X", "POST", &url(addr, "/user/me")]));
        assert_eq!(r.status, 404, "{r:?}");

        // Regex rewrite to an http1 cluster: HTTP/1.1 with the client's host.
        let r = curl_v(&with(&[&url(addr, "/cart/items?id=7")]));
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            r.body
                .starts_with("cart GET /api/cart/items?id=7 HTTP/1.1\n"),
            "{r:?}"
        );
        assert!(r.body.contains(&format!("host: {addr}\n")), "{}", r.body);

        // Header match (config key written `X-Tenant` matches lower-case).
        let r = curl_v(&with(&["-H", "x-tenant: beta", &url(addr, "/anything")]));
        assert!(r.body.starts_with("cart GET /anything"), "{r:?}");

        // Cookie and query parameter matches; host rewrite.
        let r = curl_v(&with(&[
            "-H",
            "cookie: a=b; session=vip",
            &url(addr, "/whatever"),
        ]));
        assert!(r.body.starts_with("user GET /whatever"), "{r:?}");
        let r = curl_v(&with(&[&url(addr, "/x?debug")]));
        assert!(r.body.starts_with("user GET /x?debug"), "{r:?}");
        assert!(
            r.body.contains(":authority: debug.internal\n"),
            "{}",
            r.body
        );

        // Redirect keeps the query.
        let r = curl_v(&with(&[&url(addr, "/old/page?q=1")]));
        assert_eq!(r.status, 302, "{r:?}");
        assert_eq!(
            r.header("location"),
            Some(format!("http://{addr}/new?q=1").as_str()),
            "{r:?}"
        );

        // Local replies.
        let r = curl_v(&with(&[&url(addr, "/nothing/here")]));
        assert_eq!(r.status, 404, "{r:?}");
        assert_eq!(r.header("x-metaproxy-reason"), Some("route_not_found"));
        assert!(r.body.contains("route not found"), "{r:?}");
        let r = curl_v(&with(&[&url(addr, "/dead")]));
        assert_eq!(r.status, 503, "{r:?}");
        assert_eq!(r.header("x-metaproxy-reason"), Some("connect_failure"));
        let r = curl_v(&with(&[&url(addr, "/slow/2000")]));
        assert_eq!(r.status, 504, "{r:?}");
        assert_eq!(r.header("x-metaproxy-reason"), Some("timeout"));
    }

    // Hop-by-hop headers are not forwarded (HTTP/1.1 only has them).
    let r = curl(&[
        "-H",
        "Connection: keep-alive, x-secret",
        "-H",
        "x-secret: 1",
        "-H",
        "Keep-Alive: timeout=5",
        "-H",
        "TE: trailers",
        &url(addr, "/product/h"),
    ]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!r.body.contains("x-secret"), "{}", r.body);
    assert!(!r.body.contains("keep-alive"), "{}", r.body);
    assert!(r.body.contains("te: trailers\n"), "{}", r.body);

    // A 100 MiB-free sanity check: upload streams through.
    let r = curl(&[
        "--data-binary",
        "hello world",
        &url(addr, "/product/upload"),
    ]);
    assert_eq!(r.body, "product got 11\n", "{r:?}");
}

#[test]
fn http_virtual_hosts() {
    let shop = Backend::start("shop");
    let api = Backend::start("api");
    let other = Backend::start("other");
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    virtual_hosts:
      - name: shop
        hosts: [ shop.example.com ]
        routes: [ {{ route: {{ cluster: shop }} }} ]
      - name: api
        hosts: [ "*.api.example.com" ]
        routes:
          - match: [ {{ key: ":path", prefix: /v1 }} ]
            route: {{ cluster: api }}
      - name: fallback
        hosts: [ "*" ]
        routes: [ {{ route: {{ cluster: other }} }} ]
clusters:
  - {{ name: shop, protocol: http, endpoints: [ {{ address: "{}" }} ] }}
  - {{ name: api, protocol: http, endpoints: [ {{ address: "{}" }} ] }}
  - {{ name: other, protocol: http, endpoints: [ {{ address: "{}" }} ] }}
"#,
        shop.address(),
        api.address(),
        other.address()
    );
    let proxy = Proxy::start("http_vhosts", &config);
    let addr = proxy.addr("http-in");
    for h2 in [false, true] {
        let get = |host: &str, path: &str| {
            let host = format!("Host: {host}");
            let u = url(addr, path);
            let mut args = vec!["-H", host.as_str(), u.as_str()];
            if h2 {
                args.insert(0, "--http2-prior-knowledge");
            }
            curl(&args)
        };
        assert!(get("Shop.Example.com:8080", "/a").body.starts_with("shop "));
        assert!(get("eu.api.example.com", "/v1/x").body.starts_with("api "));
        let r = get("eu.api.example.com", "/v2/x");
        assert_eq!(r.status, 404, "a vhost's routes do not fall through: {r:?}");
        assert!(get("example.org", "/").body.starts_with("other "));
    }
}

#[test]
fn http_weighted_split_with_httpx_and_h2load() {
    let v1 = Backend::start("v1");
    let v2 = Backend::start("v2");
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - match: [ {{ key: ":path", prefix: /product }} ]
        route:
          weighted:
            - {{ cluster: product, subset: v1, weight: 80 }}
            - {{ cluster: product, subset: v2, weight: 20 }}
clusters:
  - name: product
    protocol: http
    endpoints:
      - {{ address: "{}", labels: {{ version: v1 }} }}
      - {{ address: "{}", labels: {{ version: v2 }} }}
    subsets: {{ v1: {{ version: v1 }}, v2: {{ version: v2 }} }}
"#,
        v1.address(),
        v2.address()
    );
    let proxy = Proxy::start("http_weighted", &config);
    let addr = proxy.addr("http-in");

    // httpx: 400 keep-alive requests. Expected 80 to v2 (sd 8): bound ±5 sd.
    let v = httpx_client(&url(addr, "/product/1"), &["--count", "400"]);
    assert_eq!(v["statuses"]["200"], 400, "{v}\n{}", proxy.logs());
    let to_v2 = v["bodies"]["v2 GET /product/1 HTTP/1.1"]
        .as_u64()
        .unwrap_or(0);
    let to_v1 = v["bodies"]["v1 GET /product/1 HTTP/1.1"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(to_v1 + to_v2, 400, "{v}");
    assert!((40..=120).contains(&to_v2), "v2 got {to_v2} of 400: {v}");

    // h2load: many streams over few connections, all succeed.
    let before = v1.count() + v2.count();
    h2load_all_2xx(
        &url(addr, "/product/h2load"),
        2000,
        &["-c", "4", "-m", "16"],
        || proxy.logs(),
    );
    assert_eq!(v1.count() + v2.count() - before, 2000);
}

fn grpc_config(g1: &GrpcServer, g2: &GrpcServer, dead: &str) -> String {
    format!(
        r#"
listeners:
  - name: grpc-in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - name: beta
        match:
          - {{ key: grpc.service, exact: demo.Echo }}
          - {{ key: x-tenant, exact: beta }}
        route: {{ cluster: beta }}
      - name: dead
        match: [ {{ key: x-tenant, exact: dead }} ]
        route: {{ cluster: dead }}
      - name: echo
        match: [ {{ key: ":path", prefix: /demo.Echo/ }} ]
        route: {{ cluster: main, timeout: 5s }}
clusters:
  - {{ name: main, protocol: http2, endpoints: [ {{ address: "{}" }} ] }}
  - {{ name: beta, protocol: http2, endpoints: [ {{ address: "{}" }} ] }}
  - {{ name: dead, protocol: http2, connect_timeout: 500ms, endpoints: [ {{ address: "{dead}" }} ] }}
"#,
        g1.address(),
        g2.address()
    )
}

#[test]
fn grpc_through_the_proxy_with_grpcio() {
    let g1 = GrpcServer::start("g1");
    let g2 = GrpcServer::start("g2");
    let proxy = Proxy::start("grpc", &grpc_config(&g1, &g2, &dead_address()));
    let addr = proxy.addr("grpc-in");
    let logs = || proxy.logs();

    let v = grpc_client(
        addr,
        &["--call", "unary", "--count", "5", "--meta", "x-user=ann"],
    );
    assert_eq!(v["ok"], 5, "{v}\n{}", logs());
    assert_eq!(v["results"]["g1:hello"], 5, "{v}");
    assert_eq!(v["initial_metadata"]["x-seen-x-user"], "ann", "{v}");

    // Routing on gRPC metadata.
    let v = grpc_client(addr, &["--call", "unary", "--meta", "x-tenant=beta"]);
    assert_eq!(v["results"]["g2:hello"], 1, "{v}\n{}", logs());

    let v = grpc_client(addr, &["--call", "server_stream", "--payload", "3"]);
    assert_eq!(v["results"]["g1:0|g1:1|g1:2"], 1, "{v}\n{}", logs());

    let v = grpc_client(addr, &["--call", "client_stream", "--payload", "abcde"]);
    assert_eq!(v["results"]["g1:5:25"], 1, "{v}\n{}", logs());

    // The server's error status passes through unchanged.
    let v = grpc_client(addr, &["--call", "fail", "--payload", "x42"]);
    assert_eq!(v["errors"]["NOT_FOUND"], 1, "{v}\n{}", logs());
    assert_eq!(v["details"][0], "no such thing: x42", "{v}");

    // Local replies in gRPC form.
    let v = grpc_client(addr, &["--call", "other.Service/Method"]);
    assert_eq!(v["errors"]["UNIMPLEMENTED"], 1, "{v}\n{}", logs());
    assert!(
        v["details"][0]
            .as_str()
            .unwrap_or("")
            .contains("route not found"),
        "{v}"
    );
    let v = grpc_client(addr, &["--call", "unary", "--meta", "x-tenant=dead"]);
    assert_eq!(v["errors"]["UNAVAILABLE"], 1, "{v}\n{}", logs());
    assert!(
        v["details"][0]
            .as_str()
            .unwrap_or("")
            .contains("upstream connect failure"),
        "{v}"
    );
}

/// A gRPC answer the proxy cuts between two messages ends with a status
/// the client can act on (UNAVAILABLE for an upstream gone silent,
/// DEADLINE_EXCEEDED past the route timeout), after the messages already
/// relayed, not with a stream reset (which grpcio reads as INTERNAL); the
/// upstream call is cancelled.
#[test]
fn grpc_answer_cut_between_messages_ends_with_a_status() {
    let g = GrpcServer::start("g");
    let config = format!(
        r#"
listeners:
  - name: grpc-in
    address: 127.0.0.1:0
    protocol: http
    limits: {{ stream_idle_timeout: 1s }}
    routes: [ {{ route: {{ cluster: main }} }} ]
  - name: grpc-deadline
    address: 127.0.0.1:0
    protocol: http
    routes: [ {{ route: {{ cluster: main, timeout: 2s }} }} ]
clusters:
  - {{ name: main, protocol: http2, endpoints: [ {{ address: "{}" }} ] }}
"#,
        g.address()
    );
    let proxy = Proxy::start("grpc_cut", &config);
    let addr = proxy.addr("grpc-in");
    let cancelled = || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let line = std::iter::from_fn(|| {
            g.calls
                .next(deadline.saturating_duration_since(Instant::now()))
        })
        .find(|l| l.contains("stall-ended"))
        .expect("the stalled upstream call ended");
        assert!(line.contains(r#""cancelled": true"#), "{line}");
    };

    // Two messages, then silence past the stream idle timeout.
    let v = grpc_client(addr, &["--call", "stall", "--payload", "2"]);
    assert_eq!(v["errors"]["UNAVAILABLE"], 1, "{v}\n{}", proxy.logs());
    assert_eq!(v["received"], serde_json::json!(["g:0", "g:1"]), "{v}");
    let details = v["details"][0].as_str().unwrap_or("");
    assert!(details.contains("stream idle timeout"), "{v}");
    cancelled();

    // Only the answer's head, then silence.
    let v = grpc_client(addr, &["--call", "stall", "--payload", "0"]);
    assert_eq!(v["errors"]["UNAVAILABLE"], 1, "{v}\n{}", proxy.logs());
    assert_eq!(v["received"], serde_json::json!([]), "{v}");
    cancelled();

    // The route timeout ends a stream kept alive past it.
    let deadline = proxy.addr("grpc-deadline");
    let v = grpc_client(deadline, &["--call", "stall", "--payload", "1"]);
    assert_eq!(v["errors"]["DEADLINE_EXCEEDED"], 1, "{v}\n{}", proxy.logs());
    assert_eq!(v["received"], serde_json::json!(["g:0"]), "{v}");
    cancelled();
}

#[test]
fn http_100_mib_streams_through_in_bounded_memory() {
    let backend = Backend::start("big");
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - match: [ {{ key: x-cluster, exact: http1 }} ]
        route: {{ cluster: big1 }}
      - route: {{ cluster: big }}
clusters:
  - {{ name: big, protocol: http, endpoints: [ {{ address: "{0}" }} ] }}
  - {{ name: big1, protocol: http1, endpoints: [ {{ address: "{0}" }} ] }}
"#,
        backend.address()
    );
    let proxy = Proxy::start("http_big", &config);
    let addr = proxy.addr("http-in");
    let pid = proxy.child.0.id();
    // Warm up (allocations of the first request are not growth).
    assert_eq!(curl(&[&url(addr, "/warm")]).status, 200);
    let base = rss_kib(pid);
    const SIZE: u64 = 100 * 1024 * 1024;

    // HTTP/1.1 both sides (the lean path), HTTP/2 both sides, and an
    // HTTP/2 client of an HTTP/1.1 cluster (its download read off the
    // lean path's connections).
    for (h2, cluster) in [(false, "http"), (true, "http"), (true, "http1")] {
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let proto = if h2 {
            "--http2-prior-knowledge"
        } else {
            "--http1.1"
        };
        // Download.
        let out = Command::new("curl")
            .args([
                "-s",
                proto,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{size_download}",
                "-H",
                &format!("x-cluster: {cluster}"),
            ])
            .arg(url(addr, &format!("/bytes/{SIZE}")))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("200 {SIZE}"),
            "h2={h2} {cluster}\n{}",
            proxy.logs()
        );
        // Upload, streamed from a pipe (chunked for HTTP/1.1).
        let upload = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "head -c {SIZE} /dev/zero | curl -s {proto} -H 'x-cluster: {cluster}' -T - {}",
                url(addr, "/upload")
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&upload.stdout),
            format!("big got {SIZE}\n"),
            "h2={h2} {cluster}\n{}",
            proxy.logs()
        );
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        sampler.join().unwrap();
        let growth = peak
            .load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(base);
        eprintln!("h2={h2} {cluster}: base {base} KiB, peak growth {growth} KiB");
        assert!(
            growth < 64 * 1024,
            "RSS grew by {growth} KiB (h2={h2} {cluster})"
        );
    }
}

/// Reads what the server sends until it closes or `limit` passes; returns (text, closed).
fn read_until_close(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

#[test]
fn http_bad_input_gets_400_431_and_slowloris_is_cut() {
    let backend = Backend::start("ok");
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    limits: {{ max_header_bytes: 16384, max_headers: 20, header_read_timeout: 1s }}
    routes: [ {{ route: {{ cluster: ok }} }} ]
clusters:
  - {{ name: ok, protocol: http, endpoints: [ {{ address: "{}" }} ] }}
"#,
        backend.address()
    );
    let proxy = Proxy::start("http_bad", &config);
    let addr = proxy.addr("http-in");

    // Malformed request line.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GARBAGE\x01 / HTTP/9\r\n\r\n").unwrap();
    let (text, _) = read_until_close(&mut s, Duration::from_secs(5));
    assert!(text.starts_with("HTTP/1.1 400"), "{text:?}");

    // Oversized head.
    let mut s = TcpStream::connect(addr).unwrap();
    let big = "a".repeat(32 * 1024);
    let _ = s.write_all(format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes());
    let (text, _) = read_until_close(&mut s, Duration::from_secs(5));
    assert!(text.starts_with("HTTP/1.1 431"), "{text:?}");

    // Too many headers.
    let mut s = TcpStream::connect(addr).unwrap();
    let many: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    let _ = s.write_all(format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes());
    let (text, _) = read_until_close(&mut s, Duration::from_secs(5));
    assert!(text.starts_with("HTTP/1.1 431"), "{text:?}");

    // Too many headers over HTTP/2 (hyper's h1 parser is not involved).
    let mut args: Vec<String> = vec!["--http2-prior-knowledge".into()];
    for i in 0..40 {
        args.push("-H".into());
        args.push(format!("x-h{i}: v"));
    }
    args.push(url(addr, "/"));
    let r = curl(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(r.status, 431, "{r:?}");

    // Slowloris: a byte every 100 ms; cut after the 1s header timeout.
    let started = Instant::now();
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        let head = b"GET /slowloris HTTP/1.1\r\nHost: x\r\nX-Dribble: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let mut answer = Vec::new();
        for b in head {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            let mut buf = [0u8; 1024];
            match s.read(&mut buf) {
                Ok(0) => {
                    return (
                        String::from_utf8_lossy(&answer).into_owned(),
                        true,
                        started.elapsed(),
                    );
                }
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => {
                    return (
                        String::from_utf8_lossy(&answer).into_owned(),
                        true,
                        started.elapsed(),
                    );
                }
            }
        }
        (
            String::from_utf8_lossy(&answer).into_owned(),
            false,
            started.elapsed(),
        )
    });
    // Other clients are unaffected meanwhile.
    for _ in 0..5 {
        let r = curl(&[&url(addr, "/fine")]);
        assert_eq!(r.status, 200, "{r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (answer, closed, took) = slow.join().unwrap();
    assert!(
        closed,
        "slowloris connection still open after {took:?}: {answer:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    assert!(took < Duration::from_secs(4), "cut only after {took:?}");
    assert_eq!(curl(&[&url(addr, "/after")]).status, 200);
}

#[test]
fn http_gateway_example_routes_product_user_cart() {
    let backends: Vec<Backend> = [
        "product-v1",
        "product-v2",
        "user",
        "cart-1",
        "cart-2",
        "cart-3",
    ]
    .iter()
    .map(|t| Backend::start(t))
    .collect();
    let ports = ["9101", "9102", "9201", "9301", "9302", "9303"];
    let froms: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut replacements = vec![
        ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
        ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
        ("127.0.0.1:9090", "127.0.0.1:0".to_string()),
    ];
    for (from, b) in froms.iter().zip(&backends) {
        replacements.push((from.as_str(), b.address()));
    }
    let config = common::example_config("examples/gateway/gateway.yaml", &replacements);
    let proxy = Proxy::start("http_gateway", &config);
    let addr = proxy.addr("http-in");
    let mut product = std::collections::HashMap::<String, u32>::new();
    for _ in 0..50 {
        let r = curl(&[&url(addr, "/product/42")]);
        assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
        assert_eq!(r.header("x-gateway"), Some("metaproxy"));
        *product
            .entry(r.body.split(' ').next().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(product["product-v1"] >= 30, "{product:?}");
    assert!(
        curl(&[&url(addr, "/user/me")])
            .body
            .starts_with("user GET /user/me")
    );
    // Carts are sticky by the `cart` cookie (ring hash); without one, the
    // proxy makes one up per request, so requests spread.
    let cart_of = |args: &[&str]| {
        let r = curl(args);
        assert_eq!(r.status, 200, "{r:?}");
        r.body.split(' ').next().unwrap().to_string()
    };
    let u = url(addr, "/cart");
    let sticky: std::collections::HashSet<String> = (0..10)
        .map(|i| {
            if i % 2 == 0 {
                cart_of(&["-H", "Cookie: cart=4f1c9e", &u])
            } else {
                cart_of(&["--http2-prior-knowledge", "-H", "Cookie: cart=4f1c9e", &u])
            }
        })
        .collect();
    assert_eq!(sticky.len(), 1, "one cart per cookie: {sticky:?}");
    let spread: std::collections::HashSet<String> =
        (0..30).map(|_| cart_of(&[u.as_str()])).collect();
    assert!(spread.len() >= 2, "new sessions spread: {spread:?}");
}
