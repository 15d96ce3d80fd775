//! One `auto` connection: sniff (peeking, so nothing is consumed), run
//! the TLS handshake when it is TLS and sniff again inside, then hand the
//! connection to the detected protocol's handler.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use metaproxy_core::listener::{ClientStream, ListenerContext, tls_handshake};
use metaproxy_core::registry::{ConnectionHandler, ServeFuture};
use metaproxy_core::tls::MaybeTls;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::debug;

use super::sniff::{SNIFF_BYTES, Sniffed, sniff};

/// The `protocol: auto` handler: the detected protocols' own handlers.
pub(crate) struct AutoHandler {
    pub http: Arc<dyn ConnectionHandler>,
    pub dubbo: Arc<dyn ConnectionHandler>,
    pub thrift: Arc<dyn ConnectionHandler>,
}

impl ConnectionHandler for AutoHandler {
    fn serve(
        &self,
        stream: ClientStream,
        peer: SocketAddr,
        ctx: Arc<ListenerContext>,
    ) -> ServeFuture {
        let handlers = (self.http.clone(), self.dubbo.clone(), self.thrift.clone());
        Box::pin(serve(handlers, stream, peer, ctx))
    }

    fn handles_tls(&self) -> bool {
        true
    }
}

type Handlers = (
    Arc<dyn ConnectionHandler>,
    Arc<dyn ConnectionHandler>,
    Arc<dyn ConnectionHandler>,
);

async fn serve(
    (http, dubbo, thrift): Handlers,
    stream: ClientStream,
    peer: SocketAddr,
    ctx: Arc<ListenerContext>,
) {
    let Some((wait, tls)) = ctx
        .snapshot
        .load()
        .listener(&ctx.name)
        .map(|l| (l.limits.header_read_timeout, l.tls.clone()))
    else {
        return;
    };
    let deadline = Instant::now() + wait;
    let (MaybeTls::Plain(tcp), _) = stream.into_parts() else {
        return;
    };
    let mut stream = ClientStream::plain(tcp);
    let mut kind = peek_kind(stream.tcp(), deadline).await;
    if kind == Sniffed::Tls {
        let Some(tls) = tls else {
            debug!(listener = %ctx.name, %peer, "TLS on a listener without `tls:`; closing");
            return;
        };
        let (MaybeTls::Plain(tcp), _) = stream.into_parts() else {
            return;
        };
        let Some(secure) = tls_handshake(&tls, tcp, peer, &ctx).await else {
            return;
        };
        let mut secure = ClientStream::tls(secure);
        let (inner, read) = read_kind(&mut secure, deadline).await;
        kind = inner;
        stream = secure.with_prefix(read);
    }
    let handler = match kind {
        Sniffed::Http => http,
        Sniffed::Dubbo => dubbo,
        Sniffed::Thrift => thrift,
        Sniffed::Tls | Sniffed::Unknown | Sniffed::NeedMore => {
            debug!(listener = %ctx.name, %peer, ?kind, "protocol not recognised; closing");
            return;
        }
    };
    handler.serve(stream, peer, ctx).await;
}

/// Peeks at the socket's first bytes until they tell the protocol, or
/// the deadline passes (`NeedMore`). Peeking consumes nothing, so a TLS
/// handshake or a protocol handler reads the bytes as sent.
async fn peek_kind(tcp: &TcpStream, deadline: Instant) -> Sniffed {
    let mut buf = [0u8; SNIFF_BYTES];
    let mut pause = Duration::from_millis(1);
    loop {
        let n = match tokio::time::timeout_at(deadline, tcp.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return Sniffed::NeedMore,
        };
        let kind = sniff(&buf[..n]);
        if kind != Sniffed::NeedMore || n == buf.len() {
            return kind;
        }
        // The same bytes would be peeked again at once: wait for more.
        if Instant::now() + pause >= deadline {
            return Sniffed::NeedMore;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Reads a TLS connection's first bytes until they tell the protocol;
/// returns the verdict and the bytes read (to be read again).
async fn read_kind<S: AsyncRead + Unpin>(stream: &mut S, deadline: Instant) -> (Sniffed, Bytes) {
    let mut buf = BytesMut::with_capacity(SNIFF_BYTES);
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            return (Sniffed::NeedMore, buf.freeze());
        }
        let kind = sniff(&buf);
        if kind != Sniffed::NeedMore || buf.len() >= SNIFF_BYTES {
            return (kind, buf.freeze());
        }
    }
}
