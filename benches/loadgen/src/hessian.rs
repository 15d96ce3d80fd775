//! The few hessian2 pieces the Dubbo client and echo provider need:
//! writing a string and finding where a string value sits in a buffer.

/// Appends `s` (ASCII) as a hessian2 string, in one chunk.
///
/// Panics if `s` is longer than 65 535 bytes (one final chunk); the tools
/// never send more.
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    match n {
        0..=31 => out.push(n as u8),
        32..=1023 => {
            out.push(0x30 + (n >> 8) as u8);
            out.push(n as u8);
        }
        _ => {
            let n = u16::try_from(n).expect("hessian string of at most 65535 bytes");
            out.push(b'S');
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out.extend_from_slice(s);
}

/// The byte range of the one-chunk ASCII string starting at `at`, and the
/// offset just after it; `None` for any other value or a short buffer.
pub fn str_at(buf: &[u8], at: usize) -> Option<(std::ops::Range<usize>, usize)> {
    let tag = *buf.get(at)?;
    let (start, len) = match tag {
        0x00..=0x1f => (at + 1, usize::from(tag)),
        0x30..=0x33 => (
            at + 2,
            (usize::from(tag - 0x30) << 8) | usize::from(*buf.get(at + 1)?),
        ),
        b'S' => (
            at + 3,
            usize::from(u16::from_be_bytes([*buf.get(at + 1)?, *buf.get(at + 2)?])),
        ),
        _ => return None,
    };
    let end = start.checked_add(len)?;
    (end <= buf.len()).then_some((start..end, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length_form() {
        for n in [0usize, 5, 31, 32, 100, 1023, 1024, 16 * 1024] {
            let s = vec![b'x'; n];
            let mut out = vec![0xff];
            write_str(&mut out, &s);
            let (range, end) = str_at(&out, 1).unwrap();
            assert_eq!(&out[range], &s[..]);
            assert_eq!(end, out.len());
        }
        assert!(str_at(b"N", 0).is_none());
        assert!(str_at(&[0x05, b'a'], 0).is_none());
    }
}
