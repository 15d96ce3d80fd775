//! Idle connections: open N, make one request on each (so every proxy has
//! set up whatever a live connection needs), then hold them open without
//! traffic so their memory can be read.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proto::ClientProto;

/// How the opening went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Opened {
    /// Connections that got a successful answer and are held.
    pub held: usize,
    /// Connections that failed.
    pub failed: usize,
}

/// Opens `count` connections to `addr`, one request each; returns the open ones.
pub async fn open(
    addr: SocketAddr,
    count: usize,
    proto: &mut dyn ClientProto,
    timeout: Duration,
) -> (Vec<TcpStream>, Opened) {
    let mut held = Vec::with_capacity(count);
    let mut result = Opened::default();
    let mut req = Vec::new();
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    for i in 0..count {
        req.clear();
        proto.write_request(i as u32 + 1, &mut req);
        let one = async {
            let mut s = TcpStream::connect(addr).await.ok()?;
            let _ = s.set_nodelay(true);
            s.write_all(&req).await.ok()?;
            rbuf.clear();
            loop {
                if s.read_buf(&mut rbuf).await.ok()? == 0 {
                    return None;
                }
                if let Some(r) = proto.parse_response(&rbuf).ok()? {
                    rbuf.advance(r.len);
                    return r.ok.then_some(s);
                }
            }
        };
        match tokio::time::timeout(timeout, one).await {
            Ok(Some(s)) => {
                held.push(s);
                result.held += 1;
            }
            _ => result.failed += 1,
        }
    }
    (held, result)
}
