//! The Dubbo [`Codec`], [`Decoder`] and [`ProtocolCodecFactory`].
//!
//! Decoding: a bad magic or a negative body length closes the connection;
//! a body longer than `max_frame_bytes` (the body alone, not counting the
//! 16-byte header) is refused from the header alone, before buffering it,
//! with the request id attached. A request in a serialization other than
//! hessian2, or with a body that is not valid hessian, is consumed and
//! reported as a skipped frame so the connection goes on.
//!
//! Encoding: with an empty mutation a frame is copied once with its id
//! patched. A mutation rewrites the attachments map (see
//! [`crate::dubbo::attachments`]). It cannot be carried by events, by
//! error-status responses or by responses in another serialization: those
//! are forwarded unchanged. Replies the proxy writes itself (local replies,
//! heartbeat answers, decode-error replies) are always hessian2
//! (serialization id 2), whatever the request used, since their body is.

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use metaproxy_core::PluginError;
use metaproxy_core::{
    Codec, CodecError, CodecErrorKind, CodecOptions, Decoder, Message, MessageKind, Metadata,
    Mutation, ProtocolCodecFactory, ProxyError, ResponseClass, keys,
};

use super::attachments::Rewrite;
use super::header::{
    self, FLAG_EVENT, HEADER_LEN, Header, HeaderParse, ID_OFFSET, LEN_OFFSET,
    SERIALIZATION_HESSIAN2,
};
use super::hessian::writer;
use super::{BodyInfo, DubboState, PROTOCOL, request, response, status};

/// Builds [`DubboCodec`]s from config; registered as `dubbo`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DubboCodecFactory;

impl DubboCodecFactory {
    /// A factory.
    pub fn new() -> Self {
        Self
    }
}

impl ProtocolCodecFactory for DubboCodecFactory {
    type Codec = DubboCodec;

    fn name(&self) -> &'static str {
        PROTOCOL
    }

    fn listener_codec(&self, options: &CodecOptions) -> Result<DubboCodec, PluginError> {
        Ok(DubboCodec::new(options.max_frame_bytes))
    }
}

/// The Dubbo 2 (hessian2) codec, shared by the connections of a listener or cluster.
#[derive(Debug, Clone)]
pub struct DubboCodec {
    max_frame_bytes: usize,
}

impl DubboCodec {
    /// A codec accepting bodies of at most `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self { max_frame_bytes }
    }
}

/// Finds Dubbo frames in a connection's read buffer.
#[derive(Debug, Clone)]
pub struct DubboDecoder {
    max_frame_bytes: usize,
}

impl DubboDecoder {
    /// A decoder accepting bodies of at most `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self { max_frame_bytes }
    }
}

fn encode_err(message: impl Into<String>) -> CodecError {
    CodecError::fatal(CodecErrorKind::Encode, message)
}

fn base_metadata(capacity: usize, id: u64) -> Metadata {
    let mut m = Metadata::with_capacity(capacity);
    m.push(
        ByteString::from_static(keys::PROTOCOL),
        ByteString::from_static(PROTOCOL),
    );
    m.push(
        ByteString::from_static(keys::REQUEST_ID),
        ByteString::from(id.to_string()),
    );
    m
}

fn message(
    kind: MessageKind,
    h: Header,
    metadata: Metadata,
    frame: Bytes,
    body: BodyInfo,
) -> Message<DubboState> {
    Message {
        kind,
        request_id: h.request_id,
        metadata,
        body: frame,
        state: DubboState::new(h, body),
    }
}

