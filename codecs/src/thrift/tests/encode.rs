//! Encoding checked against the Python library's bytes: passthrough, seqid
//! rewrite, answers in the client's format (every pair), translation, local
//! replies, THeader mutation.

use bytes::BytesMut;
use metaproxy_core::{Codec, CodecErrorKind, ErrorKind, Mutation, Origin, ProxyError};

use super::super::ThriftCodec;
use super::super::wire::{Protocol, Transport};
use super::{FORMATS, auto_codec, decode_one, format, vector};

fn cluster(transport: Option<Transport>, protocol: Option<Protocol>) -> ThriftCodec {
    ThriftCodec::new(1 << 20, transport, protocol)
}

#[test]
fn passthrough_keeps_the_bytes_and_patches_the_seqid() {
    for (t, p) in FORMATS {
        let original = vector("call", t, p);
        let req = decode_one(&original);
        let mut out = BytesMut::new();
        auto_codec()
            .encode_request(&req, 7, &Mutation::new(), &mut out)
            .unwrap();
        let mut expected = original.clone();
        if t == "header" {
            // The THeader frame's sequence number follows the message's (Python sends 0).
            expected[8..12].copy_from_slice(&7i32.to_be_bytes());
        }
        assert_eq!(&out[..], &expected[..], "{t} {p}");
        // A new id: the message decodes with it, the struct is unchanged.
        for id in [1u64, 300, i32::MAX as u64] {
            let mut out = BytesMut::new();
            auto_codec()
                .encode_request(&req, id, &Mutation::new(), &mut out)
                .unwrap();
            let again = decode_one(&out);
            assert_eq!(again.request_id, id, "{t} {p}");
            assert_eq!(again.state.transport(), req.state.transport());
            assert_eq!(
                &again.body[again.state.body_range()],
                &req.body[req.state.body_range()],
                "{t} {p}"
            );
        }
    }
}

#[test]
fn answers_are_written_in_the_clients_format_for_every_pair() {
    for (ct, cp) in FORMATS {
        let request = decode_one(&vector("call", ct, cp));
        for (st, sp) in FORMATS {
            let reply = decode_one(&vector("reply", st, sp));
            let mut out = BytesMut::new();
            auto_codec()
                .encode_response(&reply, &request, &Mutation::new(), &mut out)
                .unwrap();
            assert_eq!(
                &out[..],
                &vector("reply", ct, cp)[..],
                "server {st}/{sp} → client {ct}/{cp}"
            );
        }
    }
}

#[test]
fn requests_translate_to_the_clusters_format_like_python_writes_it() {
    for (ct, cp) in FORMATS {
        for case in ["call", "echo"] {
            let request = decode_one(&vector(case, ct, cp));
            for (st, sp) in FORMATS {
                let (t, p) = format(st, sp);
                let mut out = BytesMut::new();
                cluster(Some(t), Some(p))
                    .encode_request(&request, 7, &Mutation::new(), &mut out)
                    .unwrap();
                let mut expected = vector(case, st, sp);
                if st == "header" {
                    expected[8..12].copy_from_slice(&7i32.to_be_bytes());
                }
                assert_eq!(
                    &out[..],
                    &expected[..],
                    "{case}: client {ct}/{cp} → cluster {st}/{sp}"
                );
            }
        }
    }
}

fn error(kind: ErrorKind, message: &str) -> ProxyError {
    ProxyError::new(kind, Origin::Internal, message)
}

#[test]
fn local_replies_match_python_application_exceptions() {
    for (t, p) in FORMATS {
        let request = decode_one(&vector("call", t, p));
        let mut out = BytesMut::new();
        auto_codec().local_reply(
            &request,
            &error(ErrorKind::RouteNotFound, "no route"),
            &mut out,
        );
        assert_eq!(&out[..], &vector("exception", t, p)[..], "{t} {p}");
    }
}

#[test]
fn local_reply_types_follow_the_error_kind() {
    use super::super::exception::{type_for, types};
    assert_eq!(type_for(ErrorKind::RouteNotFound), types::UNKNOWN_METHOD);
    assert_eq!(type_for(ErrorKind::ClusterNotFound), types::UNKNOWN_METHOD);
    assert_eq!(type_for(ErrorKind::BadRequest), types::PROTOCOL_ERROR);
    for k in [
        ErrorKind::NoHealthyUpstream,
        ErrorKind::ConnectFailure,
        ErrorKind::OverLimit,
        ErrorKind::Timeout,
        ErrorKind::UpstreamReset,
        ErrorKind::PermissionDenied,
        ErrorKind::Internal,
    ] {
        assert_eq!(type_for(k), types::INTERNAL_ERROR, "{k}");
    }
    // The reply is an EXCEPTION message with the request's seqid, in a non-strict client's dialect too.
    let request = decode_one(&vector("call", "buffered", "binary-nonstrict"));
    let mut out = BytesMut::new();
    auto_codec().local_reply(&request, &error(ErrorKind::Timeout, "slow"), &mut out);
    let reply = decode_one(&out);
    assert_eq!(reply.state.protocol(), Protocol::Binary { strict: false });
    assert_eq!(reply.state.seqid(), 7);
    assert_eq!(reply.kind, metaproxy_core::MessageKind::Error);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("metaproxy: upstream timeout: slow"), "{text}");
}

