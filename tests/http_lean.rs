//! The lean HTTP/1.1 path through the release binary: answer framings it
//! relays as they are (chunked with trailers, close-delimited, interim
//! 1xx, 204, HEAD), pipelined requests, upstream connection reuse and
//! `connection: close`, and the hand-over to hyper (HTTP/1.0, large and
//! chunked request bodies) on the same connection. Clients: curl and raw
//! sockets; upstreams: a scripted HTTP/1.1 server and the hyper backend.

mod common;
#[path = "common/http.rs"]
mod http_peers;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Proxy;
use http_peers::{Backend, curl, h2load_all_2xx};

/// An upstream that answers each path with fixed bytes, counts the
/// connections it accepted and keeps each request's line and body.
struct Scripted {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
}

fn answer_for(path: &str, request_line: &str) -> (Vec<u8>, bool) {
    match path {
        "/chunked" => (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n".to_vec(),
            false,
        ),
        "/close" => (b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec(), true),
        "/interim" => (
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            false,
        ),
        "/nocontent" => (b"HTTP/1.1 204 No Content\r\nX-Up: 1\r\n\r\n".to_vec(), false),
        "/badchunk" => (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n".to_vec(),
            false,
        ),
        "/bye" => (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye".to_vec(),
            true,
        ),
        _ => (
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{request_line}",
                request_line.len()
            )
            .into_bytes(),
            false,
        ),
    }
}

impl Scripted {
    fn start() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let log = log.clone();
                std::thread::spawn(move || serve_scripted(stream, log));
            }
        });
        Scripted {
            address,
            connections,
            seen,
        }
    }
}

fn serve_scripted(stream: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        let mut header_lines = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            header_lines.push_str(&line);
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let request_line = request_line.trim_end().to_string();
        seen.lock()
            .unwrap()
            .push(format!("{request_line}|{}", String::from_utf8_lossy(&body)));
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        let (mut bytes, close) = if path == "/headers" {
            // The request's header lines as they came.
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{header_lines}",
                header_lines.len()
            );
            (answer.into_bytes(), false)
        } else if path == "/echo" {
            // The request body back, after its request line.
            let mut answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{request_line}|",
                request_line.len() + 1 + body.len()
            )
            .into_bytes();
            answer.extend_from_slice(&body);
            (answer, false)
        } else {
            answer_for(&path, &request_line)
        };
        if request_line.starts_with("HEAD ") {
            // The head only: a HEAD answer has no body.
            let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            bytes.truncate(end);
        }
        if out.write_all(&bytes).is_err() || close {
            return;
        }
    }
}

fn start_proxy(test: &str, upstream: SocketAddr) -> Proxy {
    start_proxy_to(test, upstream, "http")
}

