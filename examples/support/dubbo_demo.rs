//! A tiny Dubbo provider and client for the examples, built on
//! metaproxy's own hessian2 reader/writer (the tests use third-party peers).
#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::BytesMut;
use metaproxy::codecs::dubbo::hessian::{Reader, writer};
use metaproxy::codecs::dubbo::{DubboDecoder, header};
use metaproxy::core::Decoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The interface the demo providers serve.
pub const INTERFACE: &str = "org.apache.dubbo.samples.DemoService";
const MAX_FRAME: usize = 1 << 20;

/// Serves `sayHello(name)` → `Hello <name>, from <tag>` on `listener`.
pub async fn provider(listener: TcpListener, tag: &'static str) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut decoder = DubboDecoder::new(MAX_FRAME);
            let mut buf = BytesMut::with_capacity(4096);
            loop {
                while let Ok(Some(msg)) = decoder.decode(&mut buf) {
                    let state = &msg.state;
                    let mut out = BytesMut::new();
                    if state.is_event() {
                        header::write(&mut out, 0x22, 20, msg.request_id, 1);
                        out.extend_from_slice(b"N");
                    } else if state.flags() & 0x40 != 0 {
                        let name = first_argument(&msg.body).unwrap_or_default();
                        let mut body = BytesMut::new();
                        writer::write_int(&mut body, 1);
                        writer::write_string(&mut body, &format!("Hello {name}, from {tag}"));
                        header::write(&mut out, 0x02, 20, msg.request_id, body.len() as u32);
                        out.extend_from_slice(&body);
                    }
                    if !out.is_empty() && s.write_all(&out).await.is_err() {
                        return;
                    }
                }
                match s.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
    }
}

/// The first argument of a request frame, as a string.
fn first_argument(frame: &[u8]) -> Option<String> {
    let mut r = Reader::new(frame, 16);
    for _ in 0..5 {
        r.read_string().ok()?;
    }
    r.decode_string().ok()
}

/// Builds a two-way `sayHello`-style request frame.
pub fn request(id: u64, method: &str, arg: &str, attachments: &[(String, String)]) -> BytesMut {
    let mut body = BytesMut::new();
    for s in [
        "2.0.2",
        INTERFACE,
        "1.0.0",
        method,
        "Ljava/lang/String;",
        arg,
    ] {
        writer::write_string(&mut body, s);
    }
    body.extend_from_slice(b"H");
    for (k, v) in attachments {
        writer::write_string(&mut body, k);
        writer::write_string(&mut body, v);
    }
    body.extend_from_slice(b"Z");
    let mut out = BytesMut::new();
    header::write(&mut out, 0xc2, 0, id, body.len() as u32);
    out.extend_from_slice(&body);
    out
}

/// Calls once and returns the answer text (or the error the proxy sent).
pub async fn call(
    s: &mut TcpStream,
    id: u64,
    method: &str,
    arg: &str,
    attachments: &[(String, String)],
) -> std::io::Result<Result<String, String>> {
    s.write_all(&request(id, method, arg, attachments)).await?;
    let mut h = [0u8; 16];
    s.read_exact(&mut h).await?;
    let len = u32::from_be_bytes([h[12], h[13], h[14], h[15]]) as usize;
    let mut frame = vec![0u8; 16 + len.min(MAX_FRAME)];
    frame[..16].copy_from_slice(&h);
    s.read_exact(&mut frame[16..]).await?;
    let mut r = Reader::new(&frame, 16);
    if h[3] != 20 {
        return Ok(Err(format!(
            "status {}: {}",
            h[3],
            r.decode_string().unwrap_or_default()
        )));
    }
    let _flag = r.read_int();
    Ok(r.decode_string()
        .map_err(|e| format!("unreadable answer: {e}")))
}

/// Binds `addr`, with a clear message when the port is taken.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind {addr}: {e} (is another copy running?)"))
}
