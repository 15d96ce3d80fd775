//! A codec for "fixed header + length + id" binary protocols, described in
//! YAML instead of written in Rust.
//!
//! [`DeclarativeCodecFactory`] registers under the name `declarative`. Each
//! listener and cluster describes its frame layout in its `options:`
//! section (see [`options`] and `docs/protocols/declarative.md`).
//!
//! - Decoding finds the frame boundary from the header alone: the magic is
//!   checked as soon as its bytes arrive, the length field is checked
//!   against the limit before anything is buffered for the body. A bad
//!   magic or an oversized length closes the connection (after an error
//!   frame when the request id was readable).
//! - Metadata: `protocol` (`declarative`), `request_id`, and every
//!   configured field (integers as decimal text, strings as they are).
//! - Encoding copies the frame once and patches the request id in place.
//! - Mutations: the format has no header block, so a non-empty mutation is
//!   an [`CodecErrorKind::Encode`] error (the client gets an error frame).
//! - Local replies: the request's header with the message type set to
//!   `error` (or `response` when no `error` value is configured), the
//!   length patched, and the text `metaproxy: <kind>: <message>` as body.

pub mod options;

#[cfg(test)]
mod tests;

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use metaproxy_core::PluginError;
use metaproxy_core::{
    Codec, CodecError, CodecErrorKind, CodecOptions, Decoder, Message, MessageKind, Metadata,
    Mutation, MutationOp, ProtocolCodecFactory, ProxyError, UpstreamMode, keys,
};

use options::FieldType;
pub use options::FrameSpec;
use std::sync::Arc;

/// The protocol name, also the `protocol` metadata value.
pub const PROTOCOL: &str = "declarative";

/// Builds [`DeclarativeCodec`]s from a listener's or cluster's `options:`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeclarativeCodecFactory;

impl DeclarativeCodecFactory {
    /// A factory.
    pub fn new() -> Self {
        Self
    }
}

impl ProtocolCodecFactory for DeclarativeCodecFactory {
    type Codec = DeclarativeCodec;

    fn name(&self) -> &'static str {
        PROTOCOL
    }

    fn listener_codec(&self, options: &CodecOptions) -> Result<DeclarativeCodec, PluginError> {
        DeclarativeCodec::new(FrameSpec::parse(&options.extra)?, options, Side::Listener)
    }

    fn cluster_codec(&self, options: &CodecOptions) -> Result<DeclarativeCodec, PluginError> {
        DeclarativeCodec::new(FrameSpec::parse(&options.extra)?, options, Side::Cluster)
    }
}

/// Which way frames come in: from clients (requests) or from upstreams (responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Listener,
    Cluster,
}

/// The codec for one described frame layout.
#[derive(Debug, Clone)]
pub struct DeclarativeCodec {
    spec: Arc<FrameSpec>,
    max_frame: usize,
    side: Side,
}

/// What the codec keeps beside the metadata: nothing beyond the frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeclarativeState;

impl DeclarativeCodec {
    fn new(spec: FrameSpec, options: &CodecOptions, side: Side) -> Result<Self, PluginError> {
        let max_frame = spec
            .max_frame_bytes
            .map_or(options.max_frame_bytes, |m| m.min(options.max_frame_bytes));
        if max_frame < spec.header_length {
            // `options.max_frame_bytes` is checked against the header already:
            // the listener's or cluster's own limit is the one too small.
            let limit = match side {
                Side::Listener => "limits.max_frame_bytes",
                Side::Cluster => "max_frame_bytes",
            };
            return Err(PluginError::invalid_option(
                limit,
                format!(
                    "the frame limit ({max_frame} bytes) is smaller than header_length ({})",
                    spec.header_length
                ),
            ));
        }
        Ok(Self {
            spec: Arc::new(spec),
            max_frame,
            side,
        })
    }

    /// The frame layout.
    pub fn spec(&self) -> &FrameSpec {
        &self.spec
    }