/// A proxy with one route to `upstream`, a cluster of `protocol`.
fn start_proxy_to(test: &str, upstream: SocketAddr, protocol: &str) -> Proxy {
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes: [ {{ route: {{ cluster: up, timeout: 5s }} }} ]
clusters:
  - {{ name: up, protocol: {protocol}, endpoints: [ {{ address: "{upstream}" }} ] }}
"#
    );
    Proxy::start(test, &config)
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[test]
fn answer_framings_pass_through() {
    let up = Scripted::start();
    let proxy = start_proxy("lean_framings", up.address);
    let addr = proxy.addr("http-in");

    let r = curl(&["--raw", &url(addr, "/chunked")]);
    assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
    assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{r:?}");
    assert!(
        r.body.contains("hello") && r.body.contains(" world") && r.body.contains("x-trailer: t"),
        "chunks and trailers relayed verbatim: {r:?}"
    );

    // A close-delimited answer is re-chunked: the client's connection
    // outlives the upstream's (curl reuses it for the next URL).
    let r = curl(&[&url(addr, "/close")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "until the end");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{r:?}");
    assert_eq!(r.header("connection"), None, "{r:?}");
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-o", "/dev/null"])
        .args(["-w", "%{http_code} %{num_connects}\\n"])
        .args([url(addr, "/close"), url(addr, "/after")])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200 1\n200 0\n",
        "one client connection for both"
    );

    let r = curl(&[&url(addr, "/interim")]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{r:?}");

    // 204 and HEAD carry no body: the next request on the same client
    // connection must still be answered (curl reuses it for both URLs).
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-o", "/dev/null"])
        .args(["-w", "%{http_code} %{num_connects}\\n"])
        .args([url(addr, "/nocontent"), url(addr, "/after")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "204 1\n200 0\n", "one connection for both: {text}");
    let r = curl(&["-I", &url(addr, "/head")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-length"), Some("19"), "{r:?}");
}

/// HTTP/2 clients of an HTTP/1.1 cluster go out on the lean path's
/// connections: every answer framing reaches them as data (chunk framing
/// and trailers taken off), request bodies arrive whole with their
/// length, upstream connections are reused, and an answer whose chunk
/// framing is broken from the start is a 502.
#[test]
fn http2_clients_of_an_http1_cluster_get_every_framing() {
    let up = Scripted::start();
    let proxy = start_proxy_to("lean_h2_clients", up.address, "http1");
    let shadow = Scripted::start();
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let retrying = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes:
      - route:
          cluster: pair
          timeout: 5s
          retries: {{ attempts: 2, on: [connect-failure], backoff: {{ base: 5ms, max: 20ms }} }}
          mirror: {{ cluster: shadow, percent: 100 }}
clusters:
  - name: pair
    protocol: http1
    connect_timeout: 500ms
    endpoints: [ {{ address: "{dead}" }}, {{ address: "{}" }} ]
  - {{ name: shadow, protocol: http1, endpoints: [ {{ address: "{}" }} ] }}
"#,
        up.address, shadow.address
    );
    let retry_proxy = Proxy::start("lean_h2_retries", &retrying);
    let addr = proxy.addr("http-in");
    let h2 = |args: &[&str]| {
        let mut all = vec!["--http2-prior-knowledge"];
        all.extend_from_slice(args);
        curl(&all)
    };

    let r = h2(&[&url(addr, "/chunked")]);
    assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
    // The data, then the trailers (curl -i prints them after the body).
    assert_eq!(r.body, "hello worldx-trailer: t\r\n", "{r:?}");
    assert_eq!(r.header("x-up"), Some("1"), "{r:?}");
    assert_eq!(r.header("transfer-encoding"), None, "{r:?}");

    let r = h2(&[&url(addr, "/close")]);
    assert_eq!((r.status, r.body.as_str()), (200, "until the end"), "{r:?}");
    let r = h2(&[&url(addr, "/interim")]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{r:?}");
    let r = h2(&[&url(addr, "/nocontent")]);
    assert_eq!((r.status, r.body.as_str()), (204, ""), "{r:?}");
    let r = h2(&["-I", &url(addr, "/head")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-length"), Some("19"), "{r:?}");

    // The body arrives whole, with its length.
    let r = h2(&["--data-binary", "0123456789", &url(addr, "/echo")]);
    assert_eq!(r.body, "POST /echo HTTP/1.1|0123456789", "{r:?}");

    // The head as written: `host` from the authority, the cookie crumbs an
    // HTTP/2 client may send joined into one field (RFC 9113 §8.2.3).
    let r = h2(&[
        "-H",
        "cookie: a=1",
        "-H",
        "cookie: b=2",
        &url(addr, "/headers"),
    ]);
    assert!(r.body.starts_with(&format!("host: {addr}\r\n")), "{r:?}");
    assert_eq!(r.body.matches("cookie").count(), 1, "{r:?}");
    assert!(r.body.contains("cookie: a=1; b=2\r\n"), "{r:?}");

    // A try that cannot connect is retried on the other endpoint with the
    // same body, and the mirror gets a copy of it.
    for i in 0..4 {
        let body = format!("payload-{i}");
        let r = h2(&[
            "--data-binary",
            &body,
            &url(retry_proxy.addr("http-in"), "/echo"),
        ]);
        assert_eq!(
            r.body,
            format!("POST /echo HTTP/1.1|{body}"),
            "{r:?}\n{}",
            retry_proxy.logs()
        );
        let copy = format!("POST /echo HTTP/1.1|{body}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !shadow.seen.lock().unwrap().contains(&copy) {
            assert!(
                std::time::Instant::now() < deadline,
                "no mirror copy of {body}: {:?}",
                shadow.seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    assert!(
        retry_proxy.logs().contains("retrying"),
        "the dead endpoint was tried: {}",
        retry_proxy.logs()
    );

    // Broken chunk framing from the first line: refused, not relayed.
    let r = h2(&[&url(addr, "/badchunk")]);
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains("bad chunked answer"), "{r:?}");

    // Sequential requests (h2load: one connection, one stream at a time)
    // share one upstream connection.
    let before = up.connections.load(Ordering::SeqCst);
    h2load_all_2xx(&url(addr, "/a"), 20, &["-c", "1", "-m", "1"], || {
        proxy.logs()
    });
    assert!(
        up.connections.load(Ordering::SeqCst) - before <= 1,
        "one upstream connection for all 20"
    );
}

/// Reads one answer with a `content-length` body.
fn read_answer(reader: &mut BufReader<TcpStream>) -> (String, String) {
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

#[test]
fn pipelined_requests_are_answered_in_order_on_reused_upstreams() {
    let up = Scripted::start();
    let proxy = start_proxy("lean_pipeline", up.address);
    let addr = proxy.addr("http-in");
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut batch = Vec::new();
    for i in 0..3 {
        batch.extend_from_slice(
            format!("POST /p{i} HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc").as_bytes(),
        );
    }
    writer.write_all(&batch).unwrap();
    for i in 0..3 {
        let (status, body) = read_answer(&mut reader);
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(body, format!("POST /p{i} HTTP/1.1"));
    }
    // Sequential requests reuse the upstream connection.
    for i in 0..20 {
        writer
            .write_all(format!("GET /s{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes())
            .unwrap();
        let (_, body) = read_answer(&mut reader);
        assert_eq!(body, format!("GET /s{i} HTTP/1.1"));
    }
    assert!(
        up.connections.load(Ordering::SeqCst) <= 2,
        "upstream connections: {}",
        up.connections.load(Ordering::SeqCst)
    );

    // An upstream that closes after each answer: never reused, never failing.
    let before = up.connections.load(Ordering::SeqCst);
    for _ in 0..5 {
        writer
            .write_all(b"GET /bye HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap();
        let (status, body) = read_answer(&mut reader);
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(body, "bye");
    }
    // The first goes on the idle pooled connection; each later one needs a new one.
    assert_eq!(up.connections.load(Ordering::SeqCst) - before, 4);

    // `connection: close` from the client: answered, then closed.
    writer
        .write_all(b"GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (_, body) = read_answer(&mut reader);
    assert_eq!(body, "GET /last HTTP/1.1");
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).unwrap(), 0, "closed after");
}

#[test]
fn hyper_takes_over_what_the_lean_path_does_not_do() {
    let backend = Backend::start("b");
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes: [ {{ route: {{ cluster: b }} }} ]
clusters:
  - {{ name: b, protocol: http, endpoints: [ {{ address: "{}" }} ] }}
"#,
        backend.address()
    );
    let proxy = Proxy::start("lean_handover", &config);
    let addr = proxy.addr("http-in");

    // HTTP/1.0.
    let r = curl(&["--http1.0", &url(addr, "/old")]);
    assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
    assert!(r.body.starts_with("b GET /old"), "{r:?}");

    // A body over the lean path's limit, then a small request on the same
    // connection (now served by hyper).
    let big = common::scratch_dir("lean_handover").join("big.bin");
    std::fs::write(&big, vec![b'x'; 1_000_000]).unwrap();
    let data = format!("@{}", big.display());
    let out = std::process::Command::new("curl")
        .args(["-s", "-w", "|%{num_connects}\\n", "--data-binary", &data])
        .arg(url(addr, "/upload"))
        .args(["--next", "-s", "-w", "|%{num_connects}\\n"])
        .arg(url(addr, "/small"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("b got 1000000\n|1\n"), "{text}");
    assert!(
        text.contains("b POST /small") || text.contains("b GET /small"),
        "{text}"
    );
    assert!(
        text.ends_with("|0\n"),
        "second request on the same connection: {text}"
    );

    // A chunked request body.
    let r = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "chunked payload",
        &url(addr, "/upload"),
    ]);
    assert_eq!(r.body, "b got 15\n", "{r:?}");
}

#[test]
fn http_requests_are_counted_and_logged_on_both_engines() {
    let backend = Backend::start("b");
    let dir = common::scratch_dir("http_access_log");
    let log = dir.join("access.json");
    let config = format!(
        r#"
admin: {{ address: 127.0.0.1:0 }}
listeners:
  - name: web
    address: 127.0.0.1:0
    protocol: http
    access_log: {{ path: "{log}", format: "%:method% %:path% %route% %upstream_host% %outcome% %status%" }}
    routes:
      - name: api
        match: [ {{ key: ":path", regex: "/(api|status)/.*" }} ]
        route: {{ cluster: b }}
      - name: moved
        match: [ {{ key: ":path", prefix: /old/ }} ]
        route: {{ redirect: {{ path: /new, code: 302 }} }}
clusters:
  - {{ name: b, protocol: http, endpoints: [ {{ address: "{up}" }} ] }}
"#,
        log = log.display(),
        up = backend.address()
    );
    let proxy = Proxy::start("http_access_log", &config);
    let addr = proxy.addr("web");
    assert_eq!(curl(&[&url(addr, "/api/1")]).status, 200);
    assert_eq!(curl(&[&url(addr, "/status/503")]).status, 503);
    assert_eq!(
        curl(&["--http2-prior-knowledge", &url(addr, "/api/2")]).status,
        200
    );
    assert_eq!(curl(&[&url(addr, "/nowhere")]).status, 404);
    // A redirect is the same outcome on both engines.
    assert_eq!(curl(&[&url(addr, "/old/1")]).status, 302);
    assert_eq!(
        curl(&["--http2-prior-knowledge", &url(addr, "/old/2")]).status,
        302
    );

    let (code, metrics) = proxy.admin("GET", "/metrics");
    assert_eq!(code, 200);
    let series = |outcome: &str| {
        format!(
            r#"metaproxy_requests_total{{listener="web",route="api",cluster="b",protocol="http",outcome="{outcome}"}}"#
        )
    };
    assert!(
        metrics.contains(&format!("{} 2\n", series("success"))),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("{} 1\n", series("error"))),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"reason="route_not_found"} 1"#),
        "{metrics}"
    );

    let wanted = [
        format!("GET /api/1 api {} success 200", backend.address()),
        format!("GET /status/503 api {} error 503", backend.address()),
        // The hyper engine (HTTP/2) names the upstream host too.
        format!("GET /api/2 api {} success 200", backend.address()),
        "GET /old/1 moved - redirect 302".to_string(),
        "GET /old/2 moved - redirect 302".to_string(),
        "GET /nowhere - - route_not_found 404".to_string(),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if wanted.iter().all(|w| text.contains(w.as_str())) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "access log:\n{text}\nwanted {wanted:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads until the proxy closes the connection; how long that took.
fn time_to_close(reader: &mut BufReader<TcpStream>) -> Duration {
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    assert!(rest.is_empty(), "unexpected bytes: {rest:?}");
    started.elapsed()
}

#[test]
fn idle_keep_alive_connections_end_at_the_idle_timeout_and_at_shutdown() {
    let up = Scripted::start();
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    limits: {{ idle_timeout: 2s }}
    routes: [ {{ route: {{ cluster: up, timeout: 5s }} }} ]
  - name: http-long
    address: 127.0.0.1:0
    protocol: http
    routes: [ {{ route: {{ cluster: up, timeout: 5s }} }} ]
clusters:
  - {{ name: up, protocol: http, endpoints: [ {{ address: "{}" }} ] }}
"#,
        up.address
    );
    let mut proxy = Proxy::start("lean_idle", &config);
    let connect = |listener: &str| {
        let stream = TcpStream::connect(proxy.addr(listener)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        (stream.try_clone().unwrap(), BufReader::new(stream))
    };
    let ask = |writer: &mut TcpStream, reader: &mut BufReader<TcpStream>, i: usize| {
        writer
            .write_all(format!("GET /i{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes())
            .unwrap();
        let (status, body) = read_answer(reader);
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(body, format!("GET /i{i} HTTP/1.1"));
    };

    // Requests 1 s apart keep the connection open past its first 2 s
    // deadline (each request pushes the deadline back)...
    let (mut writer, mut reader) = connect("http-in");
    for i in 0..4 {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        ask(&mut writer, &mut reader, i);
    }
    // ... and 2 s of silence after the last one close it.
    let waited = time_to_close(&mut reader);
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(10),
        "closed after {waited:?}"
    );

    // A keep-alive connection waiting on a listener with the default
    // (10 min) idle timeout is closed as soon as the proxy shuts down.
    let (mut writer, mut reader) = connect("http-long");
    ask(&mut writer, &mut reader, 9);
    proxy.signal("TERM");
    let waited = time_to_close(&mut reader);
    assert!(waited < Duration::from_secs(10), "closed after {waited:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while proxy.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "proxy did not exit:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        proxy.logs().contains("all connections drained"),
        "{}",
        proxy.logs()
    );
}
