use bytes::{BufMut, BytesMut};
use metaproxy_core::{
    Codec, CodecErrorKind, CodecOptions, Decoder, ErrorKind, MessageKind, Mutation, Origin,
    ProtocolCodecFactory, ProxyError,
};
use serde_json::json;

use super::{DeclarativeCodec, DeclarativeCodecFactory, FrameSpec};

/// magic "cafe" | type u8 | tenant u8 | id u64 | len u32 (body only) | body: u16 service len, service, payload
fn options() -> serde_json::Value {
    json!({
        "header_length": 16,
        "magic": { "hex": "cafe", "offset": 0 },
        "message_type": { "offset": 2, "request": 0, "response": 1, "oneway": 2,
                          "heartbeat": 3, "heartbeat_response": 4, "error": 5 },
        "request_id": { "offset": 4, "width": 8 },
        "length": { "offset": 12, "width": 4 },
        "fields": [
            { "name": "tenant", "offset": 3, "width": 1 },
            { "name": "service", "offset": 16, "width": 2, "type": "string" }
        ]
    })
}

fn codec(side_listener: bool) -> DeclarativeCodec {
    let o = CodecOptions {
        max_frame_bytes: 1024,
        extra: options(),
    };
    let f = DeclarativeCodecFactory::new();
    if side_listener {
        f.listener_codec(&o).unwrap()
    } else {
        f.cluster_codec(&o).unwrap()
    }
}

fn frame(kind: u8, tenant: u8, id: u64, service: &str, payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_slice(&[0xca, 0xfe, kind, tenant]);
    b.put_u64(id);
    b.put_u32((2 + service.len() + payload.len()) as u32);
    b.put_u16(service.len() as u16);
    b.put_slice(service.as_bytes());
    b.put_slice(payload);
    b
}

#[test]
fn decodes_fields_and_waits_for_whole_frames() {
    let c = codec(true);
    let mut d = c.decoder();
    let whole = frame(0, 7, 42, "orders", b"hello");
    for cut in 0..whole.len() {
        let mut part = BytesMut::from(&whole[..cut]);
        assert!(d.decode(&mut part).unwrap().is_none(), "cut {cut}");
        assert_eq!(part.len(), cut);
    }
    let mut buf = whole.clone();
    buf.put_slice(&frame(2, 1, 43, "x", b""));
    let m = d.decode(&mut buf).unwrap().unwrap();
    assert_eq!(m.kind, MessageKind::Request);
    assert_eq!(m.request_id, 42);
    assert_eq!(m.metadata.get("tenant"), Some("7"));
    assert_eq!(m.metadata.get("service"), Some("orders"));
    assert_eq!(m.metadata.get("protocol"), Some("declarative"));
    assert_eq!(m.metadata.get("request_id"), Some("42"));
    assert_eq!(&m.body[..], &whole[..]);
    let m = d.decode(&mut buf).unwrap().unwrap();
    assert_eq!(m.kind, MessageKind::Oneway);
    assert!(buf.is_empty());
}

