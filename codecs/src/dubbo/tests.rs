//! Codec-level tests: decoding frames built from hessian.js vectors,
//! encoding with and without mutations, replies, and hostile input.

use bytes::{BufMut, Bytes, BytesMut};
use metaproxy_core::{
    Codec, CodecError, CodecErrorKind, CodecOptions, Decoder, ErrorKind, Message, MessageKind,
    Mutation, Origin, ProtocolCodecFactory, ProxyError,
};

use super::attachments;
use super::header::{self, HEADER_LEN};
use super::hessian::{Reader, span_text};
use super::test_vectors::{text, unhex, vectors};
use super::{DubboCodec, DubboCodecFactory, DubboState, status};

const MAX: usize = 1 << 20;

fn codec() -> DubboCodec {
    let options = CodecOptions {
        max_frame_bytes: MAX,
        extra: serde_json::Value::Null,
    };
    let factory = DubboCodecFactory::new();
    assert_eq!(factory.name(), "dubbo");
    factory.listener_codec(&options).unwrap()
}

fn frame(flags: u8, status: u8, id: u64, body: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    header::write(&mut b, flags, status, id, body.len() as u32);
    b.put_slice(body);
    b
}

fn decode(bytes: &[u8]) -> Result<Option<Message<DubboState>>, CodecError> {
    let mut src = BytesMut::from(bytes);
    codec().decoder().decode(&mut src)
}

fn decode_all(bytes: &[u8]) -> Message<DubboState> {
    let mut src = BytesMut::from(bytes);
    let msg = codec().decoder().decode(&mut src).unwrap().unwrap();
    assert!(src.is_empty());
    msg
}

fn request_body() -> Vec<u8> {
    unhex(text(&vectors()["request"], "body_hex"))
}

fn request_frame(id: u64) -> BytesMut {
    frame(0xc2, 0, id, &request_body())
}

/// The string body of an error response.
fn error_text(msg: &Message<DubboState>) -> String {
    let mut r = Reader::new(&msg.body, HEADER_LEN);
    let span = r.read_string().unwrap();
    assert!(r.at_end());
    span_text(&msg.body, &span).unwrap().to_string()
}

#[test]
fn decodes_request_metadata() {
    let v = vectors();
    let req = &v["request"];
    let msg = decode_all(&request_frame(77));
    assert_eq!(msg.kind, MessageKind::Request);
    assert_eq!(msg.request_id, 77);
    assert_eq!(msg.body.len(), HEADER_LEN + request_body().len());
    let m = &msg.metadata;
    assert_eq!(m.get("protocol"), Some("dubbo"));
    assert_eq!(m.get("service"), Some(text(req, "service")));
    assert_eq!(m.get("interface"), Some(text(req, "service")));
    assert_eq!(m.get("method"), Some(text(req, "method")));
    assert_eq!(m.get("dubbo_version"), Some(text(req, "dubbo_version")));
    assert_eq!(m.get("request_id"), Some("77"));
    // The body's version wins over the `version` attachment.
    assert_eq!(m.get("version"), Some("1.0.0"));
    assert_eq!(m.get("group"), Some("blue"));
    // Attachment keys keep their case; non-string scalars are rendered.
    assert_eq!(m.get("batchJob"), Some("true"));
    assert_eq!(m.get("batchjob"), None);
    assert_eq!(m.get("X-Trace"), Some("héllo 世界 😀"));
    assert_eq!(m.get("retries"), Some("2"));
    assert_eq!(m.get("sampled"), Some("true"));
    assert_eq!(m.get("timeout"), Some("3000"));
    assert_eq!(m.get("path"), Some(text(req, "service")));
    assert_eq!(m.get("tags"), None);
    for (k, want) in req["attachments"].as_object().unwrap() {
        if k != "version" {
            assert_eq!(m.get(k), want.as_str(), "{k}");
        }
    }
    for key in ["version", "group", "interface", "service"] {
        assert_eq!(m.iter().filter(|(k, _)| *k == key).count(), 1, "{key}");
    }
    // Strings are slices of the frame, not copies.
    let service = m.get("service").unwrap().as_ptr() as usize;
    let start = msg.body.as_ptr() as usize;
    assert!(service > start && service < start + msg.body.len());
    // The attachments map starts right after the arguments.
    let prefix = req["prefix_len"].as_u64().unwrap() as usize;
    assert_eq!(
        msg.state.attachments_range(),
        Some(HEADER_LEN + prefix..msg.body.len())
    );
    assert_eq!(msg.state.attachments().unwrap().entries.len(), 10);
    assert_eq!(msg.state.serialization_id(), 2);
}

