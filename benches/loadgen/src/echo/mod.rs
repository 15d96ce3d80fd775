//! Echo upstreams: small, fast servers that answer every request with its
//! own payload. One task per connection; every answer to the requests found
//! in one read goes out in one write.

pub mod dubbo;
pub mod http;
pub mod thrift;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The request bytes cannot be answered; the connection is closed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bad request: {0}")]
pub struct BadRequest(pub &'static str);

/// A protocol's server side, one per connection.
pub trait Handler: Send + 'static {
    /// Answers the request at the front of `buf` into `out`; returns the
    /// bytes it took, or `Ok(None)` when more are needed.
    fn handle(&mut self, buf: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, BadRequest>;
    /// Whether the connection should close once `out` is written.
    fn closing(&self) -> bool {
        false
    }
}

/// Accepts connections forever, serving each with a fresh handler.
pub async fn serve<H: Handler>(listener: TcpListener, handler: impl Fn() -> H) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let h = handler();
        tokio::spawn(connection(stream, h));
    }
}

/// Serves one connection with `h` until the peer closes or sends garbage.
pub async fn connection<H: Handler>(mut stream: TcpStream, mut h: H) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut filled = 0;
    loop {
        if buf.len() - filled < 16 * 1024 {
            buf.resize((buf.len() * 2).max(64 * 1024), 0);
        }
        let n = match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        let mut at = 0;
        loop {
            match h.handle(&buf[at..filled], &mut out) {
                Ok(Some(used)) => at += used,
                Ok(None) => break,
                Err(_) => return,
            }
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if h.closing() {
            return;
        }
    }
}
