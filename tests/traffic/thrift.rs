//! Thrift: Apache Thrift's Python servers (`tests/peers/thrift/server.py`,
//! THeader servers, which answer every transport) as upstreams, its Python
//! client as the third-party client, and a Rust client writing strict
//! binary messages, framed, or in THeader frames when a key is sent (a
//! THeader info header is how Thrift carries `user-id`).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;

use super::peer::PeerProcess;
use super::{CallResult, Client, Failure, FailureKind, Flavor, Spec, Tally, hello_tag};
use crate::thrift_peers::{client as python_client, peers_dir};

/// Thrift (binary protocol; framed or THeader).
pub struct Thrift;

impl Flavor for Thrift {
    const NAME: &'static str = "thrift";
    const LISTENER: &'static str = "thrift";
    const CLUSTER: &'static str = "thrift";
    type Upstream = PeerProcess;
    type Client = ThriftClient;

    fn start(specs: &[Spec]) -> Vec<PeerProcess> {
        let dir = peers_dir();
        let command = || {
            let mut c = Command::new(dir.join(".venv/bin/python"));
            c.arg(dir.join("server.py"))
                .args(["--transport", "header", "--protocol", "binary"]);
            c
        };
        PeerProcess::start_all(specs, command, "\"method\": \"hello\"")
    }

    fn client(proxy: SocketAddr, source: Option<IpAddr>) -> ThriftClient {
        ThriftClient {
            proxy,
            source,
            stream: None,
            seqid: 1,
        }
    }

    fn third_party_calls(proxy: SocketAddr, key: &str, count: usize) -> Tally {
        let s = python_client(
            proxy.port(),
            &[
                "--transport",
                "header",
                "--count",
                &count.to_string(),
                "--header",
                &format!("user-id={key}"),
            ],
        );
        Tally {
            tags: s
                .results
                .iter()
                .map(|(k, v)| (hello_tag(k), *v as usize))
                .collect(),
            failures: s
                .error_messages
                .iter()
                .map(|(k, v)| (k.clone(), *v as usize))
                .collect(),
        }
    }
}

/// One connection, one call at a time (as Thrift clients do).
pub struct ThriftClient {
    proxy: SocketAddr,
    source: Option<IpAddr>,
    stream: Option<TcpStream>,
    seqid: i32,
}

/// A decoded answer.
enum Answer {
    Text(String),
    Int(i32),
}

impl ThriftClient {
    fn invoke(&mut self, method: &str, args: &[u8], headers: &[(&str, &str)]) -> CallResult {
        let seqid = self.seqid;
        self.seqid += 1;
        if self.stream.is_none() {
            let s = super::net::connect(self.proxy, self.source)
                .map_err(|e| Failure::new(FailureKind::Other, format!("connect: {e}")))?;
            self.stream = Some(s);
        }
        let message = call_message(method, seqid, args);
        let frame = if headers.is_empty() {
            framed(&message)
        } else {
            theader(&message, seqid, headers)
        };
        let stream = self.stream.as_mut().unwrap();
        let answer = stream
            .write_all(&frame)
            .map_err(|e| e.to_string())
            .and_then(|_| read_answer(stream, seqid));
        match answer {
            Ok(Ok(Answer::Text(s))) => Ok(hello_tag(&s)),
            Ok(Ok(Answer::Int(n))) => Ok(format!("slept {n}")),
            Ok(Err(failure)) => Err(failure),
            Err(e) => {
                self.stream = None;
                Err(Failure::new(FailureKind::Other, e))
            }
        }
    }
}

impl Client for ThriftClient {
    fn call(&mut self, key: Option<&str>) -> CallResult {
        let args = string_field(1, "bob");
        match key {
            Some(k) => self.invoke("hello", &args, &[("user-id", k)]),
            None => self.invoke("hello", &args, &[]),
        }
    }

    fn slow_call(&mut self, ms: u64) -> CallResult {
        let mut args = vec![8u8]; // i32
        args.extend_from_slice(&1i16.to_be_bytes());
        args.extend_from_slice(&(ms as i32).to_be_bytes());
        self.invoke("sleep", &args, &[])
    }
}