#[test]
fn decodes_pipelined_and_partial_frames() {
    let one = request_frame(1);
    let mut src = BytesMut::new();
    src.put_slice(&one);
    src.put_slice(&request_frame(2));
    let mut dec = codec().decoder();
    // Byte by byte: nothing is consumed until the frame is whole.
    let mut partial = BytesMut::new();
    for &b in &one[..one.len() - 1] {
        partial.put_u8(b);
        assert!(dec.decode(&mut partial).unwrap().is_none());
    }
    assert_eq!(partial.len(), one.len() - 1);
    assert_eq!(dec.decode(&mut src).unwrap().unwrap().request_id, 1);
    assert_eq!(dec.decode(&mut src).unwrap().unwrap().request_id, 2);
    assert!(dec.decode(&mut src).unwrap().is_none());
}

#[test]
fn version_falls_back_to_attachment() {
    let mut body = BytesMut::new();
    for s in ["2.0.2", "com.example.Svc", "", "ping", ""] {
        super::hessian::writer::write_string(&mut body, s);
    }
    body.put_slice(&[b'H', 0x07]);
    body.put_slice(b"version");
    body.put_slice(&[0x03]);
    body.put_slice(b"2.1");
    body.put_u8(b'Z');
    let msg = decode_all(&frame(0xc2, 0, 5, &body));
    assert_eq!(msg.metadata.get("version"), Some("2.1"));
    assert_eq!(
        msg.metadata.iter().filter(|(k, _)| *k == "version").count(),
        1
    );
}

#[test]
fn encode_request_without_mutation_patches_the_id() {
    let original = request_frame(77);
    let msg = decode_all(&original);
    let mut dst = BytesMut::new();
    codec()
        .encode_request(&msg, 0x0102_0304_0506_0708, &Mutation::new(), &mut dst)
        .unwrap();
    assert_eq!(dst.len(), original.len());
    assert_eq!(&dst[4..12], &0x0102_0304_0506_0708u64.to_be_bytes());
    assert_eq!(&dst[..4], &original[..4]);
    assert_eq!(&dst[12..], &original[12..]);
}

#[test]
fn encode_request_with_mutation_rewrites_attachments() {
    let msg = decode_all(&request_frame(77));
    let mut mutation = Mutation::new();
    mutation.set("x-new", "vé😀");
    mutation.remove("batchJob");
    mutation.set("group", "green");
    let mut dst = BytesMut::new();
    codec()
        .encode_request(&msg, 9, &mutation, &mut dst)
        .unwrap();
    let again = decode_all(&dst);
    assert_eq!(again.request_id, 9);
    let m = &again.metadata;
    assert_eq!(m.get("x-new"), Some("vé😀"));
    assert_eq!(m.get("batchJob"), None);
    assert_eq!(m.get("group"), Some("green"));
    assert_eq!(m.get("method"), msg.metadata.get("method"));
    assert_eq!(m.get("X-Trace"), Some("héllo 世界 😀"));
    assert_eq!(m.get("retries"), Some("2"));
    // Everything before the map is untouched.
    let map_start = msg.state.attachments_range().unwrap().start;
    assert_eq!(
        &dst[HEADER_LEN..map_start],
        &msg.body[HEADER_LEN..map_start]
    );
    assert_eq!(again.state.attachments().unwrap().entries.len(), 10);
    // Re-encoding the decoded result without a mutation is the identity (bar the id).
    let mut back = BytesMut::new();
    codec()
        .encode_request(&again, 9, &Mutation::new(), &mut back)
        .unwrap();
    assert_eq!(back, dst);
}