    /// Writes a frame: `template`'s header (or zeros and the magic), with
    /// `kind_value`, `id` and the length of `body` patched in, then `body`.
    fn write_frame(
        &self,
        template: Option<&[u8]>,
        kind_value: Option<u64>,
        id: u64,
        body: &[u8],
        dst: &mut BytesMut,
    ) {
        let spec = &*self.spec;
        let h = spec.header_length;
        let mut header = vec![0u8; h];
        match template.and_then(|t| t.get(..h)) {
            Some(t) => header.copy_from_slice(t),
            None => {
                if let Some((offset, magic)) = &spec.magic
                    && let Some(slot) = header.get_mut(*offset..offset + magic.len())
                {
                    slot.copy_from_slice(magic);
                }
            }
        }
        // Keep the reply within the frame limit and the length field.
        let room = self.max_frame.saturating_sub(h);
        let len_max = usize::try_from(spec.length.width.max_value()).unwrap_or(usize::MAX);
        let room = room.min(if spec.length_includes_header {
            len_max.saturating_sub(h)
        } else {
            len_max
        });
        let body = &body[..body.len().min(room)];
        let len = if spec.length_includes_header {
            h + body.len()
        } else {
            body.len()
        };
        spec.write(&mut header, spec.length, len as u64);
        spec.write(
            &mut header,
            spec.request_id,
            id & spec.request_id.width.max_value(),
        );
        if let (Some(t), Some(v)) = (&spec.message_type, kind_value) {
            spec.write(&mut header, t.field, v);
        }
        dst.reserve(h + body.len());
        dst.put_slice(&header);
        dst.put_slice(body);
    }

    /// The message type value for error answers.
    fn error_value(&self) -> Option<u64> {
        self.spec
            .message_type
            .as_ref()
            .and_then(|t| t.error.or(t.response))
    }

    /// Copies `frame` with its id set to `id`.
    fn copy_with_id(&self, frame: &[u8], id: u64, dst: &mut BytesMut) -> Result<(), CodecError> {
        let start = dst.len();
        dst.reserve(frame.len());
        dst.put_slice(frame);
        let patched = dst
            .get_mut(start..)
            .is_some_and(|f| self.spec.write(f, self.spec.request_id, id));
        if patched {
            Ok(())
        } else {
            dst.truncate(start);
            Err(CodecError::fatal(
                CodecErrorKind::Encode,
                format!("request id {id} does not fit the frame's request id field"),
            ))
        }
    }
}

fn refuse_mutation(mutation: &Mutation) -> Result<(), CodecError> {
    match mutation.ops().first() {
        None => Ok(()),
        Some(MutationOp::Set(k, _) | MutationOp::Remove(k)) => Err(CodecError::fatal(
            CodecErrorKind::Encode,
            format!(
                "protocol `declarative` frames have no header block: cannot apply a mutation of `{k}` \
                 (remove request_headers/response_headers/metadata_mutation from routes of this listener)"
            ),
        )),
    }
}

/// Finds described frames in a connection's read buffer.
#[derive(Debug, Clone)]
pub struct DeclarativeDecoder {
    spec: Arc<FrameSpec>,
    max_frame: usize,
    side: Side,
}

impl DeclarativeDecoder {
    fn kind(&self, frame: &[u8], id: u64) -> Result<MessageKind, CodecError> {
        let default = match self.side {
            Side::Listener => MessageKind::Request,
            Side::Cluster => MessageKind::Response,
        };
        let Some(t) = &self.spec.message_type else {
            return Ok(default);
        };
        let v = self.spec.read(frame, t.field).unwrap_or(u64::MAX);
        let kind = [
            (t.request, MessageKind::Request),
            (t.response, MessageKind::Response),
            (t.oneway, MessageKind::Oneway),
            (t.heartbeat, MessageKind::Heartbeat),
            (t.heartbeat_response, MessageKind::HeartbeatResponse),
            (t.error, MessageKind::Error),
        ]
        .into_iter()
        .find_map(|(value, kind)| (value == Some(v)).then_some(kind));
        kind.ok_or_else(|| {
            CodecError::skipped_frame(
                CodecErrorKind::Malformed,
                format!("unknown message type {v}"),
                id,
            )
        })
    }

    fn metadata(&self, frame: &Bytes, id: u64) -> Result<Metadata, CodecError> {
        let spec = &*self.spec;
        let mut m = Metadata::with_capacity(2 + spec.fields.len());
        m.push(
            ByteString::from_static(keys::PROTOCOL),
            ByteString::from_static(PROTOCOL),
        );
        m.push(
            ByteString::from_static(keys::REQUEST_ID),
            ByteString::from(id.to_string()),
        );
        for f in &spec.fields {
            let bad = |what: &str| {
                CodecError::skipped_frame(
                    CodecErrorKind::Malformed,
                    format!("field `{}`: {what}", f.name),
                    id,
                )
            };
            let Some(n) = spec.read(frame, f.at) else {
                return Err(bad("beyond the end of the frame"));
            };
            let value = match f.kind {
                FieldType::Integer => ByteString::from(n.to_string()),
                FieldType::String => {
                    let start = f.at.end();
                    let end = usize::try_from(n)
                        .ok()
                        .and_then(|n| start.checked_add(n))
                        .filter(|&end| end <= frame.len())
                        .ok_or_else(|| bad("string runs past the end of the frame"))?;
                    ByteString::try_from(frame.slice(start..end))
                        .map_err(|_| bad("string is not UTF-8"))?
                }
            };
            m.push(ByteString::from(f.name.as_str()), value);
        }
        Ok(m)
    }
}