fn headers_of(msg: &metaproxy_core::Message<super::super::ThriftState>) -> Vec<(String, String)> {
    msg.state
        .theader()
        .map(|t| {
            t.headers
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into(),
                        String::from_utf8_lossy(v).into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn local_replies_carry_reply_metadata_as_theader_info_headers() {
    let limited = error(ErrorKind::OverLimit, "slow down")
        .with_reply_status(429)
        .with_reply_metadata("retry-after", "2")
        .with_reply_metadata("x-limit", "10");
    for (t, p) in FORMATS {
        let request = decode_one(&vector("call", t, p));
        let mut out = BytesMut::new();
        auto_codec().local_reply(&request, &limited, &mut out);
        let reply = decode_one(&out);
        assert_eq!(reply.kind, metaproxy_core::MessageKind::Error, "{t} {p}");
        let expected: Vec<(String, String)> = if t == "header" {
            vec![
                ("retry-after".into(), "2".into()),
                ("x-limit".into(), "10".into()),
            ]
        } else {
            Vec::new()
        };
        assert_eq!(headers_of(&reply), expected, "{t} {p}");
    }
    // Metadata too large for a header block is dropped; the exception still goes out.
    let huge = error(ErrorKind::OverLimit, "x").with_reply_metadata("k", "v".repeat(300_000));
    let request = decode_one(&vector("call", "header", "binary"));
    let mut out = BytesMut::new();
    auto_codec().local_reply(&request, &huge, &mut out);
    let reply = decode_one(&out);
    assert_eq!(reply.kind, metaproxy_core::MessageKind::Error);
    assert!(headers_of(&reply).is_empty());
}

#[test]
fn mutations_set_and_remove_theader_headers() {
    for p in ["binary", "compact"] {
        let request = decode_one(&vector("call-headers", "header", p));
        let mut m = Mutation::new();
        m.set("user", "bob");
        m.set("x-forwarded-by", "metaproxy");
        m.remove("x-Trace");
        let mut out = BytesMut::new();
        auto_codec()
            .encode_request(&request, 9, &m, &mut out)
            .unwrap();
        let sent = decode_one(&out);
        assert_eq!(
            headers_of(&sent),
            vec![
                ("user".into(), "bob".into()),
                ("x-forwarded-by".into(), "metaproxy".into())
            ],
            "{p}"
        );
        assert_eq!(sent.request_id, 9);
        assert_eq!(sent.metadata.get("user"), Some("bob"));
        // A framed client's request sent to a THeader cluster can carry the mutation.
        let framed = decode_one(&vector("call", "framed", p));
        let mut out = BytesMut::new();
        cluster(Some(Transport::Header), None)
            .encode_request(&framed, 3, &m, &mut out)
            .unwrap();
        let sent = decode_one(&out);
        assert_eq!(sent.state.transport(), Transport::Header);
        assert_eq!(sent.metadata.get("x-forwarded-by"), Some("metaproxy"));
    }
}

#[test]
fn mutations_on_headerless_transports_are_encode_errors() {
    let mut m = Mutation::new();
    m.set("x-forwarded-by", "metaproxy");
    for t in ["framed", "buffered"] {
        let request = decode_one(&vector("call", t, "binary"));
        let mut out = BytesMut::new();
        let e = auto_codec()
            .encode_request(&request, 1, &m, &mut out)
            .unwrap_err();
        assert_eq!(e.kind, CodecErrorKind::Encode);
        assert!(
            e.message.contains("cannot carry headers") && e.message.contains("x-forwarded-by"),
            "{e}"
        );
    }
    // The response side: a framed client cannot receive response headers either.
    let request = decode_one(&vector("call", "framed", "binary"));
    let reply = decode_one(&vector("reply", "header", "binary"));
    let mut out = BytesMut::new();
    assert!(
        auto_codec()
            .encode_response(&reply, &request, &m, &mut out)
            .is_err()
    );
}

#[test]
fn theader_answers_keep_the_servers_headers_for_theader_clients() {
    let request = decode_one(&vector("call-headers", "header", "compact"));
    // A THeader reply with headers (reuse the request's header block on a reply-typed message).
    let call = decode_one(&vector("call-headers", "header", "binary"));
    let mut out = BytesMut::new();
    auto_codec()
        .encode_response(&call, &request, &Mutation::new(), &mut out)
        .unwrap();
    let back = decode_one(&out);
    assert_eq!(back.state.protocol(), Protocol::Compact);
    assert_eq!(headers_of(&back), headers_of(&call));
}