#[test]
fn encode_request_appends_a_missing_map() {
    let body = unhex(text(&vectors()["bare_request"], "body_hex"));
    let msg = decode_all(&frame(0xc2, 0, 3, &body));
    assert_eq!(msg.metadata.get("method"), Some("$echo"));
    assert_eq!(msg.metadata.get("version"), None);
    assert_eq!(msg.state.attachments().unwrap().entries.len(), 0);
    let mut mutation = Mutation::new();
    mutation.set("x-new", "1");
    mutation.set("version", "2.0");
    mutation.remove("absent");
    let mut dst = BytesMut::new();
    codec()
        .encode_request(&msg, 4, &mutation, &mut dst)
        .unwrap();
    let again = decode_all(&dst);
    assert_eq!(again.metadata.get("x-new"), Some("1"));
    assert_eq!(again.metadata.get("version"), Some("2.0"));
    assert_eq!(again.metadata.get("absent"), None);
    assert_eq!(&dst[HEADER_LEN..HEADER_LEN + body.len()], &body[..]);
}

#[test]
fn oneway_and_heartbeat() {
    let oneway = decode_all(&frame(0x82, 0, 8, &request_body()));
    assert_eq!(oneway.kind, MessageKind::Oneway);
    let hb = decode_all(&frame(0xe2, 0, 11, b"N"));
    assert_eq!(hb.kind, MessageKind::Heartbeat);
    assert!(hb.state.is_event());
    let mut dst = BytesMut::new();
    codec().heartbeat_reply(&hb, &mut dst);
    let reply = decode_all(&dst);
    assert_eq!(reply.kind, MessageKind::HeartbeatResponse);
    assert_eq!(reply.request_id, 11);
    assert_eq!(reply.state.status(), status::OK);
    assert_eq!(&reply.body[HEADER_LEN..], b"N");
    // A heartbeat in another serialization is still a heartbeat.
    assert_eq!(
        decode_all(&frame(0xe6, 0, 1, b"null")).kind,
        MessageKind::Heartbeat
    );
    // Events carry no attachments: a mutation leaves them unchanged.
    let mut m = Mutation::new();
    m.set("a", "b");
    let mut fwd = BytesMut::new();
    codec().encode_request(&hb, 12, &m, &mut fwd).unwrap();
    assert_eq!(&fwd[4..12], &12u64.to_be_bytes());
    assert_eq!(&fwd[12..], &hb.body[12..]);
}

