//! The `declarative` codec end to end through the real binary: a protocol
//! defined only in YAML, spoken by a hand-written client and upstreams.
//!
//! Frame (16-byte header, big endian): magic `cafe` | type u8 (0 request,
//! 1 response, 2 oneway, 5 error) | tenant u8 | id u64 | body length u32,
//! then the body: u16 length + service name, then the payload.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Proxy;

const FRAME: &str = r#"
      header_length: 16
      magic: { hex: "cafe", offset: 0 }
      message_type: { offset: 2, request: 0, response: 1, oneway: 2, error: 5 }
      request_id: { offset: 4, width: 8 }
      length: { offset: 12, width: 4 }
      fields:
        - { name: tenant, offset: 3, width: 1 }
        - { name: service, offset: 16, width: 2, type: string }
      max_frame_bytes: 65536"#;

const REQUEST: u8 = 0;
const RESPONSE: u8 = 1;
const ERROR: u8 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    kind: u8,
    tenant: u8,
    id: u64,
    service: String,
    payload: Vec<u8>,
}

impl Frame {
    fn request(tenant: u8, id: u64, service: &str, payload: &[u8]) -> Self {
        Self {
            kind: REQUEST,
            tenant,
            id,
            service: service.into(),
            payload: payload.to_vec(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = vec![0xca, 0xfe, self.kind, self.tenant];
        b.extend_from_slice(&self.id.to_be_bytes());
        let body_len = 2 + self.service.len() + self.payload.len();
        b.extend_from_slice(&(body_len as u32).to_be_bytes());
        b.extend_from_slice(&(self.service.len() as u16).to_be_bytes());
        b.extend_from_slice(self.service.as_bytes());
        b.extend_from_slice(&self.payload);
        b
    }

    /// Reads one frame; `None` at end of stream. Error frames carry the text as the whole body.
    fn read(s: &mut impl Read) -> Option<Frame> {
        let mut h = [0u8; 16];
        s.read_exact(&mut h).ok()?;
        assert_eq!(&h[..2], &[0xca, 0xfe], "magic");
        let len = u32::from_be_bytes(h[12..16].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).ok()?;
        let id = u64::from_be_bytes(h[4..12].try_into().unwrap());
        if h[2] == ERROR {
            return Some(Frame {
                kind: h[2],
                tenant: h[3],
                id,
                service: String::new(),
                payload: body,
            });
        }
        let slen = u16::from_be_bytes([body[0], body[1]]) as usize;
        Some(Frame {
            kind: h[2],
            tenant: h[3],
            id,
            service: String::from_utf8(body[2..2 + slen].to_vec()).unwrap(),
            payload: body[2 + slen..].to_vec(),
        })
    }
}

/// An upstream answering each request (out of order, after a short delay)
/// with `<tag>:<payload>`, recording the ids each connection saw.
struct Upstream {
    addr: SocketAddr,
    /// Ids seen, per accepted connection.
    seen: Arc<Mutex<Vec<Vec<u64>>>>,
}

impl Upstream {
    fn start(tag: &'static str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Vec<u64>>>> = Arc::default();
        let all = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                let index = {
                    let mut all = all.lock().unwrap();
                    all.push(Vec::new());
                    all.len() - 1
                };
                let all = all.clone();
                let writer = Arc::new(Mutex::new(conn.try_clone().unwrap()));
                std::thread::spawn(move || {
                    while let Some(req) = Frame::read(&mut conn) {
                        all.lock().unwrap()[index].push(req.id);
                        let writer = writer.clone();
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_millis(req.id % 4));
                            let mut payload = format!("{tag}:").into_bytes();
                            payload.extend_from_slice(&req.payload);
                            let resp = Frame {
                                kind: RESPONSE,
                                payload,
                                ..req
                            };
                            let _ = writer.lock().unwrap().write_all(&resp.bytes());
                        });
                    }
                });
            }
        });
        Upstream { addr, seen }
    }

    fn connections(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn config(v1: &Upstream, v2: &Upstream, billing: &Upstream, dead: SocketAddr) -> String {
    format!(
        r#"listeners:
  - name: toy
    address: 127.0.0.1:0
    protocol: declarative
    options:{FRAME}
    routes:
      - name: billing
        match: [ {{ key: service, exact: billing }} ]
        route: {{ cluster: billing }}
      - name: dead
        match: [ {{ key: service, exact: dead }} ]
        route: {{ cluster: dead }}
      - name: mutated
        match: [ {{ key: service, exact: mutated }} ]
        route: {{ cluster: billing }}
        request_headers: {{ set: {{ x-user: alice }} }}
      - name: tenant-7
        match: [ {{ key: tenant, exact: "7" }} ]
        route: {{ cluster: app, subset: v2 }}
      - name: nothing-for-tenant-9
        match: [ {{ key: tenant, exact: "9" }} ]
        route: {{ cluster: app, subset: none }}
      - name: canary
        route:
          weighted:
            - {{ cluster: app, subset: v1, weight: 80 }}
            - {{ cluster: app, subset: v2, weight: 20 }}
clusters:
  - name: app
    protocol: declarative
    connections_per_endpoint: 2
    options:{FRAME}
    endpoints:
      - {{ address: "{}", labels: {{ version: v1 }} }}
      - {{ address: "{}", labels: {{ version: v2 }} }}
    subsets: {{ v1: {{ version: v1 }}, v2: {{ version: v2 }}, none: {{ version: v9 }} }}
  - name: billing
    protocol: declarative
    options:{FRAME}
    endpoints: [ {{ address: "{}" }} ]
  - name: dead
    protocol: declarative
    options:{FRAME}
    endpoints: [ {{ address: "{dead}" }} ]
"#,
        v1.addr, v2.addr, billing.addr
    )
}

struct Setup {
    proxy: Proxy,
    v1: Upstream,
    v2: Upstream,
    billing: Upstream,
}

fn setup(name: &str) -> Setup {
    let v1 = Upstream::start("v1");
    let v2 = Upstream::start("v2");
    let billing = Upstream::start("billing");
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = Proxy::start(name, &config(&v1, &v2, &billing, dead));
    Setup {
        proxy,
        v1,
        v2,
        billing,
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn call(s: &mut TcpStream, req: &Frame) -> Frame {
    s.write_all(&req.bytes()).unwrap();
    Frame::read(s).expect("an answer")
}

fn tag_of(f: &Frame) -> String {
    let text = String::from_utf8_lossy(&f.payload);
    text.split(':').next().unwrap_or_default().to_string()
}

#[test]
fn routes_by_field_and_splits_by_weight() {
    let s = setup("declarative-routing");
    let mut c = connect(s.proxy.addr("toy"));

    let r = call(&mut c, &Frame::request(1, 11, "billing", b"pay"));
    assert_eq!(
        (r.kind, r.id, r.payload.as_slice()),
        (RESPONSE, 11, &b"billing:pay"[..])
    );
    assert_eq!(r.service, "billing");

    for i in 0..20 {
        let r = call(&mut c, &Frame::request(7, 100 + i, "orders", b"x"));
        assert_eq!(
            (r.id, tag_of(&r).as_str()),
            (100 + i, "v2"),
            "{}",
            s.proxy.logs()
        );
    }

    let n = 500u64;
    let mut counts: HashMap<String, u64> = HashMap::new();
    for i in 0..n {
        let r = call(&mut c, &Frame::request(1, 1000 + i, "orders", b"x"));
        assert_eq!(r.id, 1000 + i);
        *counts.entry(tag_of(&r)).or_default() += 1;
    }
    // 20% of 500 = 100, standard deviation ≈ 9: allow five of them.
    let v2 = counts.get("v2").copied().unwrap_or(0);
    assert!((55..=145).contains(&v2), "v2 got {v2} of {n}: {counts:?}");
    assert_eq!(counts.values().sum::<u64>(), n);
    assert!(s.v1.connections() >= 1 && s.billing.connections() == 1);
}

#[test]
fn local_replies_are_error_frames() {
    let s = setup("declarative-local");
    let mut c = connect(s.proxy.addr("toy"));
    let cases = [
        (Frame::request(9, 5, "orders", b""), "no healthy upstream"),
        (Frame::request(1, 6, "dead", b""), "connect"),
        (Frame::request(1, 7, "mutated", b""), "no header block"),
    ];
    for (req, expected) in cases {
        let r = call(&mut c, &req);
        let text = String::from_utf8_lossy(&r.payload).into_owned();
        assert_eq!((r.kind, r.id), (ERROR, req.id), "{text}");
        assert!(
            text.starts_with("metaproxy: ") && text.contains(expected),
            "{expected}: {text}"
        );
    }
    // The connection is still usable.
    let r = call(&mut c, &Frame::request(1, 8, "billing", b"ok"));
    assert_eq!((r.kind, r.id), (RESPONSE, 8));
    assert!(
        s.billing.seen.lock().unwrap().concat() != vec![7],
        "mutated request must not go up"
    );
}

#[test]
fn many_clients_share_few_upstream_connections() {
    let s = setup("declarative-sharing");
    let addr = s.proxy.addr("toy");
    let clients = 32;
    let per_client = 25u64;
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                let mut conn = connect(addr);
                // Every client uses the same ids, all in flight at once.
                let mut out = Vec::new();
                for id in 1..=per_client {
                    let payload = format!("client{c}-req{id}");
                    out.extend(Frame::request(7, id, "orders", payload.as_bytes()).bytes());
                }
                conn.write_all(&out).unwrap();
                let mut got = HashSet::new();
                for _ in 1..=per_client {
                    let r = Frame::read(&mut conn).expect("answer");
                    assert_eq!(r.kind, RESPONSE);
                    assert_eq!(
                        String::from_utf8_lossy(&r.payload),
                        format!("v2:client{c}-req{}", r.id),
                        "answer matched to the wrong request"
                    );
                    assert!(got.insert(r.id), "duplicate answer {}", r.id);
                }
                assert_eq!(got.len() as u64, per_client);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let seen = s.v2.seen.lock().unwrap().clone();
    assert!(
        (1..=2).contains(&seen.len()),
        "{} upstream connections for {clients} clients",
        seen.len()
    );
    assert_eq!(
        seen.iter().map(Vec::len).sum::<usize>(),
        clients * per_client as usize
    );
    for ids in &seen {
        let distinct: HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "ids were not rewritten");
    }
}

#[test]
fn bad_input_closes_only_that_connection() {
    let s = setup("declarative-bad");
    let addr = s.proxy.addr("toy");
    let mut good = connect(addr);
    assert_eq!(call(&mut good, &Frame::request(1, 1, "billing", b"")).id, 1);

    // Wrong magic: closed without an answer.
    let mut bad = connect(addr);
    let mut frame = Frame::request(1, 2, "billing", b"").bytes();
    frame[0] = 0xde;
    bad.write_all(&frame).unwrap();
    let mut rest = Vec::new();
    let _ = bad.read_to_end(&mut rest);
    assert!(rest.is_empty(), "got {rest:?}");

    // Oversized length: an error frame with the id, then closed, before the body is sent.
    let mut big = connect(addr);
    let mut frame = Frame::request(1, 3, "billing", b"").bytes();
    frame[12..16].copy_from_slice(&(10_000_000u32).to_be_bytes());
    big.write_all(&frame[..16]).unwrap();
    let r = Frame::read(&mut big).expect("an error frame");
    assert_eq!((r.kind, r.id), (ERROR, 3));
    assert!(String::from_utf8_lossy(&r.payload).contains("exceeds the limit"));
    assert!(Frame::read(&mut big).is_none(), "connection should close");

    // The good connection goes on.
    for id in 4..10 {
        assert_eq!(
            call(&mut good, &Frame::request(1, id, "billing", b"")).id,
            id
        );
    }
    assert!(s.v1.connections() + s.v2.connections() == 0);
}
