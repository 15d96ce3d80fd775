//! A bounded Hessian 2.0 reader that skips any value without materialising it.
//!
//! Every length is checked against the bytes left before it is used, nesting
//! is limited to [`MAX_DEPTH`], class definitions to [`MAX_CLASS_DEFS`], and a
//! declared element count larger than the bytes left is an error (each value
//! takes at least one byte), so hostile input costs time linear in its size
//! and no allocation beyond the class-definition table.
//!
//! String lengths count UTF-16 code units: one per 1-, 2- or 3-byte sequence
//! (Java writes each surrogate as its own 3-byte sequence), two per 4-byte
//! UTF-8 sequence.

use std::ops::Range;

/// Deepest nesting of lists, maps and objects accepted.
pub const MAX_DEPTH: u32 = 64;
/// Most class definitions accepted in one stream.
pub const MAX_CLASS_DEFS: usize = 1024;

/// Why a hessian stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HessianError {
    /// The value runs past the end of the buffer.
    #[error("hessian value truncated at byte {0}")]
    Eof(usize),
    /// A tag that cannot start the expected value.
    #[error("unexpected hessian tag 0x{tag:02x} at byte {pos}")]
    UnexpectedTag {
        /// The tag byte.
        tag: u8,
        /// Its offset.
        pos: usize,
    },
    /// Lists, maps and objects nested deeper than [`MAX_DEPTH`].
    #[error("hessian values nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// More than [`MAX_CLASS_DEFS`] class definitions.
    #[error("more than {MAX_CLASS_DEFS} hessian class definitions")]
    TooManyClassDefs,
    /// An object instance naming a class definition that was never sent.
    #[error("hessian object refers to undefined class definition {0}")]
    UnknownClassDef(i64),
    /// A negative length, or a count larger than the bytes left.
    #[error("invalid hessian length {len} at byte {pos}")]
    BadLength {
        /// The declared length.
        len: i64,
        /// Offset of the value declaring it.
        pos: usize,
    },
    /// A string whose bytes are not UTF-8 / CESU-8 for its declared length.
    #[error("invalid UTF-8 in hessian string at byte {0}")]
    InvalidUtf8(usize),
}

type Result<T> = std::result::Result<T, HessianError>;

/// Where a string value lies in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringSpan {
    /// Offset of the first tag byte.
    pub start: usize,
    /// Offset just past the value.
    pub end: usize,
    /// The character bytes, when the string is a single chunk.
    pub single: Option<Range<usize>>,
}

/// A value read for its text: strings by position, small scalars by value,
/// anything else skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    /// A string.
    Str(StringSpan),
    /// An int or a long.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// Null.
    Null,
    /// Any other value (skipped).
    Other,
}

/// The sizes of the reader's reference tables at one point of the stream.
///
/// Values after that point may refer to class definitions, types and
/// lists/maps/objects defined before it by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableMark {
    /// Class definitions seen.
    pub class_defs: usize,
    /// Type names seen.
    pub types: u32,
    /// Lists, maps and objects seen (targets of `Q` refs).
    pub refs: u32,
}

/// A cursor over a hessian stream, with the stream's class definitions.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    class_fields: Vec<usize>,
    types: u32,
    refs: u32,
    depth: u32,
    used_tables: bool,
}

impl<'a> Reader<'a> {
    /// A reader over `buf` starting at offset `pos`.
    pub fn new(buf: &'a [u8], pos: usize) -> Self {
        Self {
            buf,
            pos,
            class_fields: Vec::new(),
            types: 0,
            refs: 0,
            depth: 0,
            used_tables: false,
        }
    }

    /// The current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Whether every byte has been read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next byte, without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// The current sizes of the reference tables.
    pub fn tables(&self) -> TableMark {
        TableMark {
            class_defs: self.class_fields.len(),
            types: self.types,
            refs: self.refs,
        }
    }

