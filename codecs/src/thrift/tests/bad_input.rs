//! Hostile and broken input: limits, bad lengths, bad versions, THeader
//! corruption, transforms. Errors, never panics; replies where addressable.

use bytes::BytesMut;
use metaproxy_core::{Codec, CodecErrorKind, Decoder};

use super::super::ThriftCodec;
use super::super::exception::types;
use super::super::reply_to::ReplyTo;
use super::super::wire::Transport;
use super::{auto_codec, decode_one, try_decode, vector};

fn small() -> ThriftCodec {
    ThriftCodec::new(64, None, None)
}

/// The decode-error reply for `bytes`, decoded: (exception type, message text).
fn reply_for(codec: &ThriftCodec, bytes: &[u8]) -> Option<(Vec<u8>, super::super::wire::Protocol)> {
    let e = try_decode(codec, bytes).unwrap_err();
    let mut out = BytesMut::new();
    codec.decode_error_reply(&e, &mut out).then(|| {
        let msg = decode_one(&out);
        (out.to_vec(), msg.state.protocol())
    })
}

#[test]
fn negative_and_oversized_frames_are_refused_before_buffering() {
    let e = try_decode(&auto_codec(), &[0x7f, 0xff, 0xff, 0xff, 0x80, 0x01, 0, 1]).unwrap_err();
    assert_eq!(e.kind, CodecErrorKind::FrameTooLarge);
    assert!(!e.frame_consumed);
    let e = try_decode(
        &ThriftCodec::new(64, Some(Transport::Framed), None),
        &[0xff, 0xff, 0xff, 0xfe, 0x80, 0x01],
    )
    .unwrap_err();
    assert_eq!(e.kind, CodecErrorKind::Malformed);
    assert!(e.message.contains("negative"), "{e}");
    // Oversized but with its message header buffered: an addressed PROTOCOL_ERROR reply.
    let mut big = vector("call", "framed", "compact");
    big[..4].copy_from_slice(&1000u32.to_be_bytes());
    let e = try_decode(&small(), &big).unwrap_err();
    let to = ReplyTo::of(&e).unwrap();
    assert_eq!(
        e.request_id,
        Some(7),
        "request_id is the seqid, nothing packed"
    );
    assert_eq!(
        (to.seqid, to.exception_type, to.transport),
        (7, types::PROTOCOL_ERROR, Transport::Framed)
    );
    assert!(reply_for(&small(), &big).is_some());
}

#[test]
fn unknown_versions_and_types_close_the_connection() {
    // Framed, strict version word with version 2.
    let mut v = vector("call", "framed", "binary");
    v[5] = 0x02;
    let e = try_decode(&auto_codec(), &v).unwrap_err();
    assert!(e.message.contains("version"), "{e}");
    assert!(!e.frame_consumed);
    // Message type 9.
    let mut v = vector("call", "framed", "binary");
    v[7] = 9;
    assert!(
        try_decode(&auto_codec(), &v)
            .unwrap_err()
            .message
            .contains("message type")
    );
    // Compact version 3.
    let mut v = vector("call", "buffered", "compact");
    v[1] = 0x23;
    assert!(
        try_decode(
            &ThriftCodec::new(1 << 20, Some(Transport::Unframed), None),
            &v
        )
        .is_err()
    );
    // Not thrift at all.
    assert!(try_decode(&auto_codec(), b"GET / HTTP/1.1\r\n\r\n").is_err());
}

#[test]
fn truncated_unframed_structs_wait_and_bad_ones_fail_with_a_reply() {
    let v = vector("echo", "buffered", "binary");
    for cut in 1..v.len() {
        assert!(
            try_decode(&auto_codec(), &v[..cut]).unwrap().is_none(),
            "cut at {cut}"
        );
    }
    // A field of unknown type 0x55 inside the args: out of sync, reply then close.
    let mut bad = vector("call", "buffered", "binary");
    let at = bad.len() - 11; // the args struct's first field type
    bad[at] = 0x55;
    let e = try_decode(&auto_codec(), &bad).unwrap_err();
    assert_eq!(e.kind, CodecErrorKind::Malformed);
    assert!(reply_for(&auto_codec(), &bad).is_some());
    // A string longer than the limit: refused without waiting for it.
    let mut huge = vector("call", "buffered", "binary");
    let at = huge.len() - 8; // the string length of field 1
    huge[at..at + 4].copy_from_slice(&100_000i32.to_be_bytes());
    let e = try_decode(&small(), &huge).unwrap_err();
    assert_eq!(e.kind, CodecErrorKind::FrameTooLarge);
}

