//! The codec contract: how a protocol plugs into the engine.
//!
//! A protocol provides a [`Codec`] (shared, immutable: encodes and renders
//! replies) and a per-connection [`Decoder`] (mutable: finds frames in the
//! read buffer). Both are synchronous over whole frames; only the framing
//! I/O in [`crate::listener`] and [`crate::upstream`] is async.
//!
//! A codec for a new protocol implements these two traits and a
//! [`ProtocolCodecFactory`], then registers
//! [`crate::registry::RpcProtocol::new`] under its name. Nothing in this crate
//! changes.

use crate::error::PluginError;
use std::any::Any;
use std::fmt;
use std::sync::Arc;

use bytes::BytesMut;

use crate::error::ProxyError;
use crate::message::Message;
use crate::mutation::Mutation;

/// Why a frame could not be decoded or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecErrorKind {
    /// The bytes do not follow the protocol (bad magic, bad field).
    Malformed,
    /// A length field exceeds the configured maximum.
    FrameTooLarge,
    /// A valid but unsupported feature (e.g. a serialization the codec does not read).
    Unsupported,
    /// Encoding failed (e.g. a mutation the wire format cannot carry).
    Encode,
}

/// What a codec needs to answer a frame that failed to decode, recorded by
/// its decoder and read back by [`Codec::decode_error_reply`].
///
/// The content is the codec's own type (a Thrift codec keeps the client's
/// transport, protocol, seqid and exception type); the engine only carries
/// it from the decoder to the codec and never looks inside.
#[derive(Clone)]
pub struct ReplyContext(Arc<dyn Any + Send + Sync>);

impl ReplyContext {
    /// Wraps the codec's reply addressing.
    pub fn new<T: Any + Send + Sync>(context: T) -> Self {
        Self(Arc::new(context))
    }

    /// The addressing, if it is a `T` (a codec reads back its own type).
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl fmt::Debug for ReplyContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyContext(..)")
    }
}

/// A decode or encode failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CodecError {
    /// The class of failure.
    pub kind: CodecErrorKind,
    /// What was wrong, for logs and error replies.
    pub message: String,
    /// The request id of the offending frame, when the header was readable.
    pub request_id: Option<u64>,
    /// True when the decoder skipped the whole bad frame, so the connection
    /// can go on after an error reply; false when the stream is out of sync
    /// and the connection must close.
    pub frame_consumed: bool,
    /// How to address an error reply to the offending frame beyond its id,
    /// when the decoder could tell (see [`ReplyContext`]).
    pub reply_context: Option<ReplyContext>,
}

impl CodecError {
    /// An error after which the stream cannot be resynchronised.
    pub fn fatal(kind: CodecErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            request_id: None,
            frame_consumed: false,
            reply_context: None,
        }
    }

    /// An error for one frame that the decoder has skipped entirely.
    pub fn skipped_frame(
        kind: CodecErrorKind,
        message: impl Into<String>,
        request_id: u64,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            request_id: Some(request_id),
            frame_consumed: true,
            reply_context: None,
        }
    }

    /// Attaches the request id of the offending frame.
    pub fn with_request_id(mut self, id: u64) -> Self {
        self.request_id = Some(id);
        self
    }

    /// Attaches the codec's addressing of an error reply (see [`ReplyContext`]).
    pub fn with_reply_context(mut self, context: ReplyContext) -> Self {
        self.reply_context = Some(context);
        self
    }
}

/// Finds frames in a connection's read buffer. One per connection.
pub trait Decoder: Send + 'static {
    /// The codec's private per-message state.
    type State: Send + Sync + 'static;

    /// Decodes one frame from the front of `src`.
    ///
    /// Returns `Ok(None)` when more bytes are needed (nothing consumed).
    /// On success the frame's bytes are split off `src` (zero-copy).
    /// Must check every length against what is buffered and the configured
    /// maximum before reserving memory, and never panic on any input.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message<Self::State>>, CodecError>;
}

