//! Unit tests of the Thrift codec. Byte-level expectations come from
//! `codecs/tests/vectors/thrift_vectors.json`, written by Apache Thrift's
//! Python library (`codecs/tests/vectors/gen_thrift_vectors.py`).

mod bad_input;
mod decode;
mod encode;
mod random;

use bytes::BytesMut;
use metaproxy_core::{Codec, CodecError, Decoder, Message};
use serde_json::Value;

use super::wire::{Protocol, Transport};
use super::{ThriftCodec, ThriftState};

/// The vectors file, parsed.
pub fn vectors() -> Vec<Value> {
    let v: Value = serde_json::from_str(include_str!("../../../tests/vectors/thrift_vectors.json"))
        .expect("vectors file is valid JSON");
    v["vectors"].as_array().expect("vectors array").clone()
}

/// The vector for `case` in `transport` × `protocol` (as named in the file).
pub fn vector(case: &str, transport: &str, protocol: &str) -> Vec<u8> {
    let v = vectors()
        .into_iter()
        .find(|v| v["case"] == case && v["transport"] == transport && v["protocol"] == protocol)
        .unwrap_or_else(|| panic!("no vector {case} {transport} {protocol}"));
    unhex(v["hex"].as_str().expect("hex"))
}

/// Decodes a hex string.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("valid hex"))
        .collect()
}

/// Every transport × protocol name pair the vectors cover.
pub const FORMATS: [(&str, &str); 6] = [
    ("framed", "binary"),
    ("framed", "compact"),
    ("buffered", "binary"),
    ("buffered", "compact"),
    ("header", "binary"),
    ("header", "compact"),
];

/// The codec's view of a vector format name pair.
pub fn format(transport: &str, protocol: &str) -> (Transport, Protocol) {
    let t = match transport {
        "framed" => Transport::Framed,
        "buffered" => Transport::Unframed,
        _ => Transport::Header,
    };
    let p = match protocol {
        "compact" => Protocol::Compact,
        "binary-nonstrict" => Protocol::Binary { strict: false },
        _ => Protocol::BINARY,
    };
    (t, p)
}

/// A listener-style codec: sniffs everything, 1 MiB limit.
pub fn auto_codec() -> ThriftCodec {
    ThriftCodec::new(1 << 20, None, None)
}

/// Decodes one message from `bytes` with a fresh auto decoder; all bytes must be used.
pub fn decode_one(bytes: &[u8]) -> Message<ThriftState> {
    let mut buf = BytesMut::from(bytes);
    let msg = auto_codec()
        .decoder()
        .decode(&mut buf)
        .expect("decodes")
        .expect("complete");
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    msg
}

/// Decodes with a fresh decoder of `codec`.
pub fn try_decode(
    codec: &ThriftCodec,
    bytes: &[u8],
) -> Result<Option<Message<ThriftState>>, CodecError> {
    let mut buf = BytesMut::from(bytes);
    codec.decoder().decode(&mut buf)
}
