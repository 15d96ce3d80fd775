//! An HTTP echo server: HTTP/1.1 keep-alive answered by a hand-written
//! loop (the body comes back as the response body; a bodiless request gets
//! `ok`), and h2c (prior knowledge, detected from the preface) served by
//! hyper with the same behaviour.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::{BadRequest, Handler};
use crate::http1_wire::{self as wire, WireError};

/// Per-connection state of the HTTP/1.1 echo.
#[derive(Debug, Default)]
pub struct Http1Echo {
    close: bool,
    chunk_body: Vec<u8>,
}

impl From<WireError> for BadRequest {
    fn from(e: WireError) -> Self {
        BadRequest(match e {
            WireError::HeadTooLarge => "http head too large",
            WireError::BadFraming => "http framing",
        })
    }
}

fn respond(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: ",
    );
    out.extend_from_slice(itoa(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// A decimal length without allocating.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa(mut n: usize) -> Digits {
    let mut d = Digits {
        buf: [0; 20],
        start: 20,
    };
    loop {
        d.start -= 1;
        d.buf[d.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

impl Handler for Http1Echo {
    fn handle(&mut self, buf: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, BadRequest> {
        if self.close {
            return Ok(None);
        }
        let Some(head) = wire::head_end(buf)? else {
            return Ok(None);
        };
        let f = wire::framing(&buf[..head])?;
        self.close = f.close;
        if f.chunked {
            self.chunk_body.clear();
            let Some(end) = wire::chunked_end(buf, head, Some(&mut self.chunk_body))? else {
                return Ok(None);
            };
            let body = std::mem::take(&mut self.chunk_body);
            respond(out, &body);
            self.chunk_body = body;
            return Ok(Some(end));
        }
        let len = f.content_length.unwrap_or(0);
        let Some(body) = buf.get(head..head + len) else {
            return Ok(None);
        };
        respond(out, if len == 0 { b"ok" } else { body });
        Ok(Some(head + len))
    }

    fn closing(&self) -> bool {
        self.close
    }
}

/// Accepts connections forever (HTTP/1.1 or h2c each).
pub async fn serve(listener: tokio::net::TcpListener) {
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream));
        }
    }
}

/// Serves one connection: h2c when it opens with the HTTP/2 preface, else HTTP/1.1.
pub async fn connection(stream: TcpStream) {
    let mut first = [0u8; 3];
    let is_h2 = loop {
        match stream.peek(&mut first).await {
            Ok(0) | Err(_) => return,
            Ok(n) if n < 3 && first[..n] == b"PRI"[..n] => {
                tokio::task::yield_now().await;
            }
            Ok(_) => break first == *b"PRI",
        }
    };
    if !is_h2 {
        return super::connection(stream, Http1Echo::default()).await;
    }
    let _ = stream.set_nodelay(true);
    let service =
        hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => Bytes::new(),
            };
            let body = if body.is_empty() {
                Bytes::from_static(b"ok")
            } else {
                body
            };
            Ok::<_, Infallible>(hyper::Response::new(Full::new(body)))
        });
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ClientProto, http1::Http1Client};

    #[test]
    fn echoes_bodies() {
        let mut c = Http1Client::new("x", 1000);
        let mut req = Vec::new();
        c.write_request(0, &mut req);
        c.write_request(0, &mut req);
        let mut h = Http1Echo::default();
        let mut out = Vec::new();
        let used = h.handle(&req, &mut out).unwrap().unwrap();
        assert_eq!(used, req.len() / 2);
        let r = c.parse_response(&out).unwrap().unwrap();
        assert!(r.ok && r.len == out.len());
        assert!(out.ends_with(&crate::payload(1000)));
        out.clear();
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
        assert_eq!(h.handle(chunked, &mut out).unwrap(), Some(chunked.len()));
        assert!(out.ends_with(b"content-length: 2\r\n\r\nhi"));
        out.clear();
        h.handle(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &mut out)
            .unwrap();
        assert!(out.ends_with(b"\r\n\r\nok") && h.closing());
    }
}
