//! ToyRPC: a small binary RPC protocol and its metaproxy codec plugin.
//!
//! Wire format (all integers big endian):
//!
//! ```text
//! offset  size  field
//! 0       2     magic 0x54 0x59 ("TY")
//! 2       1     flags: 0x01 response, 0x02 oneway, 0x04 error, 0x08 heartbeat
//! 3       8     request id
//! 11      4     body length: header block + payload (not the 15 fixed bytes)
//! 15      ..    header block: u16 count, then count × (u16 klen, key, u16 vlen, value)
//! ..      ..    payload (opaque)
//! ```
//!
//! The codec turns every header into a metadata entry (so routes match on
//! them), rewrites the header block when filters or routes mutate it, and
//! answers proxy errors with an error frame: flags `response|error`, a
//! header `error: <kind>` and the message as payload.
//!
//! [`Frame`], [`serve_upstream`] and [`call`] are a tiny client and server
//! for the demo and the tests; a real deployment needs only the codec part.

use std::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use metaproxy::core::{
    Codec, CodecError, CodecErrorKind, CodecOptions, Decoder, Message, MessageKind, Metadata,
    Mutation, MutationOp, PluginError, ProtocolCodecFactory, ProxyError, keys,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The protocol name used in config (`protocol: toyrpc`) and in the `protocol` metadata key.
pub const PROTOCOL: &str = "toyrpc";
/// The first two bytes of every frame.
pub const MAGIC: [u8; 2] = [0x54, 0x59];
/// Bytes before the header block.
pub const FIXED_LEN: usize = 15;
/// Flag: the frame answers a request.
pub const RESPONSE: u8 = 0x01;
/// Flag: the request expects no answer.
pub const ONEWAY: u8 = 0x02;
/// Flag: the answer is an error (payload = message).
pub const ERROR: u8 = 0x04;
/// Flag: a keep-alive probe (or, with `RESPONSE`, its answer).
pub const HEARTBEAT: u8 = 0x08;
/// Where the request id lies.
const ID_AT: Range<usize> = 3..11;

// ---------------------------------------------------------------------------
// 1. The factory: builds codecs from a listener's or cluster's config.
// ---------------------------------------------------------------------------

/// Registered with `registry.register_codec(ToyRpcFactory)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ToyRpcFactory;

impl ProtocolCodecFactory for ToyRpcFactory {
    type Codec = ToyRpcCodec;

    fn name(&self) -> &'static str {
        PROTOCOL
    }

    /// `options: { max_headers: N }` (default 64); anything else is a config error.
    fn listener_codec(&self, options: &CodecOptions) -> Result<ToyRpcCodec, PluginError> {
        let mut max_headers = 64;
        match &options.extra {
            serde_json::Value::Null => {}
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value.as_u64()) {
                        ("max_headers", Some(n)) if n <= u64::from(u16::MAX) => {
                            max_headers = n as usize;
                        }
                        ("max_headers", _) => {
                            return Err(PluginError::invalid_option(key, "must be 0..65535"));
                        }
                        (other, _) => {
                            let why = format!("unknown option `{other}` (known: max_headers)");
                            return Err(PluginError::Invalid(why));
                        }
                    }
                }
            }
            _ => return Err("`options` must be a map".into()),
        }
        Ok(ToyRpcCodec {
            max_frame: options.max_frame_bytes,
            max_headers,
        })
    }
}

// ---------------------------------------------------------------------------
// 2. The decoder: finds frames in a connection's read buffer.
// ---------------------------------------------------------------------------

/// What the codec remembers about a frame beside its metadata.
#[derive(Debug, Clone)]
pub struct ToyRpcState {
    /// The flags byte.
    pub flags: u8,
    /// Where the header block lies in the frame.
    pub block: Range<usize>,
}

/// One per connection.
#[derive(Debug)]
pub struct ToyRpcDecoder {
    max_frame: usize,
    max_headers: usize,
}

