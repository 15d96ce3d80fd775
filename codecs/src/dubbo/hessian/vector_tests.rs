//! The reader and writer against bytes produced by hessian.js, a
//! third-party Hessian 2.0 implementation (see `tests/vectors/`).

use bytes::{Bytes, BytesMut};

use super::reader::{Reader, Scalar};
use super::text::span_text;
use super::writer;
use crate::dubbo::test_vectors::{text, unhex, vectors};

fn fnv1a64(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[test]
fn generated_by_hessian_js() {
    let v = vectors();
    assert!(text(&v, "generator").starts_with("hessian.js 2.11."));
}

#[test]
fn reader_skips_every_value_exactly() {
    let v = vectors();
    let values = v["values"].as_array().unwrap();
    assert!(values.len() > 70);
    for value in values {
        let name = text(value, "name");
        let bytes = unhex(text(value, "hex"));
        let mut r = Reader::new(&bytes, 0);
        r.skip_value().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.pos(), bytes.len(), "{name}");
        // Followed by more bytes, the reader still stops at the value's end.
        let mut twice = bytes.clone();
        twice.extend_from_slice(&bytes);
        let mut r = Reader::new(&twice, 0);
        r.skip_value().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.pos(), bytes.len(), "{name} (followed)");
        // Every strict prefix is an error, never a panic or a wrong end.
        let step = (bytes.len() / 100).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            let mut r = Reader::new(&bytes[..cut], 0);
            assert!(r.skip_value().is_err(), "{name} cut at {cut}");
        }
    }
}

#[test]
fn reader_reads_scalars_and_strings() {
    let v = vectors();
    for value in v["values"].as_array().unwrap() {
        let name = text(value, "name");
        let bytes = Bytes::from(unhex(text(value, "hex")));
        if let Some(want) = value["int"].as_str() {
            let mut r = Reader::new(&bytes, 0);
            let got = match r.read_scalar().unwrap() {
                Scalar::Int(i) => i.to_string(),
                Scalar::Bool(b) => b.to_string(),
                other => panic!("{name}: {other:?}"),
            };
            assert_eq!(got, want, "{name}");
        }
        if let Some(want) = value["text"].as_str() {
            let mut r = Reader::new(&bytes, 0);
            let span = r.read_string().unwrap();
            assert_eq!(span.end, bytes.len(), "{name}");
            assert_eq!(&*span_text(&bytes, &span).unwrap(), want, "{name}");
        }
    }
}

#[test]
fn writer_matches_hessian_js_strings() {
    let v = vectors();
    for s in v["strings"].as_array().unwrap() {
        let want = unhex(text(s, "hex"));
        let mut dst = BytesMut::new();
        writer::write_string(&mut dst, text(s, "text"));
        assert_eq!(&dst[..], &want[..], "{:?}", text(s, "text"));
        assert_eq!(writer::string_len(text(s, "text")), want.len());
    }
}

#[test]
fn writer_matches_hessian_js_long_strings() {
    let v = vectors();
    for s in v["long_strings"].as_array().unwrap() {
        let pattern = text(s, "pattern");
        let repeat = s["repeat"].as_u64().unwrap() as usize;
        let string = if repeat == 1 {
            format!("a{}", "😀".repeat(0x4000))
        } else {
            pattern.repeat(repeat)
        };
        assert_eq!(
            string.encode_utf16().count() as u64,
            s["units"].as_u64().unwrap()
        );
        let mut dst = BytesMut::new();
        writer::write_string(&mut dst, &string);
        assert_eq!(
            dst.len() as u64,
            s["len"].as_u64().unwrap(),
            "{pattern} x{repeat}"
        );
        assert_eq!(fnv1a64(&dst), text(s, "fnv1a64"), "{pattern} x{repeat}");
        // And the reader reads hessian.js's (identical) bytes back.
        let bytes = dst.freeze();
        let mut r = Reader::new(&bytes, 0);
        let span = r.read_string().unwrap();
        assert_eq!(span.end, bytes.len());
        assert_eq!(&*span_text(&bytes, &span).unwrap(), string);
    }
}
