//! Feeds arbitrary bytes to the Dubbo decoder, split at a fuzzer-chosen
//! point, and re-encodes whatever decodes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use metaproxy_codecs::dubbo::{DubboCodec, DubboDecoder};
use metaproxy_core::{Codec, Decoder, ErrorKind, Origin, Mutation, ProxyError};

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(data.len());
    let codec = DubboCodec::new(64 * 1024);
    let mut decoder = DubboDecoder::new(64 * 1024);
    let mut mutation = Mutation::new();
    mutation.set("k", "v");
    let error = ProxyError::new(ErrorKind::Timeout, Origin::Upstream, "fuzz");
    let mut buf = BytesMut::from(&data[..split]);
    let mut fed_rest = false;
    for _ in 0..16 {
        match decoder.decode(&mut buf) {
            Ok(Some(msg)) => {
                let mut out = BytesMut::new();
                let _ = codec.encode_request(&msg, 7, &Mutation::new(), &mut out);
                let _ = codec.encode_request(&msg, 8, &mutation, &mut out);
                let _ = codec.encode_response(&msg, &msg, &Mutation::new(), &mut out);
                let _ = codec.encode_response(&msg, &msg, &mutation, &mut out);
                codec.local_reply(&msg, &error, &mut out);
                codec.heartbeat_reply(&msg, &mut out);
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
});