fn string_field(id: i16, s: &str) -> Vec<u8> {
    let mut out = vec![11u8]; // string
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(s.len() as i32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    out
}

/// A strict binary CALL: version | type, name, seqid, the args struct.
fn call_message(method: &str, seqid: i32, args: &[u8]) -> Vec<u8> {
    let mut out = 0x8001_0001u32.to_be_bytes().to_vec();
    out.extend_from_slice(&(method.len() as i32).to_be_bytes());
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(&seqid.to_be_bytes());
    out.extend_from_slice(args);
    out.push(0); // stop
    out
}

fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A THeader frame: length, magic 0x0FFF, flags, seqid, header words, then
/// protocol id 0 (binary), no transforms, one info block of key/values,
/// padding, and the message.
fn theader(message: &[u8], seqid: i32, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut header = Vec::new();
    varint(0, &mut header); // binary
    varint(0, &mut header); // no transforms
    varint(1, &mut header); // INFO_KEYVALUE
    varint(headers.len(), &mut header);
    for (k, v) in headers {
        varint(k.len(), &mut header);
        header.extend_from_slice(k.as_bytes());
        varint(v.len(), &mut header);
        header.extend_from_slice(v.as_bytes());
    }
    while header.len() % 4 != 0 {
        header.push(0);
    }
    let mut body = vec![0x0f, 0xff, 0, 0];
    body.extend_from_slice(&seqid.to_be_bytes());
    body.extend_from_slice(&((header.len() / 4) as u16).to_be_bytes());
    body.extend_from_slice(&header);
    body.extend_from_slice(message);
    framed(&body)
}

/// Reads one answer (framed or THeader) and decodes it: `Err(String)` for
/// transport trouble, `Ok(Err(..))` for a Thrift exception.
fn read_answer(stream: &mut TcpStream, seqid: i32) -> Result<Result<Answer, Failure>, String> {
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(|e| format!("read: {e}"))?;
    let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
    stream
        .read_exact(&mut frame)
        .map_err(|e| format!("read: {e}"))?;
    let payload = if frame.starts_with(&[0x0f, 0xff]) {
        let words = u16::from_be_bytes([frame[8], frame[9]]) as usize;
        frame[10 + 4 * words..].to_vec()
    } else {
        frame
    };
    let mut r = Reader(&payload);
    let version = r.i32()? as u32;
    if version & 0xffff_0000 != 0x8001_0000 {
        return Err(format!("not a strict binary message: {version:#x}"));
    }
    let kind = version & 0xff;
    let _name = r.string()?;
    let got = r.i32()?;
    if got != seqid {
        return Err(format!("seqid {got}, sent {seqid}"));
    }
    let fields = r.fields()?;
    Ok(match kind {
        2 => match fields.into_iter().find(|(id, _)| *id == 0) {
            Some((_, Value::Text(s))) => Ok(Answer::Text(s)),
            Some((_, Value::Int(n))) => Ok(Answer::Int(n)),
            _ => Err(Failure::new(FailureKind::Other, "declared exception")),
        },
        3 => {
            let text = fields
                .into_iter()
                .find_map(|(id, v)| match (id, v) {
                    (1, Value::Text(s)) => Some(s),
                    _ => None,
                })
                .unwrap_or_default();
            Err(classify(text))
        }
        other => return Err(format!("message type {other}")),
    })
}

/// A `TApplicationException` from the proxy names its reason in the message.
fn classify(text: String) -> Failure {
    let kind = if text.contains("upstream timeout") {
        FailureKind::Timeout
    } else if text.contains("over limit") {
        FailureKind::OverLimit
    } else if text.contains("no healthy upstream")
        || text.contains("connect failure")
        || text.contains("upstream reset")
    {
        FailureKind::Unavailable
    } else {
        FailureKind::Other
    };
    Failure::new(kind, text)
}

enum Value {
    Text(String),
    Int(i32),
    Other,
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("truncated answer".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.i32()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    /// The fields of a struct, up to its stop byte (strings, i32s; structs skipped).
    fn fields(&mut self) -> Result<Vec<(i16, Value)>, String> {
        let mut out = Vec::new();
        loop {
            let kind = self.take(1)?[0];
            if kind == 0 {
                return Ok(out);
            }
            let id = i16::from_be_bytes(self.take(2)?.try_into().unwrap());
            let value = match kind {
                11 => Value::Text(self.string()?),
                8 => Value::Int(self.i32()?),
                12 => {
                    self.fields()?;
                    Value::Other
                }
                other => return Err(format!("field type {other} not expected")),
            };
            out.push((id, value));
        }
    }
}
