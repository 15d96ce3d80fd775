//! Upstream connections shared by many client connections.
//!
//! Each endpoint has an [`EndpointPool`] of a few [`UpstreamConn`]s. A request
//! gets a fresh id from the connection it is sent on (the codec rewrites it
//! on the way up); the response is matched by that id and handed back to
//! the waiting request, which restores the client's id on the way down.

pub mod connection;
pub mod pool;
pub mod stream;

pub use connection::UpstreamConn;
pub use pool::EndpointPool;
pub use stream::{ConnectError, UpstreamStream, connect};
