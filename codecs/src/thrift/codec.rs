//! The Thrift [`Codec`] and [`ProtocolCodecFactory`].
//!
//! - Requests go upstream in the cluster's transport and protocol when the
//!   cluster's `options:` name them, else in the request's own
//!   (passthrough: one copy, seqid rewritten). A different transport is
//!   re-framing only; a different protocol family (binary ↔ compact)
//!   re-encodes the struct ([`super::transcode`]).
//! - Responses go back in the request's transport and protocol (strictness
//!   included) with the request's seqid, and for THeader the request's
//!   flags and frame sequence number.
//! - Mutations set and remove THeader info headers. Framed and unframed
//!   messages cannot carry headers: a non-empty mutation there is an
//!   [`CodecErrorKind::Encode`] error, which the client sees as an exception.

use bytes::{Bytes, BytesMut};
use metaproxy_core::PluginError;
use metaproxy_core::{
    Codec, CodecError, CodecErrorKind, CodecOptions, Message, MessageKind, Mutation, MutationOp,
    ProtocolCodecFactory, ProxyError, UpstreamMode,
};

use super::decoder::ThriftDecoder;
use super::envelope::{self, Block, Envelope};
use super::exception::{self, clip};
use super::options::ThriftOptions;
use super::reply_to::ReplyTo;
use super::transcode::transcode;
use super::wire::{MessageType, Protocol, Transport};
use super::{PROTOCOL, ThriftState};

/// Builds [`ThriftCodec`]s from config; registered as `thrift`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThriftCodecFactory;

impl ThriftCodecFactory {
    /// A factory.
    pub fn new() -> Self {
        Self
    }
}

impl ProtocolCodecFactory for ThriftCodecFactory {
    type Codec = ThriftCodec;

    fn name(&self) -> &'static str {
        PROTOCOL
    }

    fn listener_codec(&self, options: &CodecOptions) -> Result<ThriftCodec, PluginError> {
        let o = ThriftOptions::parse(&options.extra).map_err(|e| e.to_string())?;
        Ok(ThriftCodec::new(
            options.max_frame_bytes,
            o.transport.fixed(),
            o.protocol.fixed(),
        ))
    }

    fn cluster_codec(&self, options: &CodecOptions) -> Result<ThriftCodec, PluginError> {
        Ok(self.listener_codec(options)?.upstream())
    }
}

/// The Thrift codec, shared by the connections of a listener or cluster.
#[derive(Debug, Clone)]
pub struct ThriftCodec {
    max_frame_bytes: usize,
    transport: Option<Transport>,
    protocol: Option<Protocol>,
    lock_sniffed: bool,
}

impl ThriftCodec {
    /// A codec. A fixed `transport`/`protocol` is what its connections read,
    /// and (cluster side) what requests are sent in; `None` means sniff on
    /// read and "as the request came" on send.
    pub fn new(
        max_frame_bytes: usize,
        transport: Option<Transport>,
        protocol: Option<Protocol>,
    ) -> Self {
        Self {
            max_frame_bytes,
            transport,
            protocol,
            lock_sniffed: true,
        }
    }

    /// The same codec for upstream connections: without a fixed transport,
    /// every answer is sniffed anew, since a pooled connection carries
    /// requests (and so answers) in whatever format each client used.
    pub fn upstream(mut self) -> Self {
        self.lock_sniffed = false;
        self
    }

    fn send_protocol(&self, request: Protocol) -> Protocol {
        match self.protocol {
            Some(p) if !p.same_family(request) => p,
            _ => request,
        }
    }
}

fn encode_err(message: impl Into<String>) -> CodecError {
    CodecError::fatal(CodecErrorKind::Encode, message)
}

/// `base` with the mutation applied, in order.
fn mutated(base: &[(Bytes, Bytes)], mutation: &Mutation) -> Vec<(Bytes, Bytes)> {
    let mut out = base.to_vec();
    for op in mutation.ops() {
        match op {
            MutationOp::Set(k, v) => {
                let k = k.as_bytes();
                match out.iter_mut().find(|(ok, _)| ok == k) {
                    Some(slot) => slot.1 = v.as_bytes().clone(),
                    None => out.push((k.clone(), v.as_bytes().clone())),
                }
            }
            MutationOp::Remove(k) => out.retain(|(ok, _)| ok != k.as_bytes()),
        }
    }
    out
}