fn decode_request(h: Header, frame: Bytes) -> Result<Message<DubboState>, CodecError> {
    let two_way_kind = |yes, no| if h.is_two_way() { yes } else { no };
    if h.is_event() {
        let kind = two_way_kind(MessageKind::Heartbeat, MessageKind::Oneway);
        return Ok(message(
            kind,
            h,
            base_metadata(2, h.request_id),
            frame,
            BodyInfo::Unread,
        ));
    }
    if h.serialization() != SERIALIZATION_HESSIAN2 {
        return Err(CodecError::skipped_frame(
            CodecErrorKind::Unsupported,
            format!("unsupported serialization id {}", h.serialization()),
            h.request_id,
        ));
    }
    let body = request::parse(&frame).map_err(|e| {
        CodecError::skipped_frame(
            CodecErrorKind::Malformed,
            format!("malformed dubbo request body: {e}"),
            h.request_id,
        )
    })?;
    let metadata = request::metadata(&body, h.request_id);
    let kind = two_way_kind(MessageKind::Request, MessageKind::Oneway);
    Ok(message(
        kind,
        h,
        metadata,
        frame,
        BodyInfo::Request(body.attachments),
    ))
}

fn decode_response(h: Header, frame: Bytes) -> Message<DubboState> {
    let mut metadata = base_metadata(3, h.request_id);
    metadata.push(
        ByteString::from_static("status"),
        ByteString::from(h.status.to_string()),
    );
    if h.is_event() {
        return message(
            MessageKind::HeartbeatResponse,
            h,
            metadata,
            frame,
            BodyInfo::Unread,
        );
    }
    let flag = (h.status == status::OK && h.serialization() == SERIALIZATION_HESSIAN2)
        .then(|| response::flag(&frame))
        .flatten();
    let kind = match flag {
        _ if h.status != status::OK => MessageKind::Error,
        Some(f) if response::is_exception(f) => MessageKind::Error,
        _ => MessageKind::Response,
    };
    message(kind, h, metadata, frame, BodyInfo::Response(flag))
}

impl Decoder for DubboDecoder {
    type State = DubboState;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message<DubboState>>, CodecError> {
        let h = match header::parse(src) {
            HeaderParse::Incomplete => return Ok(None),
            HeaderParse::BadMagic => {
                return Err(CodecError::fatal(
                    CodecErrorKind::Malformed,
                    "not a dubbo frame (bad magic)",
                ));
            }
            HeaderParse::Complete(h) => h,
        };
        let Ok(body_len) = usize::try_from(h.body_len) else {
            return Err(CodecError::fatal(
                CodecErrorKind::Malformed,
                format!("negative dubbo body length {}", h.body_len),
            ));
        };
        if body_len > self.max_frame_bytes {
            return Err(CodecError::fatal(
                CodecErrorKind::FrameTooLarge,
                format!(
                    "dubbo body of {body_len} bytes exceeds the limit of {} bytes",
                    self.max_frame_bytes
                ),
            )
            .with_request_id(h.request_id));
        }
        let total = HEADER_LEN + body_len;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        let frame = src.split_to(total).freeze();
        if h.is_request() {
            decode_request(h, frame).map(Some)
        } else {
            Ok(Some(decode_response(h, frame)))
        }
    }
}

/// Copies `frame` into `dst` with its id replaced by `id`: one reserve, one copy.
fn copy_with_id(frame: &[u8], id: u64, dst: &mut BytesMut) -> Result<(), CodecError> {
    let (Some(head), Some(rest)) = (frame.get(..ID_OFFSET), frame.get(LEN_OFFSET..)) else {
        return Err(encode_err("dubbo frame shorter than its header"));
    };
    dst.reserve(frame.len());
    dst.put_slice(head);
    dst.put_u64(id);
    dst.put_slice(rest);
    Ok(())
}

/// Writes a hessian2 response with `status` and a string body.
fn write_error_response(dst: &mut BytesMut, id: u64, status: u8, text: &str) {
    let body_len = writer::string_len(text);
    dst.reserve(HEADER_LEN + body_len);
    header::write(
        dst,
        SERIALIZATION_HESSIAN2,
        status,
        id,
        u32::try_from(body_len).unwrap_or(u32::MAX),
    );
    writer::write_string(dst, text);
}

impl Codec for DubboCodec {
    type State = DubboState;
    type Decoder = DubboDecoder;

    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn decoder(&self) -> DubboDecoder {
        DubboDecoder::new(self.max_frame_bytes)
    }

