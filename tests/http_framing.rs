//! Request smuggling defence, side by side: a table of framing cases (raw
//! request bytes, metaproxy's expected verdict) sent through the release
//! binary to a strict third-party upstream (Node's `http` server, see
//! `tests/peers/http/framing_upstream.js`) that logs every request it
//! parsed. Each case runs twice: as the first request of a connection (the
//! lean path parses it) and after a chunked request (hyper serves the rest
//! of the connection). For every case the upstream must never have parsed
//! more requests than the client got answers from it. A second table
//! checks that ambiguous answers from an upstream are never relayed (502
//! naming the reason) and that their connection is not reused.
//! The table is documented in `docs/protocols/http.md` ("Request framing").

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ChildGuard, Lines, Proxy, START_TIMEOUT, repo_root};

/// Bounds a case's exchange (it ends when the proxy closes; this only
/// stops a broken run from hanging).
const CASE_LIMIT: Duration = Duration::from_secs(20);

/// One framing case of `tests/peers/http/framing_cases.json`: `{p}` in
/// the bytes is the case's path prefix.
struct Case {
    name: String,
    bytes: String,
    /// Statuses the client gets when the lean path parses the request.
    lean: Vec<u16>,
    /// Statuses the client gets when hyper parses it.
    hyper: Vec<u16>,
    /// What HAProxy and nginx answered, measured by
    /// `tests/peers/http/framing_peers.py`, and whether they passed
    /// anything of the case to the upstream.
    peers: [(&'static str, Vec<u16>, bool); 2],
}

/// The table, shared with the script that measures HAProxy and nginx.
/// `ok` verdicts are answers relayed from the upstream.
fn cases() -> Vec<Case> {
    let path = repo_root().join("tests/peers/http/framing_cases.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let statuses = |v: &serde_json::Value| -> Vec<u16> {
        v.as_array()
            .unwrap_or_else(|| panic!("a list of statuses: {v}"))
            .iter()
            .map(|s| s.as_u64().unwrap() as u16)
            .collect()
    };
    list.iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            bytes: c["bytes"].as_str().unwrap().to_string(),
            lean: statuses(&c["lean"]),
            hyper: statuses(&c["hyper"]),
            peers: ["haproxy", "nginx"].map(|p| {
                (
                    p,
                    statuses(&c[p]),
                    c[format!("{p}_passed")].as_bool().unwrap(),
                )
            }),
        })
        .collect()
}

/// The request that makes hyper serve the rest of a connection.
const TO_HYPER: &str =
    "POST {p}-warm HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

/// The Node upstream: its port and what it logged.
struct Upstream {
    _child: ChildGuard,
    lines: Lines,
    port: u16,
}

fn start_upstream() -> Upstream {
    let script = repo_root().join("tests/peers/http/framing_upstream.js");
    let mut child = Command::new("node")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node is needed for the framing test upstream");
    let lines = Lines::spawn(child.stdout.take().unwrap());
    let first = lines
        .next(START_TIMEOUT)
        .expect("the Node upstream did not start");
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["event"], "listening", "{first}");
    let port = v["port"].as_u64().unwrap() as u16;
    Upstream {
        _child: ChildGuard(child),
        lines,
        port,
    }
}

fn start_proxy(test: &str, upstream: SocketAddr) -> Proxy {
    let config = format!(
        r#"
listeners:
  - name: http-in
    address: 127.0.0.1:0
    protocol: http
    routes: [ {{ route: {{ cluster: up, timeout: 5s }} }} ]
clusters:
  - {{ name: up, protocol: http, endpoints: [ {{ address: "{upstream}" }} ] }}
"#
    );
    // One worker: the tests count the upstream connections that client
    // connections share, and each worker keeps its own idle ones.
    Proxy::start_file(&common::write_config(test, &config), &["--workers", "1"])
}

/// One answer the client got.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

