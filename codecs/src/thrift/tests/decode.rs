//! Decoding the Python library's frames: kinds, metadata, formats, sniffing.

use bytes::BytesMut;
use metaproxy_core::{Codec, Decoder, MessageKind};

use super::super::sniff::{self, Sniff};
use super::super::wire::{MessageType, Protocol, Transport};
use super::{FORMATS, auto_codec, decode_one, format, vector, vectors};

#[test]
fn decodes_every_python_vector() {
    for v in vectors() {
        let bytes = super::unhex(v["hex"].as_str().unwrap());
        let msg = decode_one(&bytes);
        let (t, p) = format(
            v["transport"].as_str().unwrap(),
            v["protocol"].as_str().unwrap(),
        );
        let what = format!("{} {} {}", v["case"], v["transport"], v["protocol"]);
        assert_eq!(msg.state.transport(), t, "{what}");
        assert_eq!(msg.state.protocol(), p, "{what}");
        assert_eq!(msg.state.seqid(), 7, "{what}");
        assert_eq!(msg.request_id, 7, "{what}");
        assert_eq!(&msg.body[..], &bytes[..], "{what}: body is the whole frame");
        assert_eq!(msg.metadata.get("protocol"), Some("thrift"));
        assert_eq!(msg.metadata.get("request_id"), Some("7"));
        let kind = match v["case"].as_str().unwrap() {
            "reply" => MessageKind::Response,
            "exception" => MessageKind::Error,
            "oneway" => MessageKind::Oneway,
            _ => MessageKind::Request,
        };
        assert_eq!(msg.kind, kind, "{what}");
        let method = v["method"].as_str().unwrap();
        match method.split_once(':') {
            Some((service, m)) => {
                assert_eq!(msg.metadata.get("service"), Some(service));
                assert_eq!(msg.metadata.get("method"), Some(m));
            }
            None => assert_eq!(msg.metadata.get("method"), Some(method), "{what}"),
        }
        if let Some(headers) = v["headers"].as_object() {
            for (k, val) in headers {
                assert_eq!(
                    msg.metadata.get(k),
                    val.as_str(),
                    "{what}: header {k} (case kept)"
                );
            }
            assert_eq!(msg.state.theader().unwrap().headers.len(), headers.len());
        }
    }
}

#[test]
fn every_format_decodes_byte_by_byte_and_back_to_back() {
    for (t, p) in FORMATS {
        let one = vector("call", t, p);
        // Byte by byte: need-more until the last byte, nothing consumed meanwhile.
        let mut dec = auto_codec().decoder();
        let mut buf = BytesMut::new();
        for (i, b) in one.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let r = dec.decode(&mut buf).unwrap();
            if i + 1 < one.len() {
                assert!(
                    r.is_none(),
                    "{t} {p}: complete after {} of {} bytes",
                    i + 1,
                    one.len()
                );
                assert_eq!(buf.len(), i + 1);
            } else {
                assert_eq!(r.unwrap().state.message_type(), MessageType::Call);
            }
        }
        // Two messages in one read.
        let mut buf = BytesMut::from(&[one.clone(), one.clone()].concat()[..]);
        let mut dec = auto_codec().decoder();
        assert!(dec.decode(&mut buf).unwrap().is_some());
        assert!(dec.decode(&mut buf).unwrap().is_some());
        assert!(buf.is_empty() && dec.decode(&mut buf).unwrap().is_none());
    }
}

#[test]
fn unframed_nested_struct_boundary_is_found() {
    for p in ["binary", "compact"] {
        let echo = vector("echo", "buffered", p);
        let mut buf = BytesMut::from(&[echo.clone(), vector("call", "buffered", p)].concat()[..]);
        let mut dec = auto_codec().decoder();
        let first = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(first.body.len(), echo.len(), "{p}");
        assert_eq!(first.metadata.get("method"), Some("echo"));
        let second = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(second.metadata.get("method"), Some("hello"));
    }
}

#[test]
fn non_strict_binary_is_read_in_both_transports() {
    for t in ["framed", "buffered"] {
        let msg = decode_one(&vector("call", t, "binary-nonstrict"));
        assert_eq!(msg.state.protocol(), Protocol::Binary { strict: false });
        assert_eq!(msg.metadata.get("method"), Some("hello"));
    }
}

