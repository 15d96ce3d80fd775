//! Random and mutated input never panics, in any decoder configuration,
//! and whatever decodes can be re-encoded in every format.

use bytes::BytesMut;
use metaproxy_core::{Codec, Decoder, ErrorKind, Mutation, Origin, ProxyError};

use super::super::ThriftCodec;
use super::super::wire::{Protocol, Transport};
use super::vectors;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn codecs() -> Vec<ThriftCodec> {
    let mut out = vec![
        ThriftCodec::new(4096, None, None),
        ThriftCodec::new(4096, None, None).upstream(),
    ];
    for t in [Transport::Framed, Transport::Unframed, Transport::Header] {
        for p in [Protocol::BINARY, Protocol::Compact] {
            out.push(ThriftCodec::new(4096, Some(t), Some(p)));
        }
    }
    out
}

fn exercise(codecs: &[ThriftCodec], bytes: &[u8]) {
    let mut m = Mutation::new();
    m.set("k", "v");
    let err = ProxyError::new(ErrorKind::Timeout, Origin::Upstream, "t");
    for codec in codecs {
        let mut dec = codec.decoder();
        let mut buf = BytesMut::from(bytes);
        for _ in 0..8 {
            match dec.decode(&mut buf) {
                Ok(Some(msg)) => {
                    let mut out = BytesMut::new();
                    for c in codecs {
                        let _ = c.encode_request(&msg, 5, &Mutation::new(), &mut out);
                        let _ = c.encode_request(&msg, 6, &m, &mut out);
                        let _ = c.encode_response(&msg, &msg, &Mutation::new(), &mut out);
                    }
                    codec.local_reply(&msg, &err, &mut out);
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
}

#[test]
fn random_and_mutated_input_never_panics() {
    let codecs = codecs();
    let seeds: Vec<Vec<u8>> = vectors()
        .iter()
        .map(|v| super::unhex(v["hex"].as_str().unwrap()))
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let len = rng.below(64);
        let random: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        exercise(&codecs, &random);
        let mut v = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(v.len());
            v[at] = rng.next() as u8;
        }
        if rng.below(4) == 0 {
            v.truncate(rng.below(v.len()));
        }
        exercise(&codecs, &v);
    }
}