#[test]
fn deep_nesting_is_refused() {
    // CALL header, then 100 nested struct fields.
    let mut v = vec![0x80, 0x01, 0x00, 0x01, 0, 0, 0, 1, b'x', 0, 0, 0, 1];
    for _ in 0..100 {
        v.extend_from_slice(&[12, 0, 1]);
    }
    v.extend(std::iter::repeat_n(0u8, 101));
    let e = try_decode(&auto_codec(), &v).unwrap_err();
    assert!(e.message.contains("nesting"), "{e}");
}

#[test]
fn theader_corruption_is_skipped_with_an_addressed_reply() {
    let good = vector("call-headers", "header", "binary");
    // Header block size claims more words than the frame holds.
    let mut v = good.clone();
    v[12..14].copy_from_slice(&0x4000u16.to_be_bytes());
    let e = try_decode(&auto_codec(), &v).unwrap_err();
    assert!(
        e.frame_consumed,
        "the frame length is known: the connection goes on"
    );
    assert!(reply_for(&auto_codec(), &v).is_some());
    // An info header whose key length overruns the block.
    let mut v = good.clone();
    v[18] = 0x7f;
    let e = try_decode(&auto_codec(), &v).unwrap_err();
    assert!(e.frame_consumed && e.message.contains("THeader"), "{e}");
    // A transform (zlib): INVALID_TRANSFORM.
    let mut v = good.clone();
    v[15] = 1;
    v[16] = 1;
    let e = try_decode(&auto_codec(), &v).unwrap_err();
    assert_eq!(e.kind, CodecErrorKind::Unsupported);
    assert_eq!(
        ReplyTo::of(&e).unwrap().exception_type,
        types::INVALID_TRANSFORM
    );
    // Protocol id 1 (JSON): INVALID_PROTOCOL.
    let mut v = good.clone();
    v[14] = 1;
    let e = try_decode(&auto_codec(), &v).unwrap_err();
    assert_eq!(
        ReplyTo::of(&e).unwrap().exception_type,
        types::INVALID_PROTOCOL
    );
    // And the next frame on the same connection still decodes.
    let mut buf = BytesMut::from(&[v, good].concat()[..]);
    let mut dec = auto_codec().decoder();
    assert!(dec.decode(&mut buf).is_err());
    assert!(dec.decode(&mut buf).unwrap().is_some());
}

#[test]
fn a_theader_block_larger_than_its_frame_is_refused_from_the_first_bytes() {
    let good = vector("call-headers", "header", "binary");
    let mut v = good.clone();
    v[12..14].copy_from_slice(&0x4000u16.to_be_bytes());
    // Only the fixed fields have arrived: refused now, not buffered.
    let mut dec = auto_codec().decoder();
    let mut buf = BytesMut::from(&v[..14]);
    let e = dec.decode(&mut buf).unwrap_err();
    assert_eq!(e.kind, CodecErrorKind::Malformed);
    assert!(e.message.contains("exceeds"), "{e}");
    assert!(buf.is_empty(), "nothing of the frame is kept");
    let to = ReplyTo::of(&e).unwrap();
    assert_eq!(to.seqid, i32::from_be_bytes([v[8], v[9], v[10], v[11]]));
    assert_eq!(to.exception_type, types::PROTOCOL_ERROR);
    assert!(reply_for(&auto_codec(), &v[..14]).is_some());
    // The rest of the frame is dropped as it arrives, in any pieces; the
    // next frame decodes.
    let rest = [&v[14..], &good[..]].concat();
    let (a, b) = rest.split_at(3);
    buf.extend_from_slice(a);
    assert!(dec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(b);
    let next = dec.decode(&mut buf).unwrap().expect("the next frame");
    assert_eq!(next.body.len(), good.len());
    assert!(buf.is_empty());
    // The same first bytes of a good frame only ask for more.
    assert!(try_decode(&auto_codec(), &good[..14]).unwrap().is_none());
    assert!(
        try_decode(&auto_codec(), &good[..good.len() - 1])
            .unwrap()
            .is_none()
    );
}

#[test]
fn decode_error_reply_needs_the_decoders_address() {
    let e = metaproxy_core::CodecError::fatal(CodecErrorKind::Malformed, "x");
    assert!(!auto_codec().decode_error_reply(&e, &mut BytesMut::new()));
    // An id alone, even one with bit 63 set (the old packing), addresses nothing.
    let e = e.with_request_id(5 | (1 << 63));
    assert!(!auto_codec().decode_error_reply(&e, &mut BytesMut::new()));
    let e = e.with_reply_context(metaproxy_core::ReplyContext::new(5u64));
    assert!(!auto_codec().decode_error_reply(&e, &mut BytesMut::new()));
}