#[test]
fn sniffing_names_the_offsets_it_reads() {
    assert_eq!(
        sniff::transport(&vector("call", "framed", "binary")),
        Sniff::Found(Transport::Framed)
    );
    assert_eq!(
        sniff::transport(&vector("call", "framed", "compact")),
        Sniff::Found(Transport::Framed)
    );
    assert_eq!(
        sniff::transport(&vector("call", "buffered", "binary")),
        Sniff::Found(Transport::Unframed)
    );
    assert_eq!(
        sniff::transport(&vector("call", "buffered", "compact")),
        Sniff::Found(Transport::Unframed)
    );
    assert_eq!(
        sniff::transport(&vector("call", "header", "compact")),
        Sniff::Found(Transport::Header)
    );
    assert_eq!(
        sniff::transport(&vector("call", "framed", "binary-nonstrict")),
        Sniff::Found(Transport::Framed)
    );
    assert_eq!(
        sniff::transport(&vector("call", "buffered", "binary-nonstrict")),
        Sniff::Found(Transport::Unframed)
    );
    assert!(sniff::is_theader(&[0, 0, 0, 10, 0x0f, 0xff]));
    assert!(sniff::is_framed_binary(&[0, 0, 0, 10, 0x80, 0x01]));
    assert!(sniff::is_framed_compact(&[0, 0, 0, 10, 0x82, 0x21]));
    assert!(sniff::is_unframed_binary(&[0x80, 0x01]));
    assert!(sniff::is_unframed_compact(&[0x82, 0x21]));
    assert_eq!(sniff::transport(&[0, 0, 0]), Sniff::NeedMore);
    assert_eq!(sniff::transport(&[0x80]), Sniff::NeedMore);
    assert_eq!(sniff::transport(b"GET / HTTP/1.1\r\n"), Sniff::Unknown);
    assert_eq!(sniff::transport(&[0xda, 0xbb, 0xc2, 0]), Sniff::Unknown);
}

#[test]
fn a_connection_keeps_its_sniffed_transport() {
    let mut dec = auto_codec().decoder();
    let mut buf = BytesMut::from(&vector("call", "framed", "binary")[..]);
    dec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(dec.transport(), Some(Transport::Framed));
    // An unframed message on a framed connection is a framing error, not a new sniff.
    let mut buf = BytesMut::from(&vector("call", "buffered", "binary")[..]);
    assert!(dec.decode(&mut buf).is_err());
}

#[test]
fn configured_format_is_enforced() {
    let codec =
        super::super::ThriftCodec::new(1 << 20, Some(Transport::Framed), Some(Protocol::Compact));
    assert!(
        super::try_decode(&codec, &vector("call", "framed", "compact"))
            .unwrap()
            .is_some()
    );
    let e = super::try_decode(&codec, &vector("call", "framed", "binary")).unwrap_err();
    assert!(e.message.contains("compact is configured"), "{e}");
    assert!(super::try_decode(&codec, &vector("call", "header", "compact")).is_err());
}

#[test]
fn upstream_connections_sniff_every_answer() {
    // A pooled upstream connection carries requests (and answers) in each client's format.
    let codec = super::super::ThriftCodec::new(1 << 20, None, None).upstream();
    let mut dec = codec.decoder();
    let mut buf = BytesMut::new();
    for (t, p) in [
        ("framed", "binary"),
        ("header", "compact"),
        ("buffered", "binary"),
        ("framed", "compact"),
    ] {
        buf.extend_from_slice(&vector("reply", t, p));
        let (want_t, want_p) = format(t, p);
        let msg = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            (msg.state.transport(), msg.state.protocol()),
            (want_t, want_p)
        );
    }
    // A half-read unframed answer keeps its transport until complete.
    let reply = vector("reply", "buffered", "compact");
    buf.extend_from_slice(&reply[..reply.len() - 2]);
    assert!(dec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(&reply[reply.len() - 2..]);
    assert_eq!(
        dec.decode(&mut buf).unwrap().unwrap().state.transport(),
        Transport::Unframed
    );
}

#[test]
fn the_factory_builds_locking_listener_and_sniffing_cluster_codecs() {
    use metaproxy_core::{CodecOptions, ProtocolCodecFactory};
    let f = super::super::ThriftCodecFactory::new();
    let o = CodecOptions::default();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&vector("reply", "framed", "binary"));
    buf.extend_from_slice(&vector("reply", "header", "binary"));
    let mut upstream = f.cluster_codec(&o).unwrap().decoder();
    assert!(upstream.decode(&mut buf.clone()).is_ok());
    let mut b = buf.clone();
    upstream.decode(&mut b).unwrap().unwrap();
    assert!(upstream.decode(&mut b).unwrap().is_some());
    let mut listener = f.listener_codec(&o).unwrap().decoder();
    let mut b = buf;
    listener.decode(&mut b).unwrap().unwrap();
    assert!(listener.decode(&mut b).is_err());
    let bad = serde_json::json!({"transport": "tcp"});
    let e = f
        .cluster_codec(&CodecOptions {
            extra: bad,
            ..CodecOptions::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("tcp"), "{e}");
}