#[test]
fn local_replies_carry_the_mapped_status() {
    let req = decode_all(&request_frame(42));
    let cases = [
        (ErrorKind::RouteNotFound, status::SERVICE_NOT_FOUND),
        (ErrorKind::ClusterNotFound, status::SERVICE_NOT_FOUND),
        (ErrorKind::NoHealthyUpstream, status::SERVICE_NOT_FOUND),
        (ErrorKind::ConnectFailure, status::SERVICE_NOT_FOUND),
        (ErrorKind::Timeout, status::SERVER_TIMEOUT),
        (
            ErrorKind::OverLimit,
            status::SERVER_THREADPOOL_EXHAUSTED_ERROR,
        ),
        (ErrorKind::BadRequest, status::BAD_REQUEST),
        (ErrorKind::UpstreamReset, status::SERVICE_ERROR),
        (ErrorKind::PermissionDenied, status::SERVICE_ERROR),
        (ErrorKind::Internal, status::SERVER_ERROR),
    ];
    for (kind, want) in cases {
        let err = ProxyError::new(kind, Origin::Internal, "détails 😀");
        let mut dst = BytesMut::new();
        codec().local_reply(&req, &err, &mut dst);
        let reply = decode_all(&dst);
        assert_eq!(reply.kind, MessageKind::Error, "{kind:?}");
        assert_eq!(reply.request_id, 42);
        assert_eq!(reply.state.status(), want, "{kind:?}");
        assert_eq!(reply.state.flags(), 2);
        assert_eq!(
            reply.metadata.get("status"),
            Some(want.to_string().as_str())
        );
        assert_eq!(error_text(&reply), err.client_message());
    }
    let denied = ProxyError::new(ErrorKind::PermissionDenied, Origin::Internal, "rbac");
    let mut dst = BytesMut::new();
    codec().local_reply(&req, &denied, &mut dst);
    assert!(error_text(&decode_all(&dst)).contains("permission denied"));
    // A message longer than one chunk is chunked and read back whole.
    let long = ProxyError::new(ErrorKind::Internal, Origin::Internal, "é".repeat(70_000));
    let mut dst = BytesMut::new();
    codec().local_reply(&req, &long, &mut dst);
    assert_eq!(error_text(&decode_all(&dst)), long.client_message());
}

#[test]
fn decode_error_reply_needs_an_id() {
    let mut dst = BytesMut::new();
    let no_id = CodecError::fatal(CodecErrorKind::Malformed, "bad magic");
    assert!(!codec().decode_error_reply(&no_id, &mut dst));
    assert!(dst.is_empty());
    let err = decode(&frame(0xc2, 0, 6, b"garbage")).unwrap_err();
    assert!(codec().decode_error_reply(&err, &mut dst));
    let reply = decode_all(&dst);
    assert_eq!(reply.request_id, 6);
    assert_eq!(reply.state.status(), status::BAD_REQUEST);
    assert_eq!(error_text(&reply), err.message);
}

fn response_frame(flag_body_hex: &str, id: u64) -> BytesMut {
    frame(0x02, status::OK, id, &unhex(flag_body_hex))
}

fn response_attachments(msg: &Message<DubboState>) -> Vec<(String, String)> {
    let mut r = Reader::new(&msg.body, HEADER_LEN);
    let flag = r.read_int().unwrap();
    assert!((3..=5).contains(&flag));
    if flag != 5 {
        r.skip_value().unwrap();
    }
    let layout = attachments::parse(&msg.body, &mut r).unwrap();
    assert!(r.at_end());
    layout
        .entries
        .iter()
        .map(|e| {
            let k = e.key.as_deref().unwrap_or_default().to_string();
            (k, e.value.as_deref().unwrap_or_default().to_string())
        })
        .collect()
}