/// The fixed part of a frame: `(flags, id, body length)`, once 15 bytes are buffered.
fn fixed_header(buf: &[u8]) -> Option<(u8, u64, u32)> {
    let mut h = buf.get(..FIXED_LEN)?;
    h.advance(2);
    Some((h.get_u8(), h.get_u64(), h.get_u32()))
}

/// Where each header's key and value lie in a frame.
type HeaderRanges = Vec<(Range<usize>, Range<usize>)>;

/// Walks the header block of a whole `frame`, returning each key's and
/// value's byte range and where the block ends. Every length is checked
/// against what is there: a bad frame is an error, never a panic.
fn walk_headers(frame: &[u8], max_headers: usize) -> Result<(HeaderRanges, usize), String> {
    let mut at = FIXED_LEN;
    let mut take = |n: usize| -> Result<Range<usize>, String> {
        let end = at
            .checked_add(n)
            .filter(|&end| end <= frame.len())
            .ok_or("header block runs past the end of the frame")?;
        let r = at..end;
        at = end;
        Ok(r)
    };
    let read_u16 =
        |r: Range<usize>| usize::from(u16::from_be_bytes([frame[r.start], frame[r.start + 1]]));
    let count = read_u16(take(2)?);
    if count > max_headers {
        return Err(format!("{count} headers (at most {max_headers})"));
    }
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let klen = read_u16(take(2)?);
        let key = take(klen)?;
        let vlen = read_u16(take(2)?);
        let value = take(vlen)?;
        pairs.push((key, value));
    }
    Ok((pairs, at))
}

impl Decoder for ToyRpcDecoder {
    type State = ToyRpcState;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message<ToyRpcState>>, CodecError> {
        // Reject a wrong magic as soon as its bytes arrive.
        let seen = src.len().min(2);
        if src[..seen] != MAGIC[..seen] {
            return Err(CodecError::fatal(
                CodecErrorKind::Malformed,
                "not a toyrpc frame",
            ));
        }
        let Some((flags, id, body_len)) = fixed_header(src) else {
            return Ok(None);
        };
        // Check the length before buffering the body.
        let total = FIXED_LEN + body_len as usize;
        if total > self.max_frame {
            return Err(CodecError::fatal(
                CodecErrorKind::FrameTooLarge,
                format!(
                    "frame of {total} bytes exceeds the limit of {}",
                    self.max_frame
                ),
            )
            .with_request_id(id));
        }
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        // The whole frame is here: split it off without copying.
        let frame = src.split_to(total).freeze();
        let bad = |why: String| CodecError::skipped_frame(CodecErrorKind::Malformed, why, id);
        let (pairs, block_end) = walk_headers(&frame, self.max_headers).map_err(bad)?;

        let mut metadata = Metadata::with_capacity(pairs.len() + 2);
        metadata.insert(keys::PROTOCOL, PROTOCOL);
        metadata.insert(keys::REQUEST_ID, id.to_string());
        for (k, v) in pairs {
            // Keys and values stay slices of the read buffer.
            if !metadata.push_bytes(frame.slice(k), frame.slice(v)) {
                return Err(bad("a header is not UTF-8".into()));
            }
        }
        let kind = match (flags & RESPONSE != 0, flags) {
            (false, f) if f & HEARTBEAT != 0 => MessageKind::Heartbeat,
            (false, f) if f & ONEWAY != 0 => MessageKind::Oneway,
            (false, _) => MessageKind::Request,
            (true, f) if f & HEARTBEAT != 0 => MessageKind::HeartbeatResponse,
            (true, f) if f & ERROR != 0 => MessageKind::Error,
            (true, _) => MessageKind::Response,
        };
        Ok(Some(Message {
            kind,
            request_id: id,
            metadata,
            body: frame,
            state: ToyRpcState {
                flags,
                block: FIXED_LEN..block_end,
            },
        }))
    }
}

// ---------------------------------------------------------------------------
// 3. The codec: encodes frames and renders the proxy's own answers.
// ---------------------------------------------------------------------------