/// Sends `bytes` on a new connection and reads `expected` answers (or
/// fewer, when the proxy closes first). A connection still open then gets
/// a probe request (`probe` path, `connection: close`) and is read to its
/// end: any answer before the probe's is an extra one. Returns every
/// answer, the probe's included.
fn exchange(addr: SocketAddr, bytes: &[u8], expected: usize, probe: &str) -> Vec<Answer> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(CASE_LIMIT)).unwrap();
    s.write_all(bytes).unwrap();
    let mut got = Vec::new();
    let mut answers = Vec::new();
    let mut probed = false;
    let mut buf = [0u8; 8192];
    loop {
        while let Some((answer, used)) = parse_answer(&got) {
            answers.push(answer);
            got.drain(..used);
        }
        if answers.len() >= expected && !probed {
            probed = true;
            let request = format!("GET {probe} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
            // The proxy may have closed already: then this write may fail.
            let _ = s.write_all(request.as_bytes());
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset after the answers were sent still leaves them read.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "no end of answers: {e}; got {answers:?} and {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    assert!(
        got.is_empty(),
        "incomplete answer: {:?}",
        String::from_utf8_lossy(&got)
    );
    answers
}

/// The first complete answer in `bytes` and how many bytes it took (the
/// proxy's answers all carry a content-length or are chunked).
fn parse_answer(bytes: &[u8]) -> Option<(Answer, usize)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..end]).to_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    let mut at = end;
    let mut body = Vec::new();
    let line_end = |from: usize| {
        bytes
            .get(from..)?
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| from + i)
    };
    if head.contains("\r\ntransfer-encoding: chunked\r\n") {
        loop {
            let line = line_end(at)?;
            let size = std::str::from_utf8(&bytes[at..line]).ok()?;
            let size = usize::from_str_radix(size.split(';').next()?, 16).ok()?;
            at = line + 2;
            if size == 0 {
                at = line_end(at)? + 2;
                break;
            }
            body.extend_from_slice(bytes.get(at..at + size)?);
            at += size + 2;
        }
    } else {
        let length = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        body.extend_from_slice(bytes.get(at..at + length)?);
        at += length;
    }
    if at > bytes.len() {
        return None;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    Some((Answer { status, body }, at))
}

