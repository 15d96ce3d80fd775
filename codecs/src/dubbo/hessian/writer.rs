//! Writing the few Hessian 2.0 values the Dubbo codec emits.
//!
//! Strings are written as Java's `Hessian2Output` writes them: lengths in
//! UTF-16 code units, characters outside the BMP as two 3-byte surrogate
//! sequences (CESU-8), chunks of at most 0x8000 units that never split a
//! surrogate pair. Every writer has a `*_len` twin so callers can reserve
//! the exact size once.

use bytes::{BufMut, BytesMut};

/// Most UTF-16 units in one string chunk.
pub const CHUNK_UNITS: usize = 0x8000;
/// Tag of an untyped map.
pub const MAP_UNTYPED: u8 = b'H';
/// Tag ending a map or a variable-length list.
pub const END: u8 = b'Z';
/// The null value.
pub const NULL: u8 = b'N';

/// Calls `f(chunk, units, is_last)` for each chunk `s` is written in.
fn for_each_chunk(s: &str, mut f: impl FnMut(&str, usize, bool)) {
    let mut rest = s;
    let mut remaining: usize = s.chars().map(char::len_utf16).sum();
    while remaining > CHUNK_UNITS {
        let mut units = 0;
        let mut split = rest.len();
        for (i, c) in rest.char_indices() {
            if units + c.len_utf16() > CHUNK_UNITS {
                split = i;
                break;
            }
            units += c.len_utf16();
        }
        let (chunk, tail) = rest.split_at(split);
        f(chunk, units, false);
        rest = tail;
        remaining -= units;
    }
    f(rest, remaining, true);
}

/// Bytes of `chunk` once each non-BMP char is written as two 3-byte sequences.
fn cesu8_len(chunk: &str) -> usize {
    // A 4-byte UTF-8 sequence becomes 6 bytes.
    chunk.len() + 2 * chunk.bytes().filter(|&b| b >= 0xf0).count()
}

fn chunk_header_len(units: usize, last: bool) -> usize {
    match (last, units) {
        (true, 0..=31) => 1,
        (true, 32..=1023) => 2,
        _ => 3,
    }
}

/// The encoded size of `s` as a hessian string.
pub fn string_len(s: &str) -> usize {
    let mut len = 0;
    for_each_chunk(s, |chunk, units, last| {
        len += chunk_header_len(units, last) + cesu8_len(chunk);
    });
    len
}

fn put_u16(dst: &mut BytesMut, units: usize) {
    dst.put_u16(u16::try_from(units).unwrap_or(u16::MAX));
}

fn put_chunk_header(dst: &mut BytesMut, units: usize, last: bool) {
    match (last, units) {
        // The casts below cannot truncate: the arms bound `units`.
        (true, 0..=31) => dst.put_u8(units as u8),
        (true, 32..=1023) => {
            dst.put_u8(0x30 + (units >> 8) as u8);
            dst.put_u8((units & 0xff) as u8);
        }
        (true, _) => {
            dst.put_u8(b'S');
            put_u16(dst, units);
        }
        (false, _) => {
            dst.put_u8(b'R');
            put_u16(dst, units);
        }
    }
}

fn put_surrogate(dst: &mut BytesMut, unit: u16) {
    dst.put_u8(0xe0 | (unit >> 12) as u8);
    dst.put_u8(0x80 | ((unit >> 6) & 0x3f) as u8);
    dst.put_u8(0x80 | (unit & 0x3f) as u8);
}

fn put_cesu8(dst: &mut BytesMut, chunk: &str) {
    if !chunk.bytes().any(|b| b >= 0xf0) {
        dst.put_slice(chunk.as_bytes());
        return;
    }
    let mut units = [0u16; 2];
    for c in chunk.chars() {
        if c.len_utf8() == 4 {
            for &unit in c.encode_utf16(&mut units).iter() {
                put_surrogate(dst, unit);
            }
        } else {
            let mut buf = [0u8; 4];
            dst.put_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// Writes `s` as a hessian string (exactly [`string_len`] bytes).
pub fn write_string(dst: &mut BytesMut, s: &str) {
    for_each_chunk(s, |chunk, units, last| {
        put_chunk_header(dst, units, last);
        put_cesu8(dst, chunk);
    });
}

/// The encoded size of `v` as a hessian int.
pub fn int_len(v: i32) -> usize {
    match v {
        -16..=47 => 1,
        -2048..=2047 => 2,
        -262_144..=262_143 => 3,
        _ => 5,
    }
}

/// Writes `v` as a hessian int in its most compact form.
pub fn write_int(dst: &mut BytesMut, v: i32) {
    // The casts keep the low bytes on purpose; the arms bound `v`.
    match v {
        -16..=47 => dst.put_u8((v + 0x90) as u8),
        -2048..=2047 => {
            dst.put_u8((0xc8 + (v >> 8)) as u8);
            dst.put_u8(v as u8);
        }
        -262_144..=262_143 => {
            dst.put_u8((0xd4 + (v >> 16)) as u8);
            dst.put_u8((v >> 8) as u8);
            dst.put_u8(v as u8);
        }
        _ => {
            dst.put_u8(b'I');
            dst.put_i32(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dubbo::hessian::Reader;

    fn encode(s: &str) -> BytesMut {
        let mut dst = BytesMut::new();
        write_string(&mut dst, s);
        assert_eq!(dst.len(), string_len(s), "{s:?}");
        dst
    }

    #[test]
    fn short_and_medium_strings() {
        assert_eq!(&encode("")[..], &[0x00]);
        assert_eq!(&encode("ab")[..], &[0x02, b'a', b'b']);
        assert_eq!(encode(&"x".repeat(32))[..2], [0x30, 0x20]);
        assert_eq!(encode(&"x".repeat(1024))[..3], [b'S', 0x04, 0x00]);
    }

    #[test]
    fn ints_round_trip() {
        for v in [
            0,
            -16,
            47,
            48,
            -17,
            -2048,
            2047,
            2048,
            -262_144,
            262_143,
            262_144,
            i32::MIN,
            i32::MAX,
        ] {
            let mut dst = BytesMut::new();
            write_int(&mut dst, v);
            assert_eq!(dst.len(), int_len(v));
            let mut r = Reader::new(&dst, 0);
            assert_eq!(r.read_int(), Ok(v));
            assert!(r.at_end());
        }
    }

    #[test]
    fn long_strings_are_chunked_and_read_back() {
        for s in [
            "x".repeat(CHUNK_UNITS),
            "x".repeat(CHUNK_UNITS + 1),
            format!("a{}", "😀".repeat(CHUNK_UNITS / 2)),
            "yé中😀".repeat(20_000),
        ] {
            let dst = encode(&s);
            let mut r = Reader::new(&dst, 0);
            let span = r.read_string().unwrap();
            assert_eq!(span.end, dst.len());
            assert_eq!(Reader::new(&dst, 0).decode_string().unwrap(), s);
        }
    }
}