/// Shared by all connections of a listener or cluster.
#[derive(Debug)]
pub struct ToyRpcCodec {
    max_frame: usize,
    max_headers: usize,
}

fn encode_error(message: impl Into<String>) -> CodecError {
    CodecError::fatal(CodecErrorKind::Encode, message)
}

impl ToyRpcCodec {
    /// Writes `msg` with id `id`: a copy with the id patched when `mutation`
    /// is empty, else a new header block with the mutation applied.
    fn encode(
        &self,
        msg: &Message<ToyRpcState>,
        id: u64,
        mutation: &Mutation,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let frame = &msg.body;
        if mutation.is_empty() {
            let start = dst.len();
            dst.extend_from_slice(frame);
            dst[start + ID_AT.start..start + ID_AT.end].copy_from_slice(&id.to_be_bytes());
            return Ok(());
        }
        // Rebuild the header block: the frame's pairs, then the mutation's ops.
        let (ranges, _) = walk_headers(frame, usize::from(u16::MAX)).map_err(encode_error)?;
        let text = |r: Range<usize>| String::from_utf8_lossy(&frame[r]).into_owned();
        let mut pairs: Vec<(String, String)> = ranges
            .into_iter()
            .map(|(k, v)| (text(k), text(v)))
            .collect();
        for op in mutation.ops() {
            match op {
                MutationOp::Set(k, v) => match pairs.iter_mut().find(|(pk, _)| pk == &**k) {
                    Some(slot) => slot.1 = v.to_string(),
                    None => pairs.push((k.to_string(), v.to_string())),
                },
                MutationOp::Remove(k) => pairs.retain(|(pk, _)| pk != &**k),
            }
        }
        let payload = frame.get(msg.state.block.end..).unwrap_or_default();
        write_frame(msg.state.flags, id, &pairs, payload, dst).map_err(encode_error)
    }

    /// An error answer: flags `response|error`, header `error: <kind>`, message as payload.
    fn error_frame(&self, id: u64, kind: &str, message: &str, dst: &mut BytesMut) {
        let pairs = [("error".to_string(), kind.to_string())];
        // Cannot fail: one short header.
        let _ = write_frame(RESPONSE | ERROR, id, &pairs, message.as_bytes(), dst);
    }
}

impl Codec for ToyRpcCodec {
    type State = ToyRpcState;
    type Decoder = ToyRpcDecoder;

    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn decoder(&self) -> ToyRpcDecoder {
        ToyRpcDecoder {
            max_frame: self.max_frame,
            max_headers: self.max_headers,
        }
    }

    fn encode_request(
        &self,
        request: &Message<ToyRpcState>,
        id: u64,
        mutation: &Mutation,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        self.encode(request, id, mutation, dst)
    }

    fn encode_response(
        &self,
        response: &Message<ToyRpcState>,
        request: &Message<ToyRpcState>,
        mutation: &Mutation,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        // The client gets back the id it sent, not the one used upstream.
        self.encode(response, request.request_id, mutation, dst)
    }

    fn local_reply(&self, request: &Message<ToyRpcState>, error: &ProxyError, dst: &mut BytesMut) {
        self.error_frame(
            request.request_id,
            error.kind.as_str(),
            &error.client_message(),
            dst,
        );
    }

    fn heartbeat_reply(&self, heartbeat: &Message<ToyRpcState>, dst: &mut BytesMut) {
        let _ = write_frame(RESPONSE | HEARTBEAT, heartbeat.request_id, &[], b"", dst);
    }

    fn decode_error_reply(&self, error: &CodecError, dst: &mut BytesMut) -> bool {
        let Some(id) = error.request_id else {
            return false;
        };
        let message = format!("metaproxy: bad request: {}", error.message);
        self.error_frame(id, "bad request", &message, dst);
        true
    }

    fn health_check_frame(&self, _method: Option<&str>) -> Option<BytesMut> {
        let mut out = BytesMut::new();
        write_frame(HEARTBEAT, 0, &[], b"", &mut out).ok()?;
        Some(out)
    }
}

