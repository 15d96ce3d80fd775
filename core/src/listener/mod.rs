//! The listener engine for framed request/response protocols: accept,
//! decode, filter, route, forward, match the response, encode.

mod accept;
mod connection;
mod request;
mod writer;

pub use crate::downstream::{ClientIo, ClientStream, connection_metadata};
pub use crate::snapshot::ListenerContext;
pub use accept::{run_accept_loop, tls_handshake};
pub use connection::serve_rpc_connection;