#[test]
fn responses_and_response_mutation() {
    let v = vectors();
    let req = decode_all(&request_frame(500));
    let resp = decode_all(&response_frame(text(&v["response"], "body_hex"), 9000));
    assert_eq!(resp.kind, MessageKind::Response);
    assert_eq!(resp.state.response_flag(), Some(4));
    assert_eq!(resp.metadata.get("status"), Some("20"));
    // No mutation: one copy, id patched to the downstream request's.
    let mut dst = BytesMut::new();
    codec()
        .encode_response(&resp, &req, &Mutation::new(), &mut dst)
        .unwrap();
    assert_eq!(&dst[4..12], &500u64.to_be_bytes());
    assert_eq!(&dst[12..], &resp.body[12..]);
    // Flag 4: the map is rewritten.
    let mut m = Mutation::new();
    m.set("x-new", "1");
    m.remove("cost");
    let mut dst = BytesMut::new();
    codec().encode_response(&resp, &req, &m, &mut dst).unwrap();
    let out = decode_all(&dst);
    assert_eq!(out.request_id, 500);
    assert_eq!(out.state.response_flag(), Some(4));
    assert_eq!(
        response_attachments(&out),
        vec![
            ("traceId".into(), "abc".into()),
            ("x-new".into(), "1".into())
        ]
    );
    // Flag 1: becomes 4 with a map appended after the value.
    let plain = decode_all(&response_frame(
        text(&v["response"], "value_flag_only_hex"),
        1,
    ));
    assert_eq!(plain.state.response_flag(), Some(1));
    let mut dst = BytesMut::new();
    codec().encode_response(&plain, &req, &m, &mut dst).unwrap();
    let out = decode_all(&dst);
    assert_eq!(out.state.response_flag(), Some(4));
    assert_eq!(
        response_attachments(&out),
        vec![("x-new".into(), "1".into())]
    );
    // Flag 2 (null) becomes 5, flag 0 (exception) becomes 3 and stays an error.
    for (body, want) in [(&[0x92][..], 5), (&[0x90, b'N'][..], 3)] {
        let r = decode_all(&frame(0x02, status::OK, 1, body));
        let mut dst = BytesMut::new();
        codec().encode_response(&r, &req, &m, &mut dst).unwrap();
        let out = decode_all(&dst);
        assert_eq!(out.state.response_flag(), Some(want));
        assert_eq!(out.kind, r.kind);
        assert_eq!(
            response_attachments(&out),
            vec![("x-new".into(), "1".into())]
        );
    }
    assert_eq!(
        decode_all(&frame(0x02, status::OK, 1, &[0x90, b'N'])).kind,
        MessageKind::Error
    );
}

#[test]
fn error_status_responses_are_forwarded_unchanged() {
    let req = decode_all(&request_frame(3));
    let mut body = BytesMut::new();
    super::hessian::writer::write_string(&mut body, "boom");
    let resp = decode_all(&frame(0x02, status::SERVICE_ERROR, 99, &body));
    assert_eq!(resp.kind, MessageKind::Error);
    assert_eq!(resp.metadata.get("status"), Some("70"));
    let mut m = Mutation::new();
    m.set("x", "y");
    let mut dst = BytesMut::new();
    codec().encode_response(&resp, &req, &m, &mut dst).unwrap();
    assert_eq!(&dst[4..12], &3u64.to_be_bytes());
    assert_eq!(&dst[12..], &resp.body[12..]);
    // A response in another serialization is forwarded too, unread.
    let other = decode_all(&frame(0x06, status::OK, 1, b"{}"));
    assert_eq!(other.kind, MessageKind::Response);
    assert_eq!(other.state.response_flag(), None);
}

fn assert_fatal(
    res: Result<Option<Message<DubboState>>, CodecError>,
    kind: CodecErrorKind,
) -> CodecError {
    let err = res.unwrap_err();
    assert_eq!(err.kind, kind);
    assert!(!err.frame_consumed);
    err
}

#[test]
fn fatal_framing_errors() {
    let mut bad = request_frame(1);
    bad[1] = 0xbc;
    assert_fatal(decode(&bad), CodecErrorKind::Malformed);
    assert_fatal(decode(b"GET / HTTP/1.1\r\n"), CodecErrorKind::Malformed);
    let mut negative = request_frame(1);
    negative[12..16].copy_from_slice(&(-5i32).to_be_bytes());
    assert_fatal(decode(&negative), CodecErrorKind::Malformed);
    // Too large: refused from the header alone, id attached.
    let mut big = BytesMut::new();
    header::write(&mut big, 0xc2, 0, 31, (MAX + 1) as u32);
    let err = assert_fatal(decode(&big), CodecErrorKind::FrameTooLarge);
    assert_eq!(err.request_id, Some(31));
    let mut dst = BytesMut::new();
    assert!(codec().decode_error_reply(&err, &mut dst));
    assert_eq!(decode_all(&dst).state.status(), status::BAD_REQUEST);
    // Exactly the limit is fine (and waits for the body).
    let mut edge = BytesMut::new();
    header::write(&mut edge, 0xc2, 0, 31, MAX as u32);
    assert!(decode(&edge).unwrap().is_none());
}