    fn encode_request(
        &self,
        request: &Message<DubboState>,
        id: u64,
        mutation: &Mutation,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let frame = &request.body;
        // Events carry no attachments: they are forwarded unchanged.
        let layout = match request.state.attachments() {
            Some(layout) if !mutation.is_empty() => layout,
            _ => return copy_with_id(frame, id, dst),
        };
        let plan = Rewrite::plan(layout, mutation).map_err(|e| encode_err(e.to_string()))?;
        let (Some(prefix), Some(tail)) = (
            frame.get(HEADER_LEN..layout.map.start),
            frame.get(layout.map.end..),
        ) else {
            return Err(encode_err(
                "dubbo attachments layout does not match the frame",
            ));
        };
        let body_len = prefix.len() + plan.encoded_len() + tail.len();
        let body_len32 = u32::try_from(body_len)
            .ok()
            .filter(|&l| l <= i32::MAX as u32)
            .ok_or_else(|| encode_err("rewritten dubbo request too large"))?;
        if !plan.fits(frame) {
            return Err(encode_err(
                "dubbo attachments layout does not match the frame",
            ));
        }
        let h = request.state.header();
        dst.reserve(HEADER_LEN + body_len);
        header::write(dst, h.flags, h.status, id, body_len32);
        dst.put_slice(prefix);
        plan.write(frame, dst);
        dst.put_slice(tail);
        Ok(())
    }

    fn encode_response(
        &self,
        response: &Message<DubboState>,
        request: &Message<DubboState>,
        mutation: &Mutation,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let id = request.request_id;
        if mutation.is_empty() || response.state.response_flag().is_none() {
            return copy_with_id(&response.body, id, dst);
        }
        response::encode_mutated(&response.body, response.state.header(), id, mutation, dst)
            .map_err(|e| encode_err(e.to_string()))
    }

    fn local_reply(&self, request: &Message<DubboState>, error: &ProxyError, dst: &mut BytesMut) {
        let text = error.client_message();
        write_error_response(
            dst,
            request.request_id,
            status::for_error(error.kind),
            &text,
        );
    }

    fn heartbeat_reply(&self, heartbeat: &Message<DubboState>, dst: &mut BytesMut) {
        dst.reserve(HEADER_LEN + 1);
        header::write(
            dst,
            FLAG_EVENT | SERIALIZATION_HESSIAN2,
            status::OK,
            heartbeat.request_id,
            1,
        );
        dst.put_u8(writer::NULL);
    }

    fn decode_error_reply(&self, error: &CodecError, dst: &mut BytesMut) -> bool {
        let Some(id) = error.request_id else {
            return false;
        };
        write_error_response(dst, id, status::BAD_REQUEST, &error.message);
        true
    }

    /// Status 20 is success (an exception result is the application's
    /// answer); 100 (thread pool exhausted) and 60 (the provider does not
    /// export the service) mean "try elsewhere"; 31/50/70/80 are server
    /// failures; 30/40/90 are the client's fault and say nothing about the server.
    fn classify_response(&self, response: &Message<DubboState>) -> ResponseClass {
        match response.state.status() {
            status::SERVER_THREADPOOL_EXHAUSTED_ERROR | status::SERVICE_NOT_FOUND => {
                ResponseClass::Unavailable
            }
            status::SERVER_TIMEOUT
            | status::BAD_RESPONSE
            | status::SERVICE_ERROR
            | status::SERVER_ERROR => ResponseClass::ServerError,
            _ => ResponseClass::Success,
        }
    }

    /// A heartbeat: every Dubbo provider answers it.
    fn health_check_frame(&self, _method: Option<&str>) -> Option<BytesMut> {
        let mut dst = BytesMut::with_capacity(HEADER_LEN + 1);
        header::write(
            &mut dst,
            header::FLAG_REQUEST | header::FLAG_TWO_WAY | FLAG_EVENT | SERIALIZATION_HESSIAN2,
            0,
            0,
            1,
        );
        dst.put_u8(writer::NULL);
        Some(dst)
    }

    fn health_check_passed(&self, response: &Message<DubboState>) -> bool {
        response.kind == MessageKind::HeartbeatResponse && response.state.status() == status::OK
    }
}
