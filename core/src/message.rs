//! A decoded protocol message: what the codec found, plus the original bytes.

use bytes::Bytes;

use crate::metadata::Metadata;

/// The kind of a message, as the engine needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A request that expects a response.
    Request,
    /// A request that expects no response (forwarded, never waited for).
    Oneway,
    /// A response to a request.
    Response,
    /// A keep-alive probe; answered by whoever receives it.
    Heartbeat,
    /// A response to a heartbeat.
    HeartbeatResponse,
    /// An error response (exception, error status).
    Error,
}

/// One decoded message.
///
/// `body` holds the whole original frame (header included), a slice of the
/// read buffer: codecs forward it untouched unless a mutation or an id
/// rewrite needs a change. `state` is the codec's private, typed knowledge of
/// the frame (offsets, format, flags), kept beside the metadata map.
#[derive(Debug, Clone)]
pub struct Message<S> {
    /// What the message is.
    pub kind: MessageKind,
    /// The request id as found on the wire (Dubbo id, Thrift seqid, ...).
    pub request_id: u64,
    /// The routable key → value map.
    pub metadata: Metadata,
    /// The whole original frame.
    pub body: Bytes,
    /// Codec-private typed state.
    pub state: S,
}

impl<S> Message<S> {
    /// Whether the sender waits for an answer.
    pub fn expects_response(&self) -> bool {
        matches!(self.kind, MessageKind::Request | MessageKind::Heartbeat)
    }
}
