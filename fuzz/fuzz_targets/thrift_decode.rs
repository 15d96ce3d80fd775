//! Feeds arbitrary bytes to the Thrift decoder in every configuration
//! (sniffing and each fixed transport × protocol: strict and non-strict
//! binary, compact; framed, unframed and THeader), split at a fuzzer-chosen
//! point, and re-encodes whatever decodes in every format.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use metaproxy_codecs::thrift::{Protocol, ThriftCodec, Transport};
use metaproxy_core::{Codec, Decoder, ErrorKind, Origin, Mutation, ProxyError};

fn codecs() -> Vec<ThriftCodec> {
    let mut out = vec![
        ThriftCodec::new(64 * 1024, None, None),
        ThriftCodec::new(64 * 1024, None, None).upstream(),
    ];
    for t in [Transport::Framed, Transport::Unframed, Transport::Header] {
        for p in [
            Protocol::BINARY,
            Protocol::Binary { strict: false },
            Protocol::Compact,
        ] {
            out.push(ThriftCodec::new(64 * 1024, Some(t), Some(p)));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(data.len());
    let codecs = codecs();
    let mut mutation = Mutation::new();
    mutation.set("k", "v");
    let error = ProxyError::new(ErrorKind::RouteNotFound, Origin::Internal, "fuzz");
    for codec in &codecs {
        let mut decoder = codec.decoder();
        let mut buf = BytesMut::from(&data[..split]);
        let mut fed_rest = false;
        for _ in 0..16 {
            match decoder.decode(&mut buf) {
                Ok(Some(msg)) => {
                    let mut out = BytesMut::new();
                    for other in &codecs {
                        let _ = other.encode_request(&msg, 7, &Mutation::new(), &mut out);
                        let _ = other.encode_request(&msg, 8, &mutation, &mut out);
                        let _ = other.encode_response(&msg, &msg, &Mutation::new(), &mut out);
                    }
                    codec.local_reply(&msg, &error, &mut out);
                }
                Ok(None) if !fed_rest => {
                    buf.extend_from_slice(&data[split..]);
                    fed_rest = true;
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = codec.decode_error_reply(&e, &mut BytesMut::new());
                    if !e.frame_consumed {
                        break;
                    }
                }
            }
        }
    }
});