#[test]
fn truncated_input_waits() {
    let whole = request_frame(1);
    for cut in [0, 1, 2, 15, 16, 17, whole.len() - 1] {
        let mut src = BytesMut::from(&whole[..cut]);
        assert!(
            codec().decoder().decode(&mut src).unwrap().is_none(),
            "{cut}"
        );
        assert_eq!(src.len(), cut);
    }
}

fn assert_skipped(bytes: &[u8], kind: CodecErrorKind, id: u64) -> CodecError {
    let mut src = BytesMut::from(bytes);
    src.put_slice(&request_frame(1000));
    let mut dec = codec().decoder();
    let err = dec.decode(&mut src).unwrap_err();
    assert_eq!(err.kind, kind, "{}", err.message);
    assert!(err.frame_consumed);
    assert_eq!(err.request_id, Some(id));
    // The stream goes on with the next frame.
    assert_eq!(dec.decode(&mut src).unwrap().unwrap().request_id, 1000);
    err
}

#[test]
fn skipped_frames() {
    let err = assert_skipped(&frame(0xc6, 0, 5, b"{}"), CodecErrorKind::Unsupported, 5);
    assert_eq!(err.message, "unsupported serialization id 6");
    assert_skipped(
        &frame(0xc2, 0, 6, b"\xff\xff"),
        CodecErrorKind::Malformed,
        6,
    );
    assert_skipped(&frame(0xc2, 0, 7, b""), CodecErrorKind::Malformed, 7);
    // A truncated body (declared length shorter than the hessian inside).
    let body = request_body();
    assert_skipped(
        &frame(0xc2, 0, 8, &body[..body.len() - 1]),
        CodecErrorKind::Malformed,
        8,
    );
    // Bad descriptor.
    let mut b = BytesMut::new();
    for s in ["2.0.2", "S", "", "m", "Lfoo"] {
        super::hessian::writer::write_string(&mut b, s);
    }
    assert_skipped(&frame(0xc2, 0, 9, &b), CodecErrorKind::Malformed, 9);
}

fn request_with_args(descriptor: &str, args: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    for s in ["2.0.2", "com.example.S", "", "m", descriptor] {
        super::hessian::writer::write_string(&mut b, s);
    }
    b.put_slice(args);
    b
}

