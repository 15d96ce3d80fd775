//! Turning a string found by the reader into a [`ByteString`], zero-copy when possible.

use bytes::Bytes;
use bytestring::ByteString;

use super::reader::{HessianError, Reader, StringSpan};

/// The text of the string at `span` inside `frame`.
///
/// A single-chunk string whose bytes are valid UTF-8 is a slice of `frame`
/// (no copy). A chunked string, or one with Java's surrogate sequences, is
/// decoded into an owned string (lone surrogates become U+FFFD).
pub fn span_text(frame: &Bytes, span: &StringSpan) -> Result<ByteString, HessianError> {
    if let Some(range) = &span.single {
        // `slice` is only called on a range `get` proved in bounds.
        if frame.get(range.clone()).is_some()
            && let Ok(text) = ByteString::try_from(frame.slice(range.clone()))
        {
            return Ok(text);
        }
    }
    Reader::new(frame, span.start)
        .decode_string()
        .map(ByteString::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_copy_for_single_utf8_chunk() {
        let frame =
            Bytes::from_static(&[0x02, b'h', b'i', 0x02, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]);
        let mut r = Reader::new(&frame, 0);
        let hi = span_text(&frame, &r.read_string().unwrap()).unwrap();
        assert_eq!(&*hi, "hi");
        assert_eq!(hi.as_bytes().as_ptr(), frame[1..].as_ptr());
        let smile = span_text(&frame, &r.read_string().unwrap()).unwrap();
        assert_eq!(&*smile, "😀");
    }
}
