//! Feeds arbitrary frames to the declarative codec under a frame layout
//! the fuzzer also chooses (the first bytes of the input describe it, as
//! an `options:` section), split at a fuzzer-chosen point, and re-encodes
//! whatever decodes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use metaproxy_codecs::declarative::DeclarativeCodecFactory;
use metaproxy_core::{
    Codec, CodecOptions, Decoder, ErrorKind, Origin, Mutation, ProtocolCodecFactory,
    ProxyError,
};
use serde_json::{Value, json};

/// Bytes of the input that describe the layout.
const LAYOUT: usize = 20;

fn width(b: u8) -> u8 {
    [1, 2, 4, 8][usize::from(b % 4)]
}

/// The `options:` section described by `l`.
fn options(l: &[u8; LAYOUT]) -> Value {
    let flags = l[1];
    let header_length = usize::from(l[2] % 64) + 1;
    let mut o = json!({
        "byte_order": if flags & 1 != 0 { "little" } else { "big" },
        "header_length": header_length,
        "length": { "offset": l[3] % 64, "width": width(l[4]), "includes_header": flags & 2 != 0 },
        "request_id": { "offset": l[5] % 64, "width": width(l[6]) },
        "max_frame_bytes": header_length + usize::from(l[18]) * 16,
    });
    if flags & 4 != 0 {
        let magic: String = l[9..9 + usize::from(l[8] % 4) + 1]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        o["magic"] = json!({ "hex": magic, "offset": l[7] % 64 });
    }
    if flags & 8 != 0 {
        o["message_type"] = json!({ "offset": l[13] % 64, "width": width(l[14]),
            "request": 0, "response": 1, "oneway": 2, "heartbeat": 3,
            "heartbeat_response": 4, "error": 5 });
    }
    let mut fields = Vec::new();
    if flags & 16 != 0 {
        fields.push(json!({ "name": "tenant", "offset": l[15], "width": width(l[17]) }));
    }
    if flags & 32 != 0 {
        fields.push(
            json!({ "name": "service", "offset": l[16], "width": width(l[17] >> 2),
            "type": "string" }),
        );
    }
    o["fields"] = Value::Array(fields);
    o
}

fuzz_target!(|data: &[u8]| {
    let Some((layout, data)) = data.split_first_chunk::<LAYOUT>() else {
        return;
    };
    let split = usize::from(layout[0]).min(data.len());
    let o = CodecOptions {
        max_frame_bytes: 64 * 1024,
        extra: options(layout),
    };
    let factory = DeclarativeCodecFactory::new();
    let (Ok(listener), Ok(cluster)) = (factory.listener_codec(&o), factory.cluster_codec(&o))
    else {
        return;
    };
    let mut mutation = Mutation::new();
    mutation.set("k", "v");
    let error = ProxyError::new(ErrorKind::Timeout, Origin::Upstream, "fuzz");
    for codec in [&listener, &cluster] {
        let _ = codec.health_check_frame(None);
        let mut decoder = codec.decoder();
        let mut buf = BytesMut::from(&data[..split]);
        let mut fed_rest = false;
        for _ in 0..16 {
            match decoder.decode(&mut buf) {
                Ok(Some(msg)) => {
                    let mut out = BytesMut::new();
                    let _ = codec.encode_request(&msg, 7, &Mutation::new(), &mut out);
                    let _ = codec.encode_request(&msg, u64::MAX, &Mutation::new(), &mut out);
                    let _ = codec.encode_request(&msg, 8, &mutation, &mut out);
                    let _ = codec.encode_response(&msg, &msg, &Mutation::new(), &mut out);
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
    }
});
