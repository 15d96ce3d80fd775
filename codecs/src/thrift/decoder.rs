//! [`ThriftDecoder`]: finds one message at the front of a connection's read
//! buffer, in whichever transport and protocol the connection speaks.
//!
//! - The transport is fixed by config or sniffed from the first message
//!   ([`super::sniff`]) and then kept for the connection.
//! - Framed and THeader: the length is checked (negative: close; above
//!   `max_frame_bytes`: error reply if the seqid is readable, then close)
//!   before anything is buffered; the frame is split off zero-copy.
//! - Unframed: the message boundary is found by walking the struct with
//!   skip logic (bounded depth, every count checked against the buffered
//!   bytes). An incomplete message means "need more", and the walk is not
//!   retried until at least as many bytes as it asked for have arrived.
//!   A message longer than `max_frame_bytes` is refused.
//! - A THeader frame with a transform or a bad header block is skipped with
//!   an error reply (its length is known, so the stream stays in sync). A
//!   header block larger than its frame is refused as soon as the fixed
//!   fields arrive (error reply; the rest of the frame is dropped as it
//!   comes) rather than after buffering the whole frame.

use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use metaproxy_core::{CodecError, CodecErrorKind, Message, MessageKind, Metadata, keys};

use super::cursor::Cursor;
use super::error::ReadError;
use super::exception::types;
use super::header::MessageHeader;
use super::reply_to::ReplyTo;
use super::sniff::{self, Sniff};
use super::theader::{self, THeaderError, THeaderInfo};
use super::wire::{MessageType, Protocol, Transport};
use super::{PROTOCOL, ThriftState, binary, compact};

/// The smallest THeader frame: magic, flags, seqid, block size.
const MIN_THEADER_FRAME: usize = 10;

/// Finds Thrift messages in one connection's read buffer.
#[derive(Debug, Clone)]
pub struct ThriftDecoder {
    max_frame_bytes: usize,
    transport: Option<Transport>,
    protocol: Option<Protocol>,
    /// Keep the first sniffed transport for the connection's life (client
    /// connections); when false, every message is sniffed anew (pooled
    /// upstream connections carry requests, and so answers, in whatever
    /// format each client used).
    lock_sniffed: bool,
    sniffed: Option<Transport>,
    retry_at: usize,
    /// Bytes of a refused frame still to come, dropped as they arrive.
    skip: usize,
}

impl ThriftDecoder {
    /// A decoder; `None` transport or protocol means sniff / accept either.
    /// With `lock_sniffed`, the first sniffed transport is kept for the connection.
    pub fn new(
        max_frame_bytes: usize,
        transport: Option<Transport>,
        protocol: Option<Protocol>,
        lock_sniffed: bool,
    ) -> Self {
        Self {
            max_frame_bytes,
            transport,
            protocol,
            lock_sniffed,
            sniffed: None,
            retry_at: 0,
            skip: 0,
        }
    }

    /// The transport in use: configured, or sniffed (from the first message
    /// when locked, else from the latest one).
    pub fn transport(&self) -> Option<Transport> {
        self.transport.or(self.sniffed)
    }
}

fn fatal(kind: CodecErrorKind, message: impl Into<String>) -> CodecError {
    CodecError::fatal(kind, message)
}

/// The protocol of a message starting with byte `first`.
fn protocol_of(first: u8) -> Protocol {
    match first {
        0x80 => Protocol::Binary { strict: true },
        compact::PROTOCOL_ID => Protocol::Compact,
        _ => Protocol::Binary { strict: false },
    }
}

fn read_header(buf: &[u8], start: usize, protocol: Protocol) -> Result<MessageHeader, ReadError> {
    match protocol {
        Protocol::Binary { .. } => binary::read_header(buf, start),
        Protocol::Compact => compact::read_header(buf, start),
    }
}

fn too_large(len: usize, max: usize) -> String {
    format!("thrift message of {len} bytes exceeds the limit of {max} bytes")
}

impl ThriftDecoder {
    fn check_protocol(&self, p: Protocol) -> Result<(), CodecError> {
        match self.protocol {
            Some(want) if !want.same_family(p) => Err(fatal(
                CodecErrorKind::Malformed,
                format!("{} message where {} is configured", p.name(), want.name()),
            )),
            _ => Ok(()),
        }
    }

