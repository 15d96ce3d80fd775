//! A bounds-checked reader over a byte slice: every read checks what is
//! buffered and reports [`ReadError::Incomplete`] instead of panicking.

use super::error::ReadError;

/// Reads big-endian integers, varints and byte runs from a slice.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// A cursor at `pos` in `buf`.
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    /// The current offset from the start of the slice.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left after the current offset.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| ReadError::TooLarge("length overflows".into()))?;
        match self.buf.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(ReadError::Incomplete { at_least: end }),
        }
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), ReadError> {
        self.take(n).map(|_| ())
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a big-endian `i16`.
    pub fn i16(&mut self) -> Result<i16, ReadError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, ReadError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian `i32`.
    pub fn i32(&mut self) -> Result<i32, ReadError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads an unsigned LEB128 varint of at most `max_bytes` bytes (5 for
    /// 32-bit values, 10 for 64-bit ones).
    pub fn varint(&mut self, max_bytes: usize) -> Result<u64, ReadError> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let b = self.u8()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ReadError::malformed("varint too long"))
    }

    /// Reads a 32-bit varint (at most 5 bytes).
    pub fn varint32(&mut self) -> Result<u32, ReadError> {
        let v = self.varint(5)?;
        u32::try_from(v).map_err(|_| ReadError::malformed("varint exceeds 32 bits"))
    }
}

/// Zigzag-decodes a 32-bit value.
pub fn unzigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// Zigzag-encodes a 32-bit value.
pub fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// Appends an unsigned LEB128 varint.
pub fn put_varint(dst: &mut impl bytes::BufMut, mut v: u64) {
    while v >= 0x80 {
        dst.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    dst.put_u8(v as u8);
}

/// The length of `v` as an unsigned LEB128 varint.
pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        n += 1;
        v >>= 7;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(Cursor::new(&out).varint(10), Ok(v));
        }
        assert_eq!(
            Cursor::new(&[0x80]).varint(5),
            Err(ReadError::Incomplete { at_least: 2 })
        );
        assert!(matches!(
            Cursor::new(&[0xff; 6]).varint(5),
            Err(ReadError::Malformed(_))
        ));
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0, -1, 1, i32::MIN, i32::MAX, 12345] {
            assert_eq!(unzigzag32(zigzag32(v)), v);
        }
        assert_eq!(zigzag32(-1), 1);
        assert_eq!(zigzag32(1), 2);
    }

    #[test]
    fn reads_never_panic_on_short_input() {
        let mut c = Cursor::new(&[1, 2, 3]);
        assert!(c.i32().is_err());
        assert_eq!(c.i16(), Ok(0x0102));
        assert!(c.i16().is_err());
        assert_eq!(
            c.take(usize::MAX).map(|_| ()),
            Err(ReadError::TooLarge("length overflows".into()))
        );
    }
}
