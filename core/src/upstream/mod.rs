//! Upstream connections, pooled per endpoint for every protocol.
//!
//! Each endpoint has one [`Pool`] per kind of connection its protocol
//! opens; a [`Connector`] says how to open one. The framed RPC engine's
//! connector ([`rpc`]) opens an [`UpstreamConn`]: a request gets a fresh
//! id from the connection it is sent on (the codec rewrites it on the way
//! up), and the response is matched by that id and handed back to the
//! waiting request, which restores the client's id on the way down.

pub mod connection;
mod connector;
mod conns;
mod in_flight;
mod lease;
pub mod pool;
pub mod rpc;
pub mod stream;

pub use connection::UpstreamConn;
pub use pool::{
    ConnState, Connector, Exclusive, Lease, Pool, PoolOptions, Reuse, SharedConn, Sharing,
};
pub use stream::{ConnectError, UpstreamStream, connect};

#[cfg(test)]
mod tests;