#[test]
fn request_framing_cases_side_by_side() {
    let cases = cases();
    assert!(cases.len() >= 30);
    let up = start_upstream();
    let proxy = start_proxy(
        "http_framing",
        format!("127.0.0.1:{}", up.port).parse().unwrap(),
    );
    let addr = proxy.addr("http-in");
    // (case prefix, mode) → answers relayed from the upstream.
    let mut relayed: HashMap<String, usize> = HashMap::new();
    // The cases whose connection stayed open (and carried the probe).
    let mut probes = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        for hyper in [false, true] {
            let prefix = format!("/c{i:02}{}", if hyper { "h" } else { "l" });
            let mut bytes = String::new();
            if hyper {
                bytes.push_str(&TO_HYPER.replace("{p}", &prefix));
            }
            bytes.push_str(&case.bytes.replace("{p}", &prefix));
            let want = if hyper { &case.hyper } else { &case.lean };
            let probe = format!("{prefix}-probe");
            let expected = want.len() + usize::from(hyper);
            let mut answers = exchange(addr, bytes.as_bytes(), expected, &probe);
            if answers.last().is_some_and(|a| a.body.contains(&probe)) {
                let last = answers.pop().unwrap();
                assert_eq!(last.status, 200, "{}: {last:?}", case.name);
                probes.insert(prefix.clone());
            }
            let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
            if hyper {
                assert_eq!(
                    statuses.first(),
                    Some(&200),
                    "{}: the request handing over to hyper failed: {answers:?}",
                    case.name
                );
                statuses.remove(0);
            }
            if statuses != *want {
                failures.push(format!(
                    "{} ({}): got {statuses:?}, want {want:?}: {answers:?}",
                    case.name,
                    if hyper { "hyper" } else { "lean" }
                ));
            }
            // Answers from the upstream name the path it parsed.
            let from_upstream = answers
                .iter()
                .filter(|a| a.status == 200 && a.body.contains(&format!(" {prefix}-")))
                .count();
            relayed.insert(prefix, from_upstream);
        }
    }
    assert!(
        failures.is_empty(),
        "verdicts differ:\n{}",
        failures.join("\n")
    );
    // Every upstream connection closes once the proxy is gone: after each
    // `close` line, that connection parsed all it ever will.
    let logs = proxy.logs();
    drop(proxy);
    let parsed = loop {
        // Read from scratch each time: every line the upstream printed.
        let mut open = std::collections::HashSet::new();
        let mut parsed: HashMap<String, Vec<String>> = HashMap::new();
        for line in up.lines.all() {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let conn = v["conn"].as_u64().unwrap_or(u64::MAX);
            match v["event"].as_str().unwrap() {
                "open" => {
                    open.insert(conn);
                }
                "close" => {
                    open.remove(&conn);
                }
                "request" => {
                    let path = v["path"].as_str().unwrap().to_string();
                    let prefix = path.split('-').next().unwrap().to_string();
                    parsed.entry(prefix).or_default().push(path);
                }
                _ => {}
            }
        }
        if open.is_empty() {
            break parsed;
        }
        // The proxy is gone: no connection opens any more; wait for the
        // next line (a close).
        up.lines
            .next(CASE_LIMIT)
            .expect("upstream connections still open after the proxy stopped");
    };
    for (prefix, paths) in &parsed {
        let answered =
            relayed.get(prefix).copied().unwrap_or(0) + usize::from(probes.contains(prefix));
        assert!(
            paths.len() <= answered,
            "{prefix}: the upstream parsed {paths:?} but the client got {answered} answers from it\n{}\nproxy log:\n{logs}",
            up.lines.all().join("\n")
        );
        assert!(
            !paths.iter().any(|p| p.ends_with("-smuggled")),
            "{prefix}: a smuggled request reached the upstream: {paths:?}"
        );
    }
    // And the accepted cases did reach it.
    for (i, case) in cases.iter().enumerate() {
        for (mode, want) in [("l", &case.lean), ("h", &case.hyper)] {
            let prefix = format!("/c{i:02}{mode}");
            let ok = want.iter().filter(|s| **s == 200).count()
                + usize::from(mode == "h")
                + usize::from(probes.contains(&prefix));
            let got = parsed.get(&prefix).map_or(0, Vec::len);
            assert_eq!(
                got,
                ok,
                "{} ({mode}): upstream parsed {:?}",
                case.name,
                parsed.get(&prefix)
            );
        }
    }
}

/// The ambiguous answer for `path`; `None` for the paths answered well.
fn scripted_answer(path: &str) -> Option<Vec<u8>> {
    let raw: &str = match path {
        "/r-cl-te" => {
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        }
        "/r-cl-differ" => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        "/r-cl-bad" => "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nab",
        "/r-te-gzip" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
        "/r-te-identity" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nxx",
        "/r-te-http10" => "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "/r-chunk-space" => {
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n"
        }
        "/r-chunk-lf" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n",
        "/r-chunk-overflow" => {
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000002\r\nok\r\n0\r\n\r\n"
        }
        _ => return None,
    };
    Some(raw.as_bytes().to_vec())
}