    /// Whether a value read since the last call referred to a table entry
    /// (a `Q` ref, an object instance or a type ref); resets the flag.
    pub fn take_used_tables(&mut self) -> bool {
        std::mem::take(&mut self.used_tables)
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn byte(&mut self) -> Result<u8> {
        let b = self.peek().ok_or(HessianError::Eof(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(HessianError::Eof(self.pos))?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(HessianError::Eof(self.pos))?;
        self.pos = end;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }

    fn be_u16(&mut self) -> Result<usize> {
        let b = self.take(2)?;
        Ok(b.iter().fold(0usize, |acc, &x| acc << 8 | usize::from(x)))
    }

    fn be_i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(i32::from_be_bytes(a))
    }

    fn be_i64(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn unexpected(&self, tag: u8) -> HessianError {
        HessianError::UnexpectedTag {
            tag,
            pos: self.pos.saturating_sub(1),
        }
    }

    /// Checks that `n` elements of at least one byte each can fit in what is left.
    fn count(&self, n: i64, at: usize) -> Result<usize> {
        match usize::try_from(n) {
            Ok(n) if n <= self.remaining() => Ok(n),
            _ => Err(HessianError::BadLength { len: n, pos: at }),
        }
    }

    /// Reads an int (any of the four int encodings).
    pub fn read_int(&mut self) -> Result<i32> {
        let tag = self.byte()?;
        let v = i32::from(tag);
        match tag {
            0x80..=0xbf => Ok(v - 0x90),
            0xc0..=0xcf => Ok(((v - 0xc8) << 8) | i32::from(self.byte()?)),
            0xd0..=0xd7 => {
                let lo = self.be_u16()?;
                Ok(((v - 0xd4) << 16) | i32::try_from(lo).unwrap_or(0))
            }
            b'I' => self.be_i32(),
            _ => Err(self.unexpected(tag)),
        }
    }

    /// Reads an int or a long, widened to `i64`.
    pub fn read_long(&mut self) -> Result<i64> {
        let Some(tag) = self.peek() else {
            return Err(HessianError::Eof(self.pos));
        };
        match tag {
            0x80..=0xd7 | b'I' => return self.read_int().map(i64::from),
            _ => {}
        }
        self.pos += 1;
        let v = i64::from(tag);
        match tag {
            0xd8..=0xef => Ok(v - 0xe0),
            0xf0..=0xff => Ok(((v - 0xf8) << 8) | i64::from(self.byte()?)),
            0x38..=0x3f => {
                let lo = self.be_u16()?;
                Ok(((v - 0x3c) << 16) | i64::try_from(lo).unwrap_or(0))
            }
            0x59 => self.be_i32().map(i64::from),
            b'L' => self.be_i64(),
            _ => Err(self.unexpected(tag)),
        }
    }

    /// Whether `tag` starts a string.
    pub fn is_string_tag(tag: u8) -> bool {
        matches!(tag, 0x00..=0x1f | 0x30..=0x33 | b'R' | b'S')
    }

    /// Reads the header of one string chunk: its length in UTF-16 units and
    /// whether it is the final chunk.
    fn string_chunk_header(&mut self) -> Result<(usize, bool)> {
        let tag = self.byte()?;
        match tag {
            0x00..=0x1f => Ok((usize::from(tag), true)),
            0x30..=0x33 => Ok((
                usize::from(tag - 0x30) << 8 | usize::from(self.byte()?),
                true,
            )),
            b'S' => Ok((self.be_u16()?, true)),
            b'R' => Ok((self.be_u16()?, false)),
            _ => Err(self.unexpected(tag)),
        }
    }

    /// Skips `units` UTF-16 code units of UTF-8/CESU-8 bytes (lead bytes only).
    fn skip_units(&mut self, units: usize) -> Result<()> {
        let mut left = units;
        while left > 0 {
            // Runs of ASCII (one byte, one unit) go in one step.
            let ascii = ascii_prefix(self.buf.get(self.pos..).unwrap_or_default(), left);
            self.pos += ascii;
            left -= ascii;
            if left == 0 {
                break;
            }
            let at = self.pos;
            let lead = self.peek().ok_or(HessianError::Eof(at))?;
            let (len, n) = match lead {
                0x00..=0x7f => (1, 1),
                0xc0..=0xdf => (2, 1),
                0xe0..=0xef => (3, 1),
                0xf0..=0xf7 => (4, 2),
                _ => return Err(HessianError::InvalidUtf8(at)),
            };
            if n > left {
                return Err(HessianError::InvalidUtf8(at));
            }
            self.skip(len)?;
            left -= n;
        }
        Ok(())
    }

    /// Reads a string (possibly chunked) and reports where it lies.
    pub fn read_string(&mut self) -> Result<StringSpan> {
        let start = self.pos;
        let mut first = true;
        loop {
            let (units, last) = self.string_chunk_header()?;
            let data = self.pos;
            self.skip_units(units)?;
            if last {
                let single = first.then_some(data..self.pos);
                return Ok(StringSpan {
                    start,
                    end: self.pos,
                    single,
                });
            }
            first = false;
        }
    }

    /// Decodes the string starting here into an owned `String`.
    ///
    /// Accepts both 4-byte UTF-8 sequences and Java's surrogates written as
    /// two 3-byte sequences (combined into one char, also across chunks).
    /// A lone surrogate becomes U+FFFD.
    pub fn decode_string(&mut self) -> Result<String> {
        let mut units: Vec<u16> = Vec::new();
        loop {
            let (n, last) = self.string_chunk_header()?;
            // Each unit takes at least one byte (two per 4-byte sequence).
            if n > self.remaining().saturating_mul(2) {
                return Err(HessianError::Eof(self.pos));
            }
            units.reserve(n);
            self.decode_units(n, &mut units)?;
            if last {
                return Ok(String::from_utf16_lossy(&units));
            }
        }
    }

    fn continuation(&mut self) -> Result<u32> {
        let at = self.pos;
        let b = self.byte()?;
        if b & 0xc0 == 0x80 {
            Ok(u32::from(b & 0x3f))
        } else {
            Err(HessianError::InvalidUtf8(at))
        }
    }

    fn decode_units(&mut self, n: usize, out: &mut Vec<u16>) -> Result<()> {
        let mut left = n;
        while left > 0 {
            let at = self.pos;
            let lead = u32::from(self.byte()?);
            let cp = match lead {
                0x00..=0x7f => lead,
                0xc0..=0xdf => (lead & 0x1f) << 6 | self.continuation()?,
                0xe0..=0xef => {
                    (lead & 0x0f) << 12 | self.continuation()? << 6 | self.continuation()?
                }
                0xf0..=0xf7 if left >= 2 => {
                    let cp = (lead & 0x07) << 18
                        | self.continuation()? << 12
                        | self.continuation()? << 6
                        | self.continuation()?;
                    let Some(off) = cp.checked_sub(0x1_0000).filter(|&c| c < 0x10_0000) else {
                        return Err(HessianError::InvalidUtf8(at));
                    };
                    out.push(0xd800 | u16::try_from(off >> 10).unwrap_or(0));
                    out.push(0xdc00 | u16::try_from(off & 0x3ff).unwrap_or(0));
                    left -= 2;
                    continue;
                }
                _ => return Err(HessianError::InvalidUtf8(at)),
            };
            out.push(u16::try_from(cp).map_err(|_| HessianError::InvalidUtf8(at))?);
            left -= 1;
        }
        Ok(())
    }

    fn skip_binary(&mut self) -> Result<()> {
        loop {
            let tag = self.byte()?;
            let (len, last) = match tag {
                0x20..=0x2f => (usize::from(tag - 0x20), true),
                0x34..=0x37 => (
                    usize::from(tag - 0x34) << 8 | usize::from(self.byte()?),
                    true,
                ),
                b'B' => (self.be_u16()?, true),
                b'A' => (self.be_u16()?, false),
                _ => return Err(self.unexpected(tag)),
            };
            self.skip(len)?;
            if last {
                return Ok(());
            }
        }
    }

    /// Reads a type: a type name (string) or a reference to an earlier one (int).
    fn skip_type(&mut self) -> Result<()> {
        match self.peek() {
            Some(t) if Self::is_string_tag(t) => {
                self.read_string()?;
                self.types = self.types.saturating_add(1);
                Ok(())
            }
            Some(0x80..=0xd7 | b'I') => {
                self.read_int()?;
                self.used_tables = true;
                Ok(())
            }
            Some(t) => {
                self.pos += 1;
                Err(self.unexpected(t))
            }
            None => Err(HessianError::Eof(self.pos)),
        }
    }

    /// Reads a class definition (`'C'` already consumed).
    fn class_def(&mut self) -> Result<()> {
        if self.class_fields.len() >= MAX_CLASS_DEFS {
            return Err(HessianError::TooManyClassDefs);
        }
        let at = self.pos;
        self.read_string()?;
        let n = self.read_int()?;
        let n = self.count(i64::from(n), at)?;
        for _ in 0..n {
            self.read_string()?;
        }
        self.class_fields.push(n);
        Ok(())
    }

    fn enter(&mut self) -> Result<()> {
        if self.depth >= MAX_DEPTH {
            return Err(HessianError::TooDeep);
        }
        self.depth += 1;
        self.refs = self.refs.saturating_add(1);
        Ok(())
    }

    fn skip_until_end(&mut self, pairs: bool) -> Result<()> {
        self.enter()?;
        while self.peek() != Some(b'Z') {
            self.skip_value()?;
            if pairs {
                self.skip_value()?;
            }
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(())
    }

    fn skip_fixed(&mut self, n: usize) -> Result<()> {
        self.enter()?;
        for _ in 0..n {
            self.skip_value()?;
        }
        self.depth -= 1;
        Ok(())
    }

    fn skip_object(&mut self, def: i64, at: usize) -> Result<()> {
        let fields = usize::try_from(def)
            .ok()
            .and_then(|d| self.class_fields.get(d).copied())
            .ok_or(HessianError::UnknownClassDef(def))?;
        self.used_tables = true;
        let n = self.count(i64::try_from(fields).unwrap_or(i64::MAX), at)?;
        self.skip_fixed(n)
    }

    /// Skips one value of any type, including class definitions before it.
    pub fn skip_value(&mut self) -> Result<()> {
        while self.peek() == Some(b'C') {
            self.pos += 1;
            self.class_def()?;
        }
        let at = self.pos;
        let tag = self.peek().ok_or(HessianError::Eof(at))?;
        if Self::is_string_tag(tag) {
            return self.read_string().map(|_| ());
        }
        if matches!(tag, 0x20..=0x2f | 0x34..=0x37 | b'A' | b'B') {
            return self.skip_binary();
        }
        self.pos += 1;
        match tag {
            b'N' | b'T' | b'F' | 0x5b | 0x5c | 0x80..=0xbf | 0xd8..=0xef => Ok(()),
            0x5d | 0xc0..=0xcf | 0xf0..=0xff => self.skip(1),
            0x5e | 0xd0..=0xd7 | 0x38..=0x3f => self.skip(2),
            0x5f | b'I' | 0x59 | 0x4b => self.skip(4),
            b'D' | b'L' | 0x4a => self.skip(8),
            b'Q' => {
                self.read_int()?;
                self.used_tables = true;
                Ok(())
            }
            b'H' => self.skip_until_end(true),
            b'M' => {
                self.skip_type()?;
                self.skip_until_end(true)
            }
            b'W' => self.skip_until_end(false),
            b'U' => {
                self.skip_type()?;
                self.skip_until_end(false)
            }
            b'X' => {
                let n = self.read_int()?;
                let n = self.count(i64::from(n), at)?;
                self.skip_fixed(n)
            }
            b'V' => {
                self.skip_type()?;
                let n = self.read_int()?;
                let n = self.count(i64::from(n), at)?;
                self.skip_fixed(n)
            }
            0x70..=0x77 => {
                self.skip_type()?;
                self.skip_fixed(usize::from(tag - 0x70))
            }
            0x78..=0x7f => self.skip_fixed(usize::from(tag - 0x78)),
            b'O' => {
                let def = self.read_int()?;
                self.skip_object(i64::from(def), at)
            }
            0x60..=0x6f => self.skip_object(i64::from(tag - 0x60), at),
            _ => Err(self.unexpected(tag)),
        }
    }

    /// Reads the start of a map (`'H'`, or `'M'` and its type) whose entries
    /// the caller then reads one by one until [`Reader::at_map_end`].
    pub fn read_map_start(&mut self) -> Result<()> {
        let tag = self.byte()?;
        match tag {
            b'H' => {}
            b'M' => self.skip_type()?,
            _ => return Err(self.unexpected(tag)),
        }
        self.refs = self.refs.saturating_add(1);
        Ok(())
    }

    /// Consumes the `'Z'` ending a map and returns true, or returns false
    /// when another entry follows.
    pub fn at_map_end(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b'Z') => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(HessianError::Eof(self.pos)),
        }
    }

    /// Reads a value for its text: strings by position, ints, longs and
    /// booleans by value; anything else is skipped and reported as `Other`.
    pub fn read_scalar(&mut self) -> Result<Scalar> {
        let tag = self.peek().ok_or(HessianError::Eof(self.pos))?;
        match tag {
            t if Self::is_string_tag(t) => self.read_string().map(Scalar::Str),
            0x80..=0xff | 0x38..=0x3f | 0x59 | b'I' | b'L' => self.read_long().map(Scalar::Int),
            b'T' | b'F' | b'N' => {
                self.pos += 1;
                Ok(match tag {
                    b'T' => Scalar::Bool(true),
                    b'F' => Scalar::Bool(false),
                    _ => Scalar::Null,
                })
            }
            _ => self.skip_value().map(|_| Scalar::Other),
        }
    }
}

/// How many of the first `max` bytes of `bytes` are ASCII, eight at a time.
fn ascii_prefix(bytes: &[u8], max: usize) -> usize {
    let bytes = &bytes[..bytes.len().min(max)];
    let mut n = 0;
    for word in bytes.chunks_exact(8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or([0x80; 8]));
        if w & 0x8080_8080_8080_8080 != 0 {
            break;
        }
        n += 8;
    }
    n + bytes[n..].iter().take_while(|b| b.is_ascii()).count()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ascii_runs_stop_at_the_first_other_byte_and_the_limit() {
        let text = b"abcdefghijklmnop\xc3\xa9xyz";
        assert_eq!(super::ascii_prefix(text, 100), 16);
        assert_eq!(super::ascii_prefix(text, 11), 11);
        assert_eq!(super::ascii_prefix(&text[3..], 100), 13);
        assert_eq!(super::ascii_prefix(b"", 5), 0);
        assert_eq!(super::ascii_prefix(b"ab\x80cdefghijk", 100), 2);
    }

    use super::*;

    fn skip_all(bytes: &[u8]) -> Result<usize> {
        let mut r = Reader::new(bytes, 0);
        r.skip_value()?;
        Ok(r.pos())
    }

    #[test]
    fn ints_and_longs() {
        let cases: &[(&[u8], i64)] = &[
            (&[0x90], 0),
            (&[0x80], -16),
            (&[0xbf], 47),
            (&[0xc7, 0xef], -17),
            (&[0xd3, 0xf7, 0xff], -2049),
            (&[b'I', 0x80, 0, 0, 0], i64::from(i32::MIN)),
            (&[0xd8], -8),
            (&[0xf7, 0xf7], -9),
            (&[0x38, 0, 0], -262_144),
            (&[0x59, 0x7f, 0xff, 0xff, 0xff], i64::from(i32::MAX)),
            (
                &[b'L', 0xff, 0xff, 0xff, 0xff, 0x4d, 0x20, 0x37, 0x70],
                -3_001_010_320,
            ),
        ];
        for (bytes, want) in cases {
            let mut r = Reader::new(bytes, 0);
            assert_eq!(r.read_long(), Ok(*want), "{bytes:02x?}");
            assert!(r.at_end());
            assert_eq!(skip_all(bytes), Ok(bytes.len()));
        }
    }

    #[test]
    fn depth_is_limited() {
        let mut deep = vec![0x79u8; 200];
        deep.push(b'N');
        assert_eq!(skip_all(&deep), Err(HessianError::TooDeep));
        let mut ok = vec![0x79u8; MAX_DEPTH as usize];
        ok.push(b'N');
        assert_eq!(skip_all(&ok), Ok(ok.len()));
        let mut open = vec![b'W'; 100];
        open.push(b'Z');
        assert_eq!(skip_all(&open), Err(HessianError::TooDeep));
    }

    #[test]
    fn huge_counts_are_errors_not_allocations() {
        assert!(matches!(
            skip_all(&[b'X', b'I', 0x7f, 0xff, 0xff, 0xff, b'N']),
            Err(HessianError::BadLength { .. })
        ));
        assert!(matches!(
            skip_all(&[b'X', b'I', 0xff, 0xff, 0xff, 0xff]),
            Err(HessianError::BadLength { .. })
        ));
        // A class def declaring more fields than bytes left.
        assert!(matches!(
            skip_all(&[b'C', 0x01, b'A', b'I', 0x00, 0x10, 0, 0]),
            Err(HessianError::BadLength { .. })
        ));
        // A string declaring 0xffff units with 3 bytes left.
        assert!(matches!(
            skip_all(&[b'S', 0xff, 0xff, b'a', b'b', b'c']),
            Err(HessianError::Eof(_))
        ));
    }

    #[test]
    fn class_defs_are_limited_and_checked() {
        assert_eq!(skip_all(&[0x60]), Err(HessianError::UnknownClassDef(0)));
        assert_eq!(
            skip_all(&[b'O', 0x91]),
            Err(HessianError::UnknownClassDef(1))
        );
        let mut many = Vec::new();
        for _ in 0..=MAX_CLASS_DEFS {
            many.extend_from_slice(&[b'C', 0x01, b'A', 0x90]);
        }
        many.push(b'N');
        assert_eq!(skip_all(&many), Err(HessianError::TooManyClassDefs));
    }

    #[test]
    fn chunked_binary_and_typed_map() {
        let mut bin = vec![b'A', 0x00, 0x02, 1, 2, 0x21, 3];
        assert_eq!(skip_all(&bin), Ok(bin.len()));
        bin.truncate(6);
        assert_eq!(skip_all(&bin), Err(HessianError::Eof(6)));
        // M "T" "k" "v" Z, then M <type ref 0> Z.
        let map = [
            b'M', 0x01, b'T', 0x01, b'k', 0x01, b'v', b'Z', b'M', 0x90, b'Z',
        ];
        let mut r = Reader::new(&map, 0);
        r.skip_value().unwrap();
        assert_eq!(r.tables().types, 1);
        assert!(!r.take_used_tables());
        r.skip_value().unwrap();
        assert!(r.take_used_tables());
        assert!(r.at_end());
    }

    #[test]
    fn strings_count_utf16_units() {
        // "😀" as one 4-byte UTF-8 sequence counts as two units.
        let utf8 = [0x02, 0xf0, 0x9f, 0x98, 0x80];
        let mut r = Reader::new(&utf8, 0);
        assert_eq!(r.read_string().unwrap().single, Some(1..5));
        assert_eq!(Reader::new(&utf8, 0).decode_string().unwrap(), "😀");
        // The same char as Java writes it: two 3-byte surrogates.
        let cesu = [0x02, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80];
        assert_eq!(skip_all(&cesu), Ok(7));
        assert_eq!(Reader::new(&cesu, 0).decode_string().unwrap(), "😀");
        // A pair split across chunks still combines.
        let split = [b'R', 0, 1, 0xed, 0xa0, 0xbd, 0x01, 0xed, 0xb8, 0x80];
        assert_eq!(Reader::new(&split, 0).decode_string().unwrap(), "😀");
        // A lone surrogate becomes U+FFFD.
        let lone = [0x01, 0xed, 0xa0, 0xbd];
        assert_eq!(Reader::new(&lone, 0).decode_string().unwrap(), "\u{fffd}");
        // A 4-byte sequence cannot fill a single remaining unit.
        assert_eq!(
            skip_all(&[0x01, 0xf0, 0x9f, 0x98, 0x80]),
            Err(HessianError::InvalidUtf8(1))
        );
        // Bad continuation bytes are caught when decoding.
        assert_eq!(
            Reader::new(&[0x01, 0xc3, 0x41], 0).decode_string(),
            Err(HessianError::InvalidUtf8(2))
        );
    }

    #[test]
    fn reserved_tags_are_errors() {
        for tag in [0x40, b'E', b'G', b'P', b'Z'] {
            assert!(matches!(
                skip_all(&[tag]),
                Err(HessianError::UnexpectedTag { .. })
            ));
        }
        assert_eq!(skip_all(&[]), Err(HessianError::Eof(0)));
    }
}
