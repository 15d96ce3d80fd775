//! Thrift bad input from raw TCP clients (hand-written bytes): each case on
//! its own connection, while one good connection keeps working throughout.

mod common;
#[path = "common/thrift.rs"]
mod thrift_peers;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use common::Proxy;
use thrift_peers::{ThriftServer, client};

const EXCEPTION: u8 = 3;
const REPLY: u8 = 2;
const PROTOCOL_ERROR: i32 = 7;

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A strict binary message `name(1: string arg)` without framing.
fn message(name: &str, seqid: i32, arg: &str) -> Vec<u8> {
    let mut m = vec![0x80, 0x01, 0x00, 0x01];
    m.extend_from_slice(&(name.len() as i32).to_be_bytes());
    m.extend_from_slice(name.as_bytes());
    m.extend_from_slice(&seqid.to_be_bytes());
    m.extend_from_slice(&[11, 0, 1]);
    m.extend_from_slice(&(arg.len() as i32).to_be_bytes());
    m.extend_from_slice(arg.as_bytes());
    m.push(0);
    m
}

fn framed(payload: &[u8]) -> Vec<u8> {
    [&(payload.len() as i32).to_be_bytes()[..], payload].concat()
}

/// A THeader frame (binary inside) with a header block of `words` 4-byte words.
fn theader(payload: &[u8], words: u16) -> Vec<u8> {
    let mut f = Vec::new();
    let block = vec![0u8; 4];
    f.extend_from_slice(&((10 + block.len() + payload.len()) as i32).to_be_bytes());
    f.extend_from_slice(&[0x0f, 0xff, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&words.to_be_bytes());
    f.extend_from_slice(&block);
    f.extend_from_slice(payload);
    f
}

fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0; n];
    s.read_exact(&mut b).unwrap();
    b
}

/// Reads one length-prefixed frame (framed or THeader); returns its payload.
fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let len = i32::from_be_bytes(read_exact(s, 4).try_into().unwrap());
    read_exact(s, len as usize)
}

/// The binary message inside a THeader payload (after magic .. block).
fn theader_message(payload: &[u8]) -> &[u8] {
    let words = u16::from_be_bytes([payload[8], payload[9]]) as usize;
    &payload[10 + words * 4..]
}

/// (message type, seqid, exception type if an exception) of a strict binary message.
fn parse(m: &[u8]) -> (u8, i32, Option<i32>) {
    let t = m[3];
    let name_len = i32::from_be_bytes(m[4..8].try_into().unwrap()) as usize;
    let seqid = i32::from_be_bytes(m[8 + name_len..12 + name_len].try_into().unwrap());
    // TApplicationException ends with {…, 2: i32 type} STOP.
    let exc = (t == EXCEPTION)
        .then(|| i32::from_be_bytes(m[m.len() - 5..m.len() - 1].try_into().unwrap()));
    (t, seqid, exc)
}

fn assert_closed(s: &mut TcpStream) {
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .expect("connection closed by the proxy");
}

/// The long-lived good connection answers a call.
fn good_call(s: &mut TcpStream, seqid: i32) {
    s.write_all(&framed(&message("hello", seqid, "good")))
        .unwrap();
    let reply = read_frame(s);
    let (t, id, _) = parse(&reply);
    assert_eq!((t, id), (REPLY, seqid));
    assert!(String::from_utf8_lossy(&reply).contains("Hello good"));
}

fn start(test: &str, server: &ThriftServer) -> Proxy {
    Proxy::start(
        test,
        &format!(
            r#"
listeners:
  - name: thrift-in
    address: 127.0.0.1:0
    protocol: thrift
    limits: {{ max_frame_bytes: 4096 }}
    routes: [ {{ route: {{ cluster: s, timeout: 5s }} }} ]
clusters:
  - name: s
    protocol: thrift
    endpoints: [ {{ address: {} }} ]
"#,
            server.address()
        ),
    )
}

#[test]
fn bad_input_is_refused_and_other_connections_go_on() {
    let server = ThriftServer::start("header", "binary", "wire");
    let mut proxy = start("thrift-wire", &server);
    let addr = proxy.addr("thrift-in");
    let mut good = connect(addr);
    good_call(&mut good, 1);

    // 1. A frame over the limit: an addressed PROTOCOL_ERROR, then close.
    let mut s = connect(addr);
    let mut big = framed(&message("hello", 5, "x"));
    big[..4].copy_from_slice(&100_000i32.to_be_bytes());
    s.write_all(&big).unwrap();
    let (t, id, exc) = parse(&read_frame(&mut s));
    assert_eq!((t, id, exc), (EXCEPTION, 5, Some(PROTOCOL_ERROR)));
    assert_closed(&mut s);
    good_call(&mut good, 2);

    // 2. A negative frame size: closed.
    let mut s = connect(addr);
    s.write_all(&[0xff, 0xff, 0xff, 0xf0, 0x80, 0x01, 0, 1])
        .unwrap();
    assert_closed(&mut s);
    good_call(&mut good, 3);

    // 3. An unknown protocol version in a well-formed frame: closed.
    let mut s = connect(addr);
    let mut v = framed(&message("hello", 6, "x"));
    v[5] = 0x07;
    s.write_all(&v).unwrap();
    assert_closed(&mut s);
    good_call(&mut good, 4);

    // 4. A truncated struct on an unframed connection: waits, then the client gives up.
    let mut s = connect(addr);
    let m = message("hello", 9, "abcdef");
    s.write_all(&m[..m.len() - 4]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "no answer to half a message: {rest:?}");
    good_call(&mut good, 5);

    // 5. An unframed message with an unknown field type: PROTOCOL_ERROR, then close.
    let mut s = connect(addr);
    let mut m = message("hello", 10, "x");
    let at = m.len() - 9;
    m[at] = 0x55;
    s.write_all(&m).unwrap();
    let mut reply = vec![0u8; 256];
    let n = s.read(&mut reply).unwrap();
    let (t, id, exc) = parse(&reply[..n]);
    assert_eq!((t, id, exc), (EXCEPTION, 10, Some(PROTOCOL_ERROR)));
    assert_closed(&mut s);
    good_call(&mut good, 6);

    // 6. A THeader frame with a bogus header length: an error reply, and the
    //    connection goes on (the frame length was sound).
    let mut s = connect(addr);
    s.write_all(&theader(&message("hello", 11, "x"), 0x4000))
        .unwrap();
    let payload = read_frame(&mut s);
    assert_eq!(&payload[..2], &[0x0f, 0xff], "answered in THeader");
    let (t, _, exc) = parse(theader_message(&payload));
    assert_eq!((t, exc), (EXCEPTION, Some(PROTOCOL_ERROR)));
    s.write_all(&theader(&message("hello", 12, "again"), 1))
        .unwrap();
    let payload = read_frame(&mut s);
    let (t, id, _) = parse(theader_message(&payload));
    assert_eq!((t, id), (REPLY, 12), "logs:\n{}", proxy.logs());
    good_call(&mut good, 7);

    // 7. A real client compressing its THeader payload (zlib): INVALID_TRANSFORM.
    let r = client(addr.port(), &["--transport", "header", "--zlib"]);
    assert_eq!(r.exceptions("8"), 1, "{}", r.raw);
    good_call(&mut good, 8);

    assert!(proxy.is_running());
    let logs = proxy.logs();
    assert!(logs.contains("bad frame from client"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}