#[test]
fn bad_magic_and_oversized_length_are_fatal() {
    let c = codec(true);
    let mut d = c.decoder();
    let e = d.decode(&mut BytesMut::from(&b"\xca\x00"[..])).unwrap_err();
    assert_eq!(e.kind, CodecErrorKind::Malformed);
    assert!(!e.frame_consumed);
    let mut big = frame(0, 0, 9, "s", b"");
    big[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
    let e = d.decode(&mut big).unwrap_err();
    assert_eq!(e.kind, CodecErrorKind::FrameTooLarge);
    assert_eq!(e.request_id, Some(9));
    let mut out = BytesMut::new();
    assert!(c.decode_error_reply(&e, &mut out));
    assert_eq!(&out[..3], &[0xca, 0xfe, 5]);
    assert_eq!(&out[4..12], &9u64.to_be_bytes());
}

#[test]
fn bad_fields_skip_only_the_frame() {
    let c = codec(true);
    let mut d = c.decoder();
    let mut buf = frame(0, 0, 5, "service", b"");
    buf[16..18].copy_from_slice(&500u16.to_be_bytes());
    buf.put_slice(&frame(9, 0, 6, "s", b""));
    buf.put_slice(&frame(0, 0, 7, "s", b""));
    let e = d.decode(&mut buf).unwrap_err();
    assert!(e.frame_consumed && e.request_id == Some(5), "{e:?}");
    let e = d.decode(&mut buf).unwrap_err();
    assert!(e.frame_consumed && e.message.contains("unknown message type 9"));
    assert_eq!(d.decode(&mut buf).unwrap().unwrap().request_id, 7);
}

#[test]
fn encode_patches_ids_and_refuses_mutations() {
    let down = codec(true);
    let up = codec(false);
    let req = down
        .decoder()
        .decode(&mut frame(0, 1, 42, "s", b"abc"))
        .unwrap()
        .unwrap();
    let mut out = BytesMut::new();
    down.encode_request(&req, 7, &Mutation::new(), &mut out)
        .unwrap();
    assert_eq!(&out[4..12], &7u64.to_be_bytes());
    assert_eq!(&out[12..], &req.body[12..]);
    let resp = up
        .decoder()
        .decode(&mut frame(1, 1, 7, "s", b"ok"))
        .unwrap()
        .unwrap();
    assert_eq!(resp.kind, MessageKind::Response);
    let mut back = BytesMut::new();
    down.encode_response(&resp, &req, &Mutation::new(), &mut back)
        .unwrap();
    assert_eq!(&back[4..12], &42u64.to_be_bytes());
    let mut m = Mutation::new();
    m.set("x", "y");
    let e = down
        .encode_request(&req, 7, &m, &mut BytesMut::new())
        .unwrap_err();
    assert_eq!(e.kind, CodecErrorKind::Encode);
    assert!(e.message.contains("no header block"));
}

#[test]
fn local_reply_is_an_error_frame_with_the_request_id() {
    let c = codec(true);
    let req = c
        .decoder()
        .decode(&mut frame(0, 3, 77, "s", b""))
        .unwrap()
        .unwrap();
    let mut out = BytesMut::new();
    let err = ProxyError::new(ErrorKind::RouteNotFound, Origin::Internal, "nope");
    c.local_reply(&req, &err, &mut out);
    let reply = c.decoder().decode(&mut out.clone());
    // The listener side cannot read an error frame as a request: decode it as the cluster would.
    drop(reply);
    let m = codec(false).decoder().decode(&mut out).unwrap().unwrap();
    assert_eq!(m.kind, MessageKind::Error);
    assert_eq!(m.request_id, 77);
    assert!(
        String::from_utf8_lossy(&m.body[16..]).contains("route not found: nope"),
        "{:?}",
        m.body
    );
}

#[test]
fn heartbeats_and_little_endian() {
    let c = codec(true);
    let mut hb = frame(3, 0, 5, "", b"");
    let m = c.decoder().decode(&mut hb).unwrap().unwrap();
    assert_eq!(m.kind, MessageKind::Heartbeat);
    let mut out = BytesMut::new();
    c.heartbeat_reply(&m, &mut out);
    assert_eq!(out[2], 4);
    assert!(c.health_check_frame(None).is_some());

    let spec = FrameSpec::parse(&json!({
        "byte_order": "little", "header_length": 8,
        "request_id": { "offset": 0, "width": 4 },
        "length": { "offset": 4, "width": 2, "includes_header": true }
    }))
    .unwrap();
    let mut buf = [0u8; 8];
    assert!(spec.write(&mut buf, spec.request_id, 0x0102_0304));
    assert_eq!(buf[..4], [4, 3, 2, 1]);
    assert_eq!(spec.read(&buf, spec.request_id), Some(0x0102_0304));
    assert!(!spec.write(&mut buf, spec.length, 70_000));
}

#[test]
fn bad_options_are_explained() {
    let cases = [
        (serde_json::Value::Null, "needs an `options:` section"),
        (json!({ "header_length": 16 }), "missing field `length`"),
        (
            json!({ "header_length": 8, "request_id": { "offset": 0, "width": 3 },
                     "length": { "offset": 4, "width": 4 } }),
            "width must be 1, 2, 4 or 8",
        ),
        (
            json!({ "header_length": 8, "request_id": { "offset": 6, "width": 4 },
                     "length": { "offset": 0, "width": 4 } }),
            "does not fit in the 8-byte header",
        ),
        (
            json!({ "header_length": 8, "request_id": { "offset": 0, "width": 4 },
                     "length": { "offset": 4, "width": 4 }, "magic": { "hex": "zz" } }),
            "not hexadecimal",
        ),
        (
            json!({ "header_length": 8, "request_id": { "offset": 0, "width": 4 },
                     "length": { "offset": 4, "width": 4 }, "colour": 1 }),
            "unknown field `colour`",
        ),
        (
            json!({ "header_length": 8, "request_id": { "offset": 0, "width": 4 },
                     "length": { "offset": 4, "width": 4 },
                     "message_type": { "offset": 0, "request": 1, "response": 1 } }),
            "same value 1",
        ),
        (
            json!({ "header_length": 8, "request_id": { "offset": 0, "width": 4 },
                     "length": { "offset": 4, "width": 4 },
                     "fields": [ { "name": "request_id", "offset": 0, "width": 1 } ] }),
            "filled by the codec itself",
        ),
    ];
    for (value, expected) in cases {
        let e = FrameSpec::parse(&value).unwrap_err().to_string();
        assert!(e.contains(expected), "{value}: {e}");
    }
}

#[test]
fn never_panics_on_arbitrary_bytes() {
    let c = codec(true);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        let mut d = c.decoder();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed % 64) as usize;
        let mut buf = BytesMut::new();
        buf.put_slice(&[0xca, 0xfe]);
        for i in 0..n {
            buf.put_u8((seed >> (i % 56)) as u8);
        }
        while let Ok(Some(_)) = d.decode(&mut buf) {}
    }
}