#[test]
fn hostile_bodies() {
    // Deeply nested lists.
    let mut deep = vec![0x79u8; 10_000];
    deep.push(b'N');
    let err = assert_skipped(
        &frame(0xc2, 0, 1, &request_with_args("I", &deep)),
        CodecErrorKind::Malformed,
        1,
    );
    assert!(err.message.contains("nested"), "{}", err.message);
    // A huge declared list length.
    let huge = [
        b'V', 0x04, b'[', b'i', b'n', b't', b'I', 0x7f, 0xff, 0xff, 0xff, 0x91,
    ];
    let err = assert_skipped(
        &frame(0xc2, 0, 2, &request_with_args("[I", &huge)),
        CodecErrorKind::Malformed,
        2,
    );
    assert!(err.message.contains("length"), "{}", err.message);
    // Too many attachments.
    let mut map = vec![b'H'];
    for i in 0..=attachments::MAX_ATTACHMENTS {
        map.push(0x05);
        map.extend_from_slice(format!("k{i:04}").as_bytes());
        map.push(b'T');
    }
    map.push(b'Z');
    let err = assert_skipped(
        &frame(0xc2, 0, 3, &request_with_args("", &map)),
        CodecErrorKind::Malformed,
        3,
    );
    assert!(err.message.contains("attachments"), "{}", err.message);
    // Something other than a map where the attachments belong.
    assert_skipped(
        &frame(0xc2, 0, 4, &request_with_args("", &[0x91])),
        CodecErrorKind::Malformed,
        4,
    );
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Decodes everything in `bytes`; encodes what decodes, with and without a mutation.
fn exercise(bytes: &[u8]) {
    let codec = codec();
    let mut dec = codec.decoder();
    let mut src = BytesMut::from(bytes);
    let mut mutation = Mutation::new();
    mutation.set("x-new", "1");
    mutation.remove("batchJob");
    for _ in 0..8 {
        match dec.decode(&mut src) {
            Ok(Some(msg)) => {
                let mut dst = BytesMut::new();
                codec
                    .encode_request(&msg, 1, &Mutation::new(), &mut dst)
                    .unwrap();
                let _ = codec.encode_request(&msg, 1, &mutation, &mut dst);
                let _ = codec.encode_response(&msg, &msg, &mutation, &mut dst);
                codec.heartbeat_reply(&msg, &mut dst);
            }
            Ok(None) => return,
            Err(e) => {
                let mut dst = BytesMut::new();
                codec.decode_error_reply(&e, &mut dst);
                if !e.frame_consumed {
                    return;
                }
            }
        }
    }
}

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let request = request_frame(1);
    let response = response_frame(text(&vectors()["response"], "body_hex"), 2);
    for round in 0..4000 {
        let mut bytes: Vec<u8> = match round % 4 {
            // Pure noise.
            0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
            // A valid header over a noisy body.
            1 => {
                let len = rng.below(256);
                let flags = [0xc2, 0x82, 0x02, 0xe2, 0x22][rng.below(5)];
                let mut f = frame(flags, 20, round, &vec![0; len]).to_vec();
                for b in &mut f[HEADER_LEN..] {
                    *b = rng.next() as u8;
                }
                f
            }
            // A real request or response with a few bytes flipped.
            _ => {
                let mut f = if round % 4 == 2 {
                    request.to_vec()
                } else {
                    response.to_vec()
                };
                for _ in 0..1 + rng.below(4) {
                    let i = HEADER_LEN + rng.below(f.len() - HEADER_LEN);
                    f[i] = rng.next() as u8;
                }
                f
            }
        };
        if round % 7 == 0 {
            let cut = rng.below(bytes.len() + 1);
            bytes.truncate(cut);
        }
        exercise(&bytes);
    }
}

#[test]
fn message_with_mismatched_state_is_an_error_not_a_panic() {
    let mut msg = decode_all(&request_frame(1));
    msg.body = Bytes::from_static(&[0xda, 0xbb, 0xc2]);
    let mut m = Mutation::new();
    m.set("a", "b");
    let mut dst = BytesMut::new();
    assert!(
        codec()
            .encode_request(&msg, 1, &Mutation::new(), &mut dst)
            .is_err()
    );
    assert!(codec().encode_request(&msg, 1, &m, &mut dst).is_err());
    assert!(dst.is_empty());
}

#[test]
fn typed_and_null_attachment_maps_are_rewritten() {
    // 'M' "java.util.HashMap" { "k": "v" } 'Z': the typed header is kept.
    let mut typed = vec![b'M'];
    let ty = b"java.util.HashMap";
    typed.push(ty.len() as u8);
    typed.extend_from_slice(ty);
    typed.extend_from_slice(&[0x01, b'k', 0x01, b'v', b'Z']);
    let mut m = Mutation::new();
    m.set("x-new", "1");
    for (map, header_len) in [(typed, 2 + ty.len()), (vec![b'N'], 1)] {
        let msg = decode_all(&frame(0xc2, 0, 1, &request_with_args("", &map)));
        let range = msg.state.attachments_range().unwrap();
        let mut dst = BytesMut::new();
        codec().encode_request(&msg, 2, &m, &mut dst).unwrap();
        let again = decode_all(&dst);
        assert_eq!(again.metadata.get("x-new"), Some("1"));
        if map.len() > 1 {
            assert_eq!(again.metadata.get("k"), Some("v"));
            assert_eq!(
                &dst[range.start..range.start + header_len],
                &map[..header_len]
            );
        } else {
            assert_eq!(dst[range.start], b'H');
        }
    }
}