impl Decoder for DeclarativeDecoder {
    type State = DeclarativeState;

    fn decode(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<Message<DeclarativeState>>, CodecError> {
        let spec = &*self.spec;
        if src.is_empty() {
            return Ok(None);
        }
        // The magic, as soon as any of its bytes is buffered.
        if let Some((offset, magic)) = &spec.magic {
            let seen = src.get(*offset..).unwrap_or(&[]);
            let n = seen.len().min(magic.len());
            if seen.get(..n) != magic.get(..n) {
                return Err(CodecError::fatal(
                    CodecErrorKind::Malformed,
                    "bad magic: not a frame of this protocol",
                ));
            }
        }
        let h = spec.header_length;
        if src.len() < h {
            src.reserve(h - src.len());
            return Ok(None);
        }
        let id = spec.read(src, spec.request_id).unwrap_or(0);
        let len = spec.read(src, spec.length).unwrap_or(0);
        let total = usize::try_from(len).ok().and_then(|l| {
            if spec.length_includes_header {
                Some(l)
            } else {
                l.checked_add(h)
            }
        });
        let total = match total {
            Some(t) if t > self.max_frame => None,
            other => other,
        };
        let Some(total) = total else {
            return Err(CodecError::fatal(
                CodecErrorKind::FrameTooLarge,
                format!(
                    "frame length {len} exceeds the limit of {} bytes",
                    self.max_frame
                ),
            )
            .with_request_id(id));
        };
        if total < h {
            return Err(CodecError::fatal(
                CodecErrorKind::Malformed,
                format!("frame length {len} is shorter than the {h}-byte header"),
            )
            .with_request_id(id));
        }
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        let frame = src.split_to(total).freeze();
        let kind = self.kind(&frame, id)?;
        let metadata = match kind {
            MessageKind::Request | MessageKind::Oneway => self.metadata(&frame, id)?,
            _ => {
                let mut m = Metadata::with_capacity(2);
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
        };
        Ok(Some(Message {
            kind,
            request_id: id,
            metadata,
            body: frame,
            state: DeclarativeState,
        }))
    }
}

impl Codec for DeclarativeCodec {
    type State = DeclarativeState;
    type Decoder = DeclarativeDecoder;

    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn decoder(&self) -> DeclarativeDecoder {
        DeclarativeDecoder {
            spec: self.spec.clone(),
            max_frame: self.max_frame,
            side: self.side,
        }
    }

    fn encode_request(
        &self,
        request: &Message<DeclarativeState>,
        id: u64,
        mutation: &Mutation,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        refuse_mutation(mutation)?;
        self.copy_with_id(&request.body, id, dst)
    }

    fn encode_response(
        &self,
        response: &Message<DeclarativeState>,
        request: &Message<DeclarativeState>,
        mutation: &Mutation,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        refuse_mutation(mutation)?;
        self.copy_with_id(&response.body, request.request_id, dst)
    }

    fn local_reply(
        &self,
        request: &Message<DeclarativeState>,
        error: &ProxyError,
        dst: &mut BytesMut,
    ) {
        let text = error.client_message();
        self.write_frame(
            Some(&request.body),
            self.error_value(),
            request.request_id,
            text.as_bytes(),
            dst,
        );
    }

    fn heartbeat_reply(&self, heartbeat: &Message<DeclarativeState>, dst: &mut BytesMut) {
        let value = self
            .spec
            .message_type
            .as_ref()
            .and_then(|t| t.heartbeat_response);
        self.write_frame(Some(&heartbeat.body), value, heartbeat.request_id, &[], dst);
    }

    fn decode_error_reply(&self, error: &CodecError, dst: &mut BytesMut) -> bool {
        let Some(id) = error.request_id else {
            return false;
        };
        if self.side != Side::Listener {
            return false;
        }
        let text = format!("metaproxy: bad request: {}", error.message);
        self.write_frame(None, self.error_value(), id, text.as_bytes(), dst);
        true
    }

    fn max_request_id(&self) -> u64 {
        self.spec.request_id.width.max_value()
    }

    fn default_upstream_mode(&self) -> UpstreamMode {
        UpstreamMode::Multiplex
    }

    fn health_check_frame(&self, method: Option<&str>) -> Option<BytesMut> {
        let _ = method;
        let t = self.spec.message_type.as_ref()?;
        let heartbeat = t.heartbeat?;
        t.heartbeat_response?;
        let mut out = BytesMut::new();
        self.write_frame(None, Some(heartbeat), 0, &[], &mut out);
        Some(out)
    }
}