/// Writes a whole frame.
pub fn write_frame(
    flags: u8,
    id: u64,
    headers: &[(String, String)],
    payload: &[u8],
    dst: &mut BytesMut,
) -> Result<(), String> {
    let short = |n: usize| u16::try_from(n).map_err(|_| "header too long".to_string());
    let block: usize = 2 + headers
        .iter()
        .map(|(k, v)| 4 + k.len() + v.len())
        .sum::<usize>();
    let body_len =
        u32::try_from(block + payload.len()).map_err(|_| "frame too long".to_string())?;
    let count = short(headers.len())?;
    dst.reserve(FIXED_LEN + body_len as usize);
    dst.put_slice(&MAGIC);
    dst.put_u8(flags);
    dst.put_u64(id);
    dst.put_u32(body_len);
    dst.put_u16(count);
    for (k, v) in headers {
        dst.put_u16(short(k.len())?);
        dst.put_slice(k.as_bytes());
        dst.put_u16(short(v.len())?);
        dst.put_slice(v.as_bytes());
    }
    dst.put_slice(payload);
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. A tiny client and server, for the demo and the tests.
// ---------------------------------------------------------------------------

/// A decoded frame with owned parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Flags byte.
    pub flags: u8,
    /// Request id.
    pub id: u64,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A request with headers and a payload.
    pub fn request(id: u64, headers: &[(&str, &str)], payload: &[u8]) -> Self {
        Self {
            flags: 0,
            id,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            payload: payload.to_vec(),
        }
    }

    /// The value of header `key`.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The encoded frame.
    pub fn to_bytes(&self) -> BytesMut {
        let mut out = BytesMut::new();
        let _ = write_frame(self.flags, self.id, &self.headers, &self.payload, &mut out);
        out
    }

    /// Reads one frame from `stream`; `None` at end of stream or on a bad frame.
    pub async fn read(stream: &mut TcpStream, buf: &mut BytesMut) -> Option<Frame> {
        let mut decoder = ToyRpcDecoder {
            max_frame: 1 << 20,
            max_headers: 1024,
        };
        loop {
            if let Some(m) = decoder.decode(buf).ok()? {
                let body: Bytes = m.body;
                let (ranges, _) = walk_headers(&body, 1024).ok()?;
                let text = |r: Range<usize>| String::from_utf8_lossy(&body[r]).into_owned();
                return Some(Frame {
                    flags: m.state.flags,
                    id: m.request_id,
                    headers: ranges
                        .into_iter()
                        .map(|(k, v)| (text(k), text(v)))
                        .collect(),
                    payload: body[m.state.block.end..].to_vec(),
                });
            }
            if stream.read_buf(buf).await.ok()? == 0 {
                return None;
            }
        }
    }
}

/// Sends `request` on `stream` and reads one answer.
pub async fn call(stream: &mut TcpStream, request: &Frame) -> Option<Frame> {
    stream.write_all(&request.to_bytes()).await.ok()?;
    Frame::read(stream, &mut BytesMut::new()).await
}

/// A demo ToyRPC server: answers every request with the request's headers
/// plus `served-by: <tag>`, and the payload `<tag>: <request payload>`.
pub async fn serve_upstream(listener: TcpListener, tag: &'static str) {
    while let Ok((mut stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut buf = BytesMut::new();
            while let Some(req) = Frame::read(&mut stream, &mut buf).await {
                let flags = if req.flags & HEARTBEAT != 0 {
                    RESPONSE | HEARTBEAT
                } else if req.flags & ONEWAY != 0 {
                    continue;
                } else {
                    RESPONSE
                };
                let mut headers = req.headers.clone();
                headers.push(("served-by".into(), tag.into()));
                let mut payload = format!("{tag}: ").into_bytes();
                payload.extend_from_slice(&req.payload);
                let resp = Frame {
                    flags,
                    id: req.id,
                    headers,
                    payload,
                };
                if stream.write_all(&resp.to_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}