fn no_headers_error(transport: Transport, mutation: &Mutation) -> CodecError {
    let keys: Vec<&str> = mutation
        .ops()
        .iter()
        .map(|op| match op {
            MutationOp::Set(k, _) | MutationOp::Remove(k) => &**k,
        })
        .collect();
    encode_err(format!(
        "thrift {} transport cannot carry headers (mutation of {}); use `options: {{ transport: header }}`",
        transport.name(),
        keys.join(", ")
    ))
}

/// What to write: the source message, the output format and headers.
struct Plan<'a> {
    source: &'a Message<ThriftState>,
    transport: Transport,
    protocol: Protocol,
    seqid: i32,
    flags: u16,
    header_seqid: i32,
}

/// Writes `plan`'s message: struct transcoded when the protocol family
/// changes; THeader block copied verbatim when nothing about it changes.
fn write_plan(plan: &Plan<'_>, mutation: &Mutation, dst: &mut BytesMut) -> Result<(), CodecError> {
    let src = plan.source;
    let st = &src.state;
    if !mutation.is_empty() && plan.transport != Transport::Header {
        return Err(no_headers_error(plan.transport, mutation));
    }
    let frame = &src.body[..];
    let (Some(name), Some(body)) = (frame.get(st.name.clone()), frame.get(st.body.clone())) else {
        return Err(encode_err("thrift message state does not match its frame"));
    };
    let mut transcoded = BytesMut::new();
    let body = if st.protocol.same_family(plan.protocol) {
        body
    } else {
        transcode(body, st.protocol, plan.protocol, &mut transcoded).map_err(|e| {
            encode_err(format!(
                "cannot translate {} to {}: {e}",
                st.protocol.name(),
                plan.protocol.name()
            ))
        })?;
        &transcoded[..]
    };
    let base = st.theader.as_ref().map_or(&[][..], |t| &t.headers[..]);
    let headers;
    let block = match &st.theader {
        Some(t) if mutation.is_empty() && st.protocol.same_family(plan.protocol) => {
            Block::Verbatim(frame.get(t.block.clone()).unwrap_or_default())
        }
        _ => {
            headers = mutated(base, mutation);
            Block::Build(&headers)
        }
    };
    let env = Envelope {
        transport: plan.transport,
        protocol: plan.protocol,
        name,
        message_type: st.message_type,
        seqid: plan.seqid,
        flags: plan.flags,
        header_seqid: plan.header_seqid,
        block,
    };
    envelope::write(dst, &env, body).map_err(|e| encode_err(e.to_string()))
}

/// The error answer to a request, in its transport and protocol.
fn write_exception(
    to: &ReplyTo,
    name: &[u8],
    flags: u16,
    header_seqid: i32,
    message: &str,
    metadata: &[(Bytes, Bytes)],
    dst: &mut BytesMut,
) {
    let message = clip(message);
    let mut body =
        BytesMut::with_capacity(exception::body_len(to.protocol, message, to.exception_type));
    exception::write_body(&mut body, to.protocol, message, to.exception_type);
    let env = Envelope {
        transport: to.transport,
        protocol: to.protocol,
        name,
        message_type: MessageType::Exception,
        seqid: to.seqid,
        flags,
        header_seqid,
        block: Block::Build(metadata),
    };
    if envelope::write(dst, &env, &body).is_err() {
        // Metadata too large for a header block is dropped; a name of at
        // most 64 KiB and a clipped message always fit a frame.
        let env = Envelope {
            block: Block::Build(&[]),
            ..env
        };
        let _ = envelope::write(dst, &env, &body);
    }
}

impl Codec for ThriftCodec {
    type State = ThriftState;
    type Decoder = ThriftDecoder;

    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn decoder(&self) -> ThriftDecoder {
        ThriftDecoder::new(
            self.max_frame_bytes,
            self.transport,
            self.protocol,
            self.lock_sniffed,
        )
    }