/// A protocol's encoder and reply renderer, shared by all connections of a listener or cluster.
pub trait Codec: Send + Sync + 'static {
    /// The codec's private per-message state.
    type State: Send + Sync + 'static;
    /// The per-connection decoder.
    type Decoder: Decoder<State = Self::State>;

    /// The protocol's name, also the value of the `protocol` metadata key.
    fn protocol(&self) -> &'static str;

    /// A fresh decoder for a new connection.
    fn decoder(&self) -> Self::Decoder;

    /// Writes `request` upstream with request id `id` and `mutation` applied.
    ///
    /// With an empty mutation, codecs copy the original frame and patch the id.
    fn encode_request(
        &self,
        request: &Message<Self::State>,
        id: u64,
        mutation: &Mutation,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError>;

    /// Writes `response` downstream as the answer to `request` (same id, the
    /// request's format), with `mutation` applied.
    fn encode_response(
        &self,
        response: &Message<Self::State>,
        request: &Message<Self::State>,
        mutation: &Mutation,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError>;

    /// Renders `error` as the protocol's native error answer to `request`.
    fn local_reply(&self, request: &Message<Self::State>, error: &ProxyError, dst: &mut BytesMut);

    /// Renders the answer to a heartbeat.
    fn heartbeat_reply(&self, heartbeat: &Message<Self::State>, dst: &mut BytesMut);

    /// Renders an error answer for a frame that failed to decode, if the
    /// protocol can address one: from `error.request_id` (the frame's id, when
    /// readable) and, for protocols whose replies need more than the id,
    /// `error.reply_context` as this codec's decoder set it. Returns whether
    /// it wrote one.
    fn decode_error_reply(&self, error: &CodecError, dst: &mut BytesMut) -> bool {
        let _ = (error, dst);
        false
    }

    /// The largest request id the wire format carries (ids wrap after it).
    fn max_request_id(&self) -> u64 {
        u64::MAX
    }

    /// How this (cluster-side) codec's upstream connections carry requests
    /// when the cluster's config does not say (`mode:`).
    fn default_upstream_mode(&self) -> UpstreamMode {
        UpstreamMode::Multiplex
    }

    /// How an upstream response counts for retries and outlier detection.
    /// Application errors (a declared exception, a business error) are
    /// `Success`: the server worked. The default treats every `Error` kind
    /// as a server error.
    fn classify_response(&self, response: &Message<Self::State>) -> ResponseClass {
        match response.kind {
            crate::message::MessageKind::Error => ResponseClass::ServerError,
            _ => ResponseClass::Success,
        }
    }

    /// A frame that probes an endpoint's health (a Dubbo heartbeat, a Thrift
    /// call of `method`), or `None` when the protocol has none (then a TCP
    /// connect is the check).
    fn health_check_frame(&self, method: Option<&str>) -> Option<BytesMut> {
        let _ = method;
        None
    }

    /// Whether the answer to [`Codec::health_check_frame`] means healthy.
    fn health_check_passed(&self, response: &Message<Self::State>) -> bool {
        self.classify_response(response) == ResponseClass::Success
    }
}

/// What an upstream response says about the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseClass {
    /// The server handled the request (whatever the application said).
    Success,
    /// The server failed (HTTP 5xx, Dubbo server error, Thrift internal error).
    ServerError,
    /// The server refused for lack of capacity (HTTP 503, Dubbo thread pool exhausted).
    Unavailable,
}

pub use crate::config::UpstreamMode;

/// Options every codec receives, from the listener's or the cluster's config.
#[derive(Debug, Clone)]
pub struct CodecOptions {
    /// Largest frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// The protocol's own config section (`options: {...}`), or `null`.
    pub extra: serde_json::Value,
}

impl Default for CodecOptions {
    fn default() -> Self {
        Self {
            max_frame_bytes: crate::config::DEFAULT_MAX_FRAME_BYTES,
            extra: serde_json::Value::Null,
        }
    }
}

/// Builds a protocol's codecs from config; registered through
/// [`crate::registry::RpcProtocol`].
pub trait ProtocolCodecFactory: Send + Sync + 'static {
    /// The codec this factory builds.
    type Codec: Codec;

    /// The protocol's name as written in config (`protocol: dubbo`).
    fn name(&self) -> &'static str;

    /// The codec for a listener (downstream side).
    fn listener_codec(&self, options: &CodecOptions) -> Result<Self::Codec, PluginError>;

    /// The codec for a cluster (upstream side). Defaults to the listener codec.
    fn cluster_codec(&self, options: &CodecOptions) -> Result<Self::Codec, PluginError> {
        self.listener_codec(options)
    }
}