/// The well-framed answer: it names its connection and whether that
/// connection sent an ambiguous answer before (`tainted`).
fn good_answer(conn: usize, tainted: bool) -> Vec<u8> {
    let body = format!("conn={conn} tainted={tainted}");
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An upstream sending fixed (some ambiguous) answers, keeping connections
/// open; returns its address.
fn scripted_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let conn = next.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                let mut tainted = false;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    let mut chunked = false;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        chunked |= lower.starts_with("transfer-encoding:");
                    }
                    if chunked {
                        // The hand-over request's empty chunked body.
                        let mut end = [0u8; 5];
                        reader.read_exact(&mut end).unwrap();
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
                    let answer = match scripted_answer(&path) {
                        Some(bad) => {
                            tainted = true;
                            bad
                        }
                        None => good_answer(conn, tainted),
                    };
                    if out.write_all(&answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

/// An ambiguous answer and what the client gets for it.
struct BadAnswer {
    path: &'static str,
    /// The reason the 502 names when the lean path forwarded the request.
    lean: &'static str,
    /// The same when hyper did; `None`: relayed (hyper reads the framing
    /// one way only and re-frames it toward the client).
    hyper: Option<&'static str>,
}

const BAD_ANSWERS: &[BadAnswer] = &[
    BadAnswer {
        path: "/r-cl-te",
        lean: "both content-length and transfer-encoding",
        hyper: Some("both content-length and transfer-encoding"),
    },
    BadAnswer {
        path: "/r-cl-differ",
        lean: "content-length values differ",
        hyper: Some("invalid content-length parsed"),
    },
    BadAnswer {
        path: "/r-cl-bad",
        lean: "invalid content-length",
        hyper: Some("invalid content-length parsed"),
    },
    BadAnswer {
        path: "/r-te-gzip",
        lean: "transfer-encoding does not end in chunked",
        hyper: Some("transfer-encoding does not end in chunked"),
    },
    BadAnswer {
        path: "/r-te-identity",
        lean: "unsupported transfer-coding",
        hyper: Some("unsupported transfer-coding"),
    },
    BadAnswer {
        path: "/r-te-http10",
        lean: "transfer-encoding in an HTTP/1.0 message",
        hyper: Some("unexpected transfer-encoding parsed"),
    },
    BadAnswer {
        path: "/r-chunk-space",
        lean: "bad chunk size",
        hyper: None,
    },
    BadAnswer {
        path: "/r-chunk-lf",
        lean: "chunk line not ending in CRLF",
        hyper: Some("bad chunked answer"),
    },
    BadAnswer {
        path: "/r-chunk-overflow",
        lean: "chunk size too large",
        hyper: Some("bad chunked answer"),
    },
];

/// A GET of `path` on its own connection, after a request handing the
/// connection to hyper when `hyper`: the answer to the GET.
fn get(addr: SocketAddr, path: &str, hyper: bool) -> Answer {
    let mut bytes = String::new();
    if hyper {
        bytes.push_str(&TO_HYPER.replace("{p}", "/warm"));
    }
    bytes.push_str(&format!(
        "GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    ));
    let mut answers = exchange(addr, bytes.as_bytes(), 1 + usize::from(hyper), "/never");
    assert_eq!(answers.len(), 1 + usize::from(hyper), "{path}: {answers:?}");
    if hyper {
        let warm = answers.remove(0);
        assert!(warm.body.ends_with("tainted=false"), "{path}: {warm:?}");
    }
    answers.remove(0)
}

#[test]
fn ambiguous_answers_are_never_relayed_and_their_connection_is_dropped() {
    let up = scripted_upstream();
    let proxy = start_proxy("http_framing_answers", up);
    let addr = proxy.addr("http-in");
    let first = get(addr, "/ok", false);
    assert_eq!(first.status, 200, "{first:?}");
    let again = get(addr, "/ok", false);
    assert_eq!(again.body, first.body, "a good connection is reused");
    for hyper in [false, true] {
        // The answers hyper relays come last: their connection stays in
        // use (tainted, as the scripted upstream sees it).
        let mut order: Vec<&BadAnswer> = BAD_ANSWERS.iter().collect();
        order.sort_by_key(|b| hyper && b.hyper.is_none());
        for bad in order {
            let answer = get(addr, bad.path, hyper);
            match (hyper, bad.hyper) {
                (true, None) => assert_eq!(answer.status, 200, "{}: {answer:?}", bad.path),
                (false, _) | (true, Some(_)) => {
                    let reason = if hyper { bad.hyper.unwrap() } else { bad.lean };
                    assert_eq!(answer.status, 502, "{} ({hyper}): {answer:?}", bad.path);
                    assert!(
                        answer.body.contains(reason),
                        "{} ({hyper}): {answer:?}",
                        bad.path
                    );
                }
            }
            if hyper && bad.hyper.is_none() {
                // hyper read it one way only: its connection stays in use.
                continue;
            }
            // No later exchange goes on a connection that sent an
            // ambiguous answer.
            let next = get(addr, "/ok", hyper);
            assert_eq!(next.status, 200, "{next:?}");
            assert!(
                next.body.ends_with("tainted=false"),
                "{} ({hyper}): the connection of a refused answer was reused: {}",
                bad.path,
                next.body
            );
        }
    }
}

#[test]
fn the_documented_table_is_this_table() {
    let docs = std::fs::read_to_string(repo_root().join("docs/protocols/http.md")).unwrap();
    let join = |s: &[u16]| {
        if s.is_empty() {
            "closed".to_string()
        } else {
            s.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        }
    };
    for case in cases() {
        // A peer's error answer the upstream gave is marked as such.
        let peer = |i: usize| {
            let (_, verdict, passed) = &case.peers[i];
            let upstreams = *passed && verdict.iter().any(|s| *s >= 400);
            format!(
                "{}{}",
                join(verdict),
                if upstreams { " (upstream's)" } else { "" }
            )
        };
        let row = format!(
            "| {} | {} | {} | {} | {} |",
            case.name,
            join(&case.lean),
            join(&case.hyper),
            peer(0),
            peer(1)
        );
        assert!(
            docs.contains(&row),
            "docs/protocols/http.md lacks the row {row}"
        );
    }
}

/// What either HAProxy or nginx refuses itself, metaproxy refuses on both
/// engines (a 4xx), but for the exceptions the docs give: a request with
/// both `content-length` and `transfer-encoding` is re-framed (its length
/// removed, as RFC 9112 §6.1 allows); hyper reads a tab before
/// `transfer-encoding`'s value as the whitespace RFC 9112 allows, and
/// folds repeated equal lengths into one (RFC 9110 §8.6), re-framing the
/// body itself in both cases.
#[test]
fn what_haproxy_or_nginx_refuses_metaproxy_refuses() {
    let mut wrong = Vec::new();
    for case in cases() {
        let refused_by: Vec<&str> = case
            .peers
            .iter()
            .filter(|(_, verdict, passed)| !passed && verdict.iter().all(|s| *s >= 400))
            .map(|(name, _, _)| *name)
            .collect();
        if refused_by.is_empty() {
            continue;
        }
        let reframed = case.name.contains("CL.TE") || case.name.contains("TE.CL");
        for (engine, verdict) in [("lean", &case.lean), ("hyper", &case.hyper)] {
            let refuses = !verdict.is_empty() && verdict.iter().all(|s| (400..500).contains(s));
            let excused = reframed
                || (engine == "hyper"
                    && ["transfer-encoding after a tab", "two equal content-lengths"]
                        .contains(&case.name.as_str()));
            if !refuses && !excused {
                wrong.push(format!(
                    "{} ({engine}): {verdict:?}, refused by {refused_by:?}",
                    case.name
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// curl with `Expect: 100-continue` through the proxy to Node's server:
/// the client sees `100 Continue` (sent when the proxy starts forwarding
/// the body, as Envoy does by default) instead of waiting out its timer,
/// and the whole body arrives.
#[test]
fn expect_100_continue_gets_its_100_and_the_body_goes_through() {
    let upstream = start_upstream();
    let proxy = start_proxy(
        "expect-100",
        SocketAddr::from(([127, 0, 0, 1], upstream.port)),
    );
    let dir = common::scratch_dir("expect-100");
    let body = dir.join("body.bin");
    std::fs::write(&body, vec![b'x'; 300_000]).unwrap();
    let start = std::time::Instant::now();
    let out = Command::new("curl")
        .args(["-sv", "--max-time", "20", "--expect100-timeout", "10"])
        .args(["-H", "Expect: 100-continue", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg(format!("http://{}/upload", proxy.addr("http-in")))
        .output()
        .expect("curl");
    let took = start.elapsed();
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(trace.contains("< HTTP/1.1 100 Continue"), "{trace}");
    assert!(
        !trace.contains("Done waiting for 100-continue"),
        "the client waited out its timer: {trace}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "POST /upload 300000\n",
        "{trace}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}
