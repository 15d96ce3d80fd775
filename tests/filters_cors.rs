//! Filters on an HTTP listener, through the release binary with curl as the
//! client: CORS preflights answered by the proxy and CORS headers on actual
//! responses (`examples/filters/cors.yaml`), and the HTTP forms of the
//! rate-limit (429 + retry-after) and authz (403) local replies.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Proxy, example_config};

/// A minimal HTTP/1.1 upstream: answers every request `200 ok` with
/// `vary: accept-encoding`, keep-alive, and counts requests.
struct Upstream {
    address: String,
    requests: Arc<AtomicUsize>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let count = count.clone();
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            count.fetch_add(1, Ordering::SeqCst);
                            let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\
                                          vary: accept-encoding\r\n\r\nok";
                            if stream.write_all(answer.as_bytes()).is_err() {
                                return;
                            }
                        }
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        Upstream { address, requests }
    }
}

/// Status and lower-cased headers of one curl request.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn curl(args: &[&str]) -> Answer {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl is needed for the HTTP tests");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer { status, headers }
}

/// The CORS example, run against a fresh upstream.
fn start_cors(test: &str) -> (Proxy, Upstream, String) {
    let upstream = Upstream::start();
    let config = example_config(
        "examples/filters/cors.yaml",
        &[
            ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
            ("127.0.0.1:8081", upstream.address.clone()),
        ],
    );
    let proxy = Proxy::start(test, &config);
    let url = format!("http://{}/cart", proxy.addr("web"));
    (proxy, upstream, url)
}

#[test]
fn cors_preflight_is_answered_by_the_proxy() {
    let (proxy, upstream, url) = start_cors("cors-preflight");
    // Preflight: answered by the proxy, never reaches the upstream.
    let a = curl(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://shop.example.com",
        "-H",
        "Access-Control-Request-Method: PUT",
        "-H",
        "Access-Control-Request-Headers: x-user-id",
        &url,
    ]);
    assert_eq!(a.status, 204, "{:?} / logs:\n{}", a.headers, proxy.logs());
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    assert_eq!(
        a.header("access-control-allow-methods"),
        Some("GET, POST, PUT, DELETE")
    );
    assert_eq!(
        a.header("access-control-allow-headers"),
        Some("content-type, x-user-id")
    );
    assert_eq!(a.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(a.header("access-control-max-age"), Some("600"));
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 0);
}

#[test]
fn cors_headers_on_actual_requests() {
    let (_proxy, upstream, url) = start_cors("cors-actual");
    // Regex origin, actual request: forwarded, CORS headers added, `vary` kept and extended.
    let a = curl(&["-H", "Origin: https://pr-42.preview.example.com", &url]);
    assert_eq!(a.status, 200, "{:?}", a.headers);
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://pr-42.preview.example.com")
    );
    assert_eq!(
        a.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    assert_eq!(a.header("vary"), Some("accept-encoding, origin"));
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 1);

    // Not an allowed origin / no origin: passed through untouched.
    for args in [
        &["-H", "Origin: https://evil.example.net", url.as_str()][..],
        &[url.as_str()][..],
    ] {
        let a = curl(args);
        assert_eq!(a.status, 200);
        assert_eq!(a.header("access-control-allow-origin"), None);
        assert_eq!(a.header("vary"), Some("accept-encoding"));
    }
}

#[test]
fn http_local_replies_of_ratelimit_and_authz() {
    let upstream = Upstream::start();
    let config = format!(
        r#"
listeners:
  - name: web
    address: 127.0.0.1:0
    protocol: http
    filters:
      - authz:
          default: allow
          rules:
            - {{ name: no-admin, action: deny, match: [ {{ key: ":path", prefix: /admin }} ] }}
      - local_ratelimit:
          buckets:
            - {{ name: per-user, per_key: X-User-Id, tokens_per_second: 0.01, burst: 2,
                match: [ {{ key: X-User-Id, present: true }} ] }}
    routes:
      - route: {{ cluster: web, timeout: 5s }}
clusters:
  - name: web
    protocol: http
    endpoints: [ {{ address: "{}" }} ]
"#,
        upstream.address
    );
    let proxy = Proxy::start("http-filters", &config);
    let base = format!("http://{}", proxy.addr("web"));
    let a = curl(&[&format!("{base}/admin/reset")]);
    assert_eq!(a.status, 403, "{:?} / logs:\n{}", a.headers, proxy.logs());
    let statuses: Vec<u16> = (0..3)
        .map(|_| curl(&["-H", "x-user-id: ann", &format!("{base}/cart")]).status)
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    let a = curl(&["-H", "X-USER-ID: ann", &format!("{base}/cart")]);
    assert_eq!(a.status, 429);
    // One token per 100 s: the next one is at most 100 s away.
    let secs: u64 = a
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .unwrap();
    assert!((1..=100).contains(&secs), "{secs}");
    // Another user has a bucket of its own.
    assert_eq!(
        curl(&["-H", "x-user-id: bob", &format!("{base}/cart")]).status,
        200
    );
}
