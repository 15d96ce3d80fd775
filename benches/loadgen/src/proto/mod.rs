//! Client-side protocols: how the load generator writes a request and
//! finds one response in its read buffer.
//!
//! Each protocol builds its request once and only patches the request id
//! afterwards, so the hot loop copies bytes and allocates nothing.

pub mod dubbo;
pub mod http1;
pub mod thrift;

/// One response found at the front of the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Bytes the response takes (to consume).
    pub len: usize,
    /// The request id it answers; `None` for protocols answered in order.
    pub id: Option<u32>,
    /// Whether it is a success (a Dubbo OK value, a Thrift REPLY with the
    /// success field, an HTTP 2xx).
    pub ok: bool,
}

/// The bytes are not this protocol's response; the connection is reset.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bad response: {0}")]
pub struct BadResponse(pub &'static str);

/// A protocol the load generator speaks.
pub trait ClientProto: Send + 'static {
    /// Appends one request with id `id` to `out`.
    fn write_request(&mut self, id: u32, out: &mut Vec<u8>);
    /// The response at the front of `buf`, `Ok(None)` when more bytes are needed.
    fn parse_response(&self, buf: &[u8]) -> Result<Option<Response>, BadResponse>;
}
