//! Dubbo wire-level behaviour of the real binary: heartbeats, native error
//! statuses, and bad input from clients (each case on its own connection,
//! while other connections keep working).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use common::dubbo_wire::{header, heartbeat, read_frame, request};
use common::{DubboProvider, Proxy};

const IFACE: &str = "org.apache.dubbo.samples.DemoService";

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn start(test: &str, provider: &DubboProvider) -> Proxy {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    Proxy::start(
        test,
        &format!(
            r#"
listeners:
  - name: dubbo-in
    address: 127.0.0.1:0
    protocol: dubbo
    limits: {{ max_frame_bytes: 4096 }}
    routes:
      - name: dead
        match: [ {{ key: method, exact: toDeadProvider }} ]
        route: {{ cluster: dead }}
      - name: live
        match: [ {{ key: interface, exact: {IFACE} }} ]
        route: {{ cluster: live }}
clusters:
  - name: live
    protocol: dubbo
    endpoints: [ {{ address: "{}" }} ]
  - name: dead
    protocol: dubbo
    endpoints: [ {{ address: "{dead}" }} ]
"#,
            provider.address()
        ),
    )
}

/// A heartbeat round trip proves a connection (and the proxy) still works.
fn assert_heartbeat(s: &mut TcpStream, id: u64) {
    s.write_all(&heartbeat(id)).unwrap();
    let f = read_frame(s).expect("heartbeat answer");
    assert_eq!(f.id, id);
    assert_eq!(
        f.flags & 0xa0,
        0x20,
        "event bit set, request bit clear: {:#x}",
        f.flags
    );
    assert_eq!(f.status, 20);
}

fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("connection not closed: {e}"),
        }
    }
}

#[test]
fn heartbeats_are_answered_by_the_proxy() {
    let provider = DubboProvider::start("hb");
    let proxy = start("heartbeat", &provider);
    let mut s = connect(proxy.addr("dubbo-in"));
    assert_heartbeat(&mut s, 7);
    assert_heartbeat(&mut s, u64::MAX);
}

#[test]
fn local_replies_carry_native_statuses_and_the_client_id() {
    let provider = DubboProvider::start("status");
    let proxy = start("status", &provider);
    let mut s = connect(proxy.addr("dubbo-in"));
    // No route: another interface.
    s.write_all(&request(41, "com.example.Other", "sayHello", "x", &[]))
        .unwrap();
    let f = read_frame(&mut s).unwrap();
    assert_eq!((f.id, f.status), (41, 60), "SERVICE_NOT_FOUND");
    assert!(
        f.body_string()
            .contains("no route for com.example.Other.sayHello"),
        "{}",
        f.body_string()
    );
    // Endpoint down.
    s.write_all(&request(42, IFACE, "toDeadProvider", "x", &[]))
        .unwrap();
    let f = read_frame(&mut s).unwrap();
    assert_eq!((f.id, f.status), (42, 60));
    assert!(
        f.body_string().contains("cannot connect"),
        "{}",
        f.body_string()
    );
    // A real call on the same connection, with a large id: restored on the way back.
    s.write_all(&request(u64::MAX - 1, IFACE, "sayHello", "ann", &[]))
        .unwrap();
    let f = read_frame(&mut s).unwrap();
    assert_eq!((f.id, f.status), (u64::MAX - 1, 20));
    assert!(String::from_utf8_lossy(&f.body).contains("Hello ann, from status"));
}

#[test]
fn bad_input_closes_or_answers_only_the_offending_connection() {
    let provider = DubboProvider::start("bad");
    let mut proxy = start("badinput", &provider);
    let addr = proxy.addr("dubbo-in");
    // A healthy connection that must survive everything below.
    let mut good = connect(addr);
    assert_heartbeat(&mut good, 1);

    // 1. Wrong magic: closed.
    let mut s = connect(addr);
    s.write_all(&[0xca, 0xfe, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        .unwrap();
    assert_closed(&mut s);

    // 2. Body length over max_frame_bytes (4096): BAD_REQUEST for that id, then closed.
    let mut s = connect(addr);
    s.write_all(&header(0xc2, 0, 99, 1 << 20)).unwrap();
    let f = read_frame(&mut s).expect("error reply before close");
    assert_eq!((f.id, f.status), (99, 40));
    assert_closed(&mut s);

    // 3. Negative length: closed.
    let mut s = connect(addr);
    s.write_all(&header(0xc2, 0, 5, -4)).unwrap();
    assert_closed(&mut s);

    // 4. Truncated frame, then the client goes away: nothing breaks.
    let mut s = connect(addr);
    let full = request(3, IFACE, "sayHello", "cut", &[]);
    s.write_all(&full[..full.len() / 2]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_closed(&mut s);

    // 5. Garbage hessian in a well-framed request: BAD_REQUEST, connection goes on.
    let mut s = connect(addr);
    let mut frame = header(0xc2, 0, 11, 8);
    frame.extend_from_slice(&[0xff, 0xfe, 0x00, 0x41, 0x42, 0x43, 0x44, 0x45]);
    s.write_all(&frame).unwrap();
    let f = read_frame(&mut s).unwrap();
    assert_eq!((f.id, f.status), (11, 40), "{}", f.body_string());
    assert_heartbeat(&mut s, 12);

    // 6. Unknown serialization id (6 = fastjson): BAD_REQUEST naming it.
    let mut s = connect(addr);
    let mut frame = request(21, IFACE, "sayHello", "x", &[]);
    frame[2] = 0xc0 | 6;
    s.write_all(&frame).unwrap();
    let f = read_frame(&mut s).unwrap();
    assert_eq!((f.id, f.status), (21, 40));
    assert!(
        f.body_string().contains("serialization"),
        "{}",
        f.body_string()
    );
    assert_heartbeat(&mut s, 22);

    // The first connection and the proxy are unaffected; the reasons are logged.
    assert_heartbeat(&mut good, 2);
    good.write_all(&request(3, IFACE, "sayHello", "still-here", &[]))
        .unwrap();
    let f = read_frame(&mut good).unwrap();
    assert_eq!((f.id, f.status), (3, 20));
    assert!(proxy.is_running());
    let logs = proxy.logs();
    assert!(logs.contains("bad frame from client"), "{logs}");
    assert!(logs.contains("magic"), "{logs}");
}
