//! The lean HTTP/1.1 forwarding path.
//!
//! A plain HTTP/1.1 exchange (the common case of a gateway) does not go
//! through hyper: the request head is parsed in place with `httparse`
//! (metadata values are slices of the read buffer), routed by the same
//! shared step as every HTTP request, and forwarded as bytes on a pooled
//! upstream socket: the client's header bytes are copied as they are,
//! hop-by-hop headers dropped, forwarding headers and mutations added; the
//! answer's head is re-encoded the same way and its body relayed as
//! framed (chunked included), through one reused buffer.
//!
//! Whatever this path does not handle (see the [`serve`](mod@serve)
//! module) goes to hyper for the rest of the connection, with the bytes
//! already read.
//!
//! Its upstream side also serves HTTP/2 clients (hyper's server) of plain
//! HTTP/1.1 clusters: [`request_head_of`] writes their head, and
//! [`LeanAnswerBody`] reads the answer's body as HTTP/2 data and trailers.

mod answer_body;
mod chunked;
mod decode;
mod encode;
mod error;
mod exchange;
mod forward;
mod head;
mod meta;
mod pool;
mod relay;
mod serve;
mod spare;

pub use answer_body::LeanAnswerBody;
pub(crate) use chunked::{ChunkError, ChunkScanner};
pub(crate) use decode::{BodyDecoder, Piece};
pub(crate) use encode::request_head_of;
pub(crate) use exchange::{Answer, Framing, exchange};
pub(crate) use forward::answer_view;
pub(crate) use head::{
    Head, MAX_LEAN_BODY, check_parsed_answer, check_parsed_request, parse_request, parse_response,
    status,
};
pub(crate) use pool::LeanConnector;
pub(crate) use serve::{Handoff, serve};