    fn encode_request(
        &self,
        request: &Message<ThriftState>,
        id: u64,
        mutation: &Mutation,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let st = &request.state;
        let seqid = id as u32 as i32;
        let plan = Plan {
            source: request,
            transport: self.transport.unwrap_or(st.transport),
            protocol: self.send_protocol(st.protocol),
            seqid,
            flags: st.theader.as_ref().map_or(0, |t| t.flags),
            header_seqid: seqid,
        };
        write_plan(&plan, mutation, dst)
    }

    fn encode_response(
        &self,
        response: &Message<ThriftState>,
        request: &Message<ThriftState>,
        mutation: &Mutation,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let rq = &request.state;
        let plan = Plan {
            source: response,
            transport: rq.transport,
            protocol: rq.protocol,
            seqid: rq.seqid,
            flags: rq.theader.as_ref().map_or(0, |t| t.flags),
            header_seqid: rq.theader.as_ref().map_or(rq.seqid, |t| t.seqid),
        };
        write_plan(&plan, mutation, dst)
    }

    fn local_reply(&self, request: &Message<ThriftState>, error: &ProxyError, dst: &mut BytesMut) {
        let st = &request.state;
        let to = ReplyTo {
            transport: st.transport,
            protocol: st.protocol,
            seqid: st.seqid,
            exception_type: exception::type_for(error.kind),
        };
        let name = request.body.get(st.name.clone()).unwrap_or_default();
        let (flags, header_seqid) = st
            .theader
            .as_ref()
            .map_or((0, st.seqid), |t| (t.flags, t.seqid));
        // THeader info headers carry the error's reply metadata (e.g.
        // `retry-after`); the other transports have no place for it.
        let metadata: Vec<(Bytes, Bytes)> = if st.transport == Transport::Header {
            error
                .reply_metadata
                .iter()
                .map(|(k, v)| (Bytes::from(k.clone()), Bytes::from(v.clone())))
                .collect()
        } else {
            Vec::new()
        };
        let message = error.client_message();
        write_exception(&to, name, flags, header_seqid, &message, &metadata, dst);
    }

    fn heartbeat_reply(&self, _heartbeat: &Message<ThriftState>, _dst: &mut BytesMut) {
        // Thrift has no heartbeats: the decoder never produces one.
    }

    fn decode_error_reply(&self, error: &CodecError, dst: &mut BytesMut) -> bool {
        let Some(to) = ReplyTo::of(error) else {
            return false;
        };
        let text = format!("metaproxy: bad request: {}", error.message);
        write_exception(to, b"", 0, to.seqid, &text, &[], dst);
        true
    }

    fn max_request_id(&self) -> u64 {
        i32::MAX as u64
    }

    /// Pipelined: Thrift servers answer each connection's calls in order,
    /// so calls share a few connections (batched writes and reads) without
    /// trusting the server to echo seqids.
    fn default_upstream_mode(&self) -> UpstreamMode {
        UpstreamMode::Pipeline
    }

    /// A CALL of `method` with no arguments, in the cluster's transport and
    /// protocol (framed binary when the cluster forwards as clients send).
    /// Without a method there is no Thrift probe (a TCP connect is used).
    fn health_check_frame(&self, method: Option<&str>) -> Option<BytesMut> {
        let name = method?.as_bytes();
        let env = Envelope {
            transport: self.transport.unwrap_or(Transport::Framed),
            protocol: self.protocol.unwrap_or(Protocol::Binary { strict: true }),
            name,
            message_type: MessageType::Call,
            seqid: 1,
            flags: 0,
            header_seqid: 1,
            block: Block::Build(&[]),
        };
        let mut dst = BytesMut::new();
        // An empty argument struct is a lone field-stop byte in both protocols.
        envelope::write(&mut dst, &env, &[0]).ok()?;
        Some(dst)
    }

    /// Healthy when the server answers with a REPLY (a declared exception
    /// is a REPLY too); a `TApplicationException` fails the check.
    fn health_check_passed(&self, response: &Message<ThriftState>) -> bool {
        response.kind == MessageKind::Response
    }
}
