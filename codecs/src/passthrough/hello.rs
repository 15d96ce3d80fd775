//! Reading a ClientHello without answering it: the bytes are kept to be
//! relayed as they are, and a copy is fed to rustls' `Acceptor`, which
//! parses the hello (record layer, handshake framing, extensions) and
//! gives its server name.

use std::io::Read;

use bytes::BytesMut;
use rustls::server::Acceptor;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Why no ClientHello was read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HelloError {
    /// The bytes are not a TLS ClientHello.
    #[error("not a TLS ClientHello: {0}")]
    NotTls(rustls::Error),
    /// More than the limit arrived without a complete ClientHello.
    #[error("ClientHello larger than {0} bytes")]
    TooLarge(usize),
    /// The client closed the connection first.
    #[error("client closed the connection before its ClientHello")]
    Closed,
    /// Reading from the client failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads until a whole ClientHello is in the buffer, at most `limit`
/// bytes; returns the bytes read (to relay) and the SNI, if the client
/// sent one. The caller bounds the time.
pub(crate) async fn read_client_hello(
    stream: &mut TcpStream,
    read: bytes::Bytes,
    limit: usize,
) -> Result<(BytesMut, Option<String>), HelloError> {
    let mut buf = BytesMut::with_capacity(2048.max(read.len()));
    buf.extend_from_slice(&read);
    let mut acceptor = Acceptor::default();
    let mut fed = 0;
    // Bytes read by protocol detection are parsed before reading more.
    let mut need_read = buf.is_empty();
    loop {
        if buf.len() >= limit {
            return Err(HelloError::TooLarge(limit));
        }
        if need_read {
            buf.reserve(2048);
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(HelloError::Closed);
            }
        }
        need_read = true;
        let mut fresh = &buf[fed..];
        while !fresh.is_empty() {
            match acceptor.read_tls(&mut fresh as &mut dyn Read) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(HelloError::Io(e)),
            }
        }
        fed = buf.len() - fresh.len();
        match acceptor.accept() {
            Ok(None) => continue,
            Ok(Some(accepted)) => {
                let sni = accepted.client_hello().server_name().map(str::to_string);
                return Ok((buf, sni));
            }
            Err((e, _alert)) => return Err(HelloError::NotTls(e)),
        }
    }
}
