//! Client connections from a chosen loopback address (127.0.0.2, ...), so
//! source-IP affinity can be tested from one machine.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// Connects to `addr` from `source` (any local address when `None`).
pub async fn connect_async(
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> io::Result<tokio::net::TcpStream> {
    let stream = match source {
        None => tokio::net::TcpStream::connect(addr).await?,
        Some(ip) => {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(addr).await?
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A blocking connection to `addr` from `source`, with a read timeout.
pub fn connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let stream = runtime.block_on(connect_async(addr, source))?.into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    Ok(stream)
}
