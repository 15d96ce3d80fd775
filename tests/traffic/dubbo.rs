//! Dubbo: sofa-rpc-node providers (`tests/peers/dubbo/provider.js`) as
//! upstreams, sofa-rpc-node's consumer (`client.js`) as the third-party
//! client, and a Rust client writing hessian2 frames over one connection.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;

use super::peer::PeerProcess;
use super::{CallResult, Client, Failure, FailureKind, Flavor, Spec, Tally, hello_tag};
use crate::common::dubbo_wire::{read_frame, request};
use crate::common::{dubbo_client, dubbo_peers};

const IFACE: &str = "org.apache.dubbo.samples.DemoService";

/// Dubbo 2 (hessian2).
pub struct Dubbo;

impl Flavor for Dubbo {
    const NAME: &'static str = "dubbo";
    const LISTENER: &'static str = "dubbo";
    const CLUSTER: &'static str = "dubbo";
    type Upstream = PeerProcess;
    type Client = DubboClient;

    fn start(specs: &[Spec]) -> Vec<PeerProcess> {
        let script = dubbo_peers().join("provider.js");
        let command = || {
            let mut c = Command::new("node");
            c.arg(&script);
            c
        };
        PeerProcess::start_all(specs, command, "\"method\":\"sayHello\"")
    }

    fn client(proxy: SocketAddr, source: Option<IpAddr>) -> DubboClient {
        DubboClient {
            proxy,
            source,
            stream: None,
            next_id: 1,
        }
    }

    fn third_party_calls(proxy: SocketAddr, key: &str, count: usize) -> Tally {
        let s = dubbo_client(
            proxy.port(),
            &[
                "--count",
                &count.to_string(),
                "--attach",
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

/// Hessian2 frames over one TCP connection, one call at a time.
pub struct DubboClient {
    proxy: SocketAddr,
    source: Option<IpAddr>,
    stream: Option<TcpStream>,
    next_id: u64,
}

impl DubboClient {
    fn invoke(&mut self, method: &str, arg: &str, attachments: &[(&str, &str)]) -> CallResult {
        let id = self.next_id;
        self.next_id += 1;
        if self.stream.is_none() {
            let s = super::net::connect(self.proxy, self.source)
                .map_err(|e| Failure::new(FailureKind::Other, format!("connect: {e}")))?;
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut().unwrap();
        let mut attach = vec![("path", IFACE), ("version", "1.0.0")];
        attach.extend_from_slice(attachments);
        let sent = stream.write_all(&request(id, IFACE, method, arg, &attach));
        let frame = sent.ok().and_then(|_| read_frame(stream));
        let Some(frame) = frame else {
            self.stream = None;
            return Err(Failure::new(FailureKind::Other, "connection closed"));
        };
        assert_eq!(frame.id, id, "answer to another request");
        match frame.status {
            20 => Ok(hello_tag(&value_string(&frame.body))),
            31 => Err(Failure::new(FailureKind::Timeout, frame.body_string())),
            100 => Err(Failure::new(FailureKind::OverLimit, frame.body_string())),
            _ => {
                let text = frame.body_string();
                let kind = if text.contains("no healthy upstream")
                    || text.contains("connect failure")
                    || text.contains("upstream reset")
                {
                    FailureKind::Unavailable
                } else {
                    FailureKind::Other
                };
                Err(Failure::new(
                    kind,
                    format!("status {}: {text}", frame.status),
                ))
            }
        }
    }
}

impl Client for DubboClient {
    fn call(&mut self, key: Option<&str>) -> CallResult {
        match key {
            Some(k) => self.invoke("sayHello", "bob", &[("user-id", k)]),
            None => self.invoke("sayHello", "bob", &[]),
        }
    }

    fn slow_call(&mut self, ms: u64) -> CallResult {
        self.invoke("sleep", &ms.to_string(), &[])
    }
}

/// The string of an OK response body: a result flag (value, or value with
/// attachments) then a hessian2 string.
fn value_string(body: &[u8]) -> String {
    let s = &body[1.min(body.len())..];
    let (start, len) = match s.first() {
        Some(&b @ 0..=0x1f) => (1, b as usize),
        Some(&b @ 0x30..=0x33) if s.len() > 1 => (2, (((b - 0x30) as usize) << 8) | s[1] as usize),
        Some(b'S') if s.len() > 2 => (3, u16::from_be_bytes([s[1], s[2]]) as usize),
        _ => return format!("<not a string: {body:02x?}>"),
    };
    // ASCII answers: characters are bytes.
    String::from_utf8_lossy(&s[start..(start + len).min(s.len())]).into_owned()
}
