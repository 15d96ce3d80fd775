//! How a cluster's requests share an upstream connection (`mode:`).

/// How requests share an upstream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamMode {
    /// Many requests in flight, answers matched by request id (the proxy
    /// rewrites ids so requests from many clients can share a connection).
    Multiplex,
    /// Many requests in flight, answers returned in request order (matched first in, first out).
    Pipeline,
    /// One request in flight per connection; connections are pooled and reused.
    Exclusive,
}