    fn decode_framed(
        &mut self,
        src: &mut BytesMut,
        transport: Transport,
    ) -> Result<Option<Message<ThriftState>>, CodecError> {
        let Some(len) = src
            .get(..4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return Ok(None);
        };
        let Ok(len) = usize::try_from(len) else {
            return Err(fatal(
                CodecErrorKind::Malformed,
                format!("negative thrift frame size {len}"),
            ));
        };
        if len > self.max_frame_bytes {
            let mut e = fatal(
                CodecErrorKind::FrameTooLarge,
                too_large(len, self.max_frame_bytes),
            );
            if let Some(to) = peek_reply_to(src, transport) {
                e = to.attach(e);
            }
            return Err(e);
        }
        let min = if transport == Transport::Header {
            MIN_THEADER_FRAME
        } else {
            1
        };
        if len < min {
            return Err(fatal(
                CodecErrorKind::Malformed,
                format!("thrift frame of {len} bytes is too short"),
            ));
        }
        if src.len() < 4 + len {
            // A header block that cannot fit is refused from the first
            // bytes: answered now, and the rest of the frame dropped as it
            // arrives (never buffered), so the stream stays in sync.
            if transport == Transport::Header
                && let Err(e) = theader::check_prefix(src)
            {
                let seqid = theader::fixed_fields(src).map_or(0, |(_, s, _)| s);
                let to = ReplyTo {
                    transport: Transport::Header,
                    protocol: Protocol::BINARY,
                    seqid,
                    exception_type: types::PROTOCOL_ERROR,
                };
                self.skip = 4 + len - src.len();
                src.clear();
                return Err(to.attach(CodecError::skipped_frame(
                    CodecErrorKind::Malformed,
                    e.to_string(),
                    0,
                )));
            }
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        let frame = src.split_to(4 + len).freeze();
        if transport == Transport::Header {
            return self.decode_theader(frame).map(Some);
        }
        if sniff::is_theader(&frame) {
            return Err(fatal(
                CodecErrorKind::Malformed,
                "THeader frame on a framed connection",
            ));
        }
        let protocol = protocol_of(frame[4]);
        self.check_protocol(protocol)?;
        let h = read_header(&frame, 4, protocol).map_err(|e| {
            fatal(
                CodecErrorKind::Malformed,
                format!("bad thrift message header: {e}"),
            )
        })?;
        let end = frame.len();
        Ok(Some(build(frame, Transport::Framed, h, end, None)))
    }

    fn decode_theader(&mut self, frame: Bytes) -> Result<Message<ThriftState>, CodecError> {
        if !sniff::is_theader(&frame) {
            return Err(fatal(
                CodecErrorKind::Malformed,
                "expected a THeader frame (magic 0x0FFF at bytes 4..6)",
            ));
        }
        let seqid = theader::fixed_fields(&frame).map_or(0, |(_, s, _)| s);
        let reply = |protocol, exception_type, kind, message: String| {
            let to = ReplyTo {
                transport: Transport::Header,
                protocol,
                seqid,
                exception_type,
            };
            to.attach(CodecError::skipped_frame(kind, message, 0))
        };
        let (info, start) = match theader::parse(&frame) {
            Ok(parsed) => parsed,
            Err(e) => {
                let (protocol, t, kind) = match e {
                    THeaderError::Transform { protocol, .. } => (
                        protocol,
                        types::INVALID_TRANSFORM,
                        CodecErrorKind::Unsupported,
                    ),
                    THeaderError::Protocol(_) => (
                        Protocol::BINARY,
                        types::INVALID_PROTOCOL,
                        CodecErrorKind::Unsupported,
                    ),
                    THeaderError::Malformed(_) => (
                        Protocol::BINARY,
                        types::PROTOCOL_ERROR,
                        CodecErrorKind::Malformed,
                    ),
                };
                return Err(reply(protocol, t, kind, e.to_string()));
            }
        };
        let declared = info.protocol;
        let bad = |e: String| {
            reply(
                declared,
                types::PROTOCOL_ERROR,
                CodecErrorKind::Malformed,
                e,
            )
        };
        if let Err(e) = self.check_protocol(declared) {
            return Err(bad(e.message));
        }
        let h = read_header(&frame, start, declared)
            .map_err(|e| bad(format!("bad thrift message header: {e}")))?;
        let end = frame.len();
        Ok(build(frame, Transport::Header, h, end, Some(info)))
    }

    fn decode_unframed(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<Message<ThriftState>>, CodecError> {
        if src.len() < self.retry_at {
            return Ok(None);
        }
        let protocol = protocol_of(src[0]);
        self.check_protocol(protocol)?;
        let view = &src[..src.len().min(self.max_frame_bytes)];
        let walked = read_header(view, 0, protocol).map(|h| {
            let mut c = Cursor::at(view, h.body_start);
            let r = match protocol {
                Protocol::Binary { .. } => binary::skip_struct(&mut c, 0),
                Protocol::Compact => compact::skip_struct(&mut c, 0),
            };
            (h, r.map(|()| c.pos()))
        });
        let (h, end) = match walked {
            Ok((h, Ok(end))) => (h, end),
            Ok((h, Err(e))) => return self.unframed_error(src, e, Some(&h)),
            Err(e) => return self.unframed_error(src, e, None),
        };
        self.retry_at = 0;
        let frame = src.split_to(end).freeze();
        Ok(Some(build(frame, Transport::Unframed, h, end, None)))
    }

    fn unframed_error(
        &mut self,
        src: &mut BytesMut,
        e: ReadError,
        h: Option<&MessageHeader>,
    ) -> Result<Option<Message<ThriftState>>, CodecError> {
        let reply = |exception_type| {
            h.map(|h| ReplyTo {
                transport: Transport::Unframed,
                protocol: h.protocol,
                seqid: h.seqid,
                exception_type,
            })
        };
        let err = match e {
            ReadError::Incomplete { at_least } if at_least <= self.max_frame_bytes => {
                self.retry_at = at_least;
                src.reserve(at_least.saturating_sub(src.len()));
                return Ok(None);
            }
            ReadError::Incomplete { at_least } => fatal(
                CodecErrorKind::FrameTooLarge,
                too_large(at_least, self.max_frame_bytes),
            ),
            ReadError::TooLarge(m) => fatal(CodecErrorKind::FrameTooLarge, m),
            ReadError::Malformed(m) => fatal(
                CodecErrorKind::Malformed,
                format!("bad unframed thrift message: {m}"),
            ),
        };
        Err(match reply(types::PROTOCOL_ERROR) {
            Some(to) => to.attach(err),
            None => err,
        })
    }
}

/// The reply address of a too-large frame, if its message header is already buffered.
fn peek_reply_to(src: &[u8], transport: Transport) -> Option<ReplyTo> {
    let (start, protocol, seqid_override) = match transport {
        Transport::Header => {
            let (_, seqid, block) = theader::fixed_fields(src)?;
            let start = theader::BLOCK_OFFSET + block;
            (start, protocol_of(*src.get(start)?), Some(seqid))
        }
        _ => (4, protocol_of(*src.get(4)?), None),
    };
    let h = read_header(src, start, protocol).ok()?;
    Some(ReplyTo {
        transport,
        protocol: h.protocol,
        seqid: seqid_override.unwrap_or(h.seqid),
        exception_type: types::PROTOCOL_ERROR,
    })
}

fn kind_of(t: MessageType) -> MessageKind {
    match t {
        MessageType::Call => MessageKind::Request,
        MessageType::Oneway => MessageKind::Oneway,
        MessageType::Reply => MessageKind::Response,
        MessageType::Exception => MessageKind::Error,
    }
}

/// The metadata of a message: protocol, request_id, method (and service
/// for `Service:method` names), then every THeader info header.
fn metadata(frame: &Bytes, h: &MessageHeader, theader: Option<&THeaderInfo>) -> Metadata {
    let headers = theader.map_or(&[][..], |t| &t.headers[..]);
    let mut m = Metadata::with_capacity(4 + headers.len());
    m.push(
        ByteString::from_static(keys::PROTOCOL),
        ByteString::from_static(PROTOCOL),
    );
    m.push(
        ByteString::from_static(keys::REQUEST_ID),
        ByteString::from(h.seqid.to_string()),
    );
    let raw = frame.slice(h.name.clone());
    let name = ByteString::try_from(raw.clone())
        .unwrap_or_else(|_| ByteString::from(String::from_utf8_lossy(&raw).into_owned()));
    match name.find(':') {
        Some(i) => {
            m.push(
                ByteString::from_static(keys::SERVICE),
                name.slice_ref(&name[..i]),
            );
            m.push(
                ByteString::from_static(keys::METHOD),
                name.slice_ref(&name[i + 1..]),
            );
        }
        None => m.push(ByteString::from_static(keys::METHOD), name),
    }
    for (k, v) in headers {
        // Headers that are not UTF-8 are forwarded but cannot be matched on.
        m.push_bytes(k.clone(), v.clone());
    }
    m
}

fn build(
    frame: Bytes,
    transport: Transport,
    h: MessageHeader,
    end: usize,
    theader: Option<THeaderInfo>,
) -> Message<ThriftState> {
    let metadata = metadata(&frame, &h, theader.as_ref());
    Message {
        kind: kind_of(h.message_type),
        request_id: u64::from(h.seqid as u32),
        metadata,
        state: ThriftState {
            transport,
            protocol: h.protocol,
            message_type: h.message_type,
            seqid: h.seqid,
            name: h.name,
            body: h.body_start..end,
            theader,
        },
        body: frame,
    }
}

impl metaproxy_core::Decoder for ThriftDecoder {
    type State = ThriftState;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message<ThriftState>>, CodecError> {
        if self.skip > 0 {
            let n = self.skip.min(src.len());
            src.advance(n);
            self.skip -= n;
        }
        if src.is_empty() {
            return Ok(None);
        }
        let locked = if self.lock_sniffed {
            self.sniffed
        } else {
            None
        };
        let transport = match self.transport.or(locked) {
            Some(t) => t,
            // A partly read unframed message keeps its transport until complete.
            None if self.retry_at > 0 => Transport::Unframed,
            None => match sniff::transport(src) {
                Sniff::Found(t) => {
                    self.sniffed = Some(t);
                    t
                }
                Sniff::NeedMore if src.len() <= self.max_frame_bytes.saturating_add(8) => {
                    return Ok(None);
                }
                Sniff::NeedMore | Sniff::Unknown => {
                    let head: Vec<String> =
                        src.iter().take(8).map(|b| format!("{b:02x}")).collect();
                    return Err(fatal(
                        CodecErrorKind::Malformed,
                        format!("not a thrift message (first bytes {})", head.join(" ")),
                    ));
                }
            },
        };
        match transport {
            Transport::Unframed => self.decode_unframed(src),
            Transport::Framed | Transport::Header => self.decode_framed(src, transport),
        }
    }
}
