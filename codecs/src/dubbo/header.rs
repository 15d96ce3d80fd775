//! The 16-byte Dubbo 2 frame header: parsing (with nom) and writing.
//!
//! ```text
//! 0-1   magic 0xda 0xbb
//! 2     flags: 0x80 request, 0x40 two-way, 0x20 event, low 5 bits serialization id
//! 3     status (responses)
//! 4-11  request id, big-endian u64
//! 12-15 body length, big-endian i32
//! ```

use bytes::{BufMut, BytesMut};
use nom::Parser;
use nom::bytes::complete::tag;
use nom::number::complete::{be_i32, be_u8, be_u64};

/// Length of the header in bytes.
pub const HEADER_LEN: usize = 16;
/// The two magic bytes every frame starts with.
pub const MAGIC: [u8; 2] = [0xda, 0xbb];
/// Flag bit: the frame is a request.
pub const FLAG_REQUEST: u8 = 0x80;
/// Flag bit: the request expects a response.
pub const FLAG_TWO_WAY: u8 = 0x40;
/// Flag bit: the frame is an event (heartbeat).
pub const FLAG_EVENT: u8 = 0x20;
/// Mask of the serialization id in the flags byte.
pub const SERIALIZATION_MASK: u8 = 0x1f;
/// The hessian2 serialization id, the only one whose bodies are read.
pub const SERIALIZATION_HESSIAN2: u8 = 2;
/// Offset of the request id inside the header.
pub const ID_OFFSET: usize = 4;
/// Offset of the body length inside the header.
pub const LEN_OFFSET: usize = 12;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The flags byte.
    pub flags: u8,
    /// The status byte (meaningful in responses).
    pub status: u8,
    /// The request id.
    pub request_id: u64,
    /// The declared body length (may be negative on a broken stream).
    pub body_len: i32,
}

impl Header {
    /// Whether the frame is a request.
    pub fn is_request(&self) -> bool {
        self.flags & FLAG_REQUEST != 0
    }

    /// Whether the request expects a response.
    pub fn is_two_way(&self) -> bool {
        self.flags & FLAG_TWO_WAY != 0
    }

    /// Whether the frame is an event (heartbeat).
    pub fn is_event(&self) -> bool {
        self.flags & FLAG_EVENT != 0
    }

    /// The serialization id.
    pub fn serialization(&self) -> u8 {
        self.flags & SERIALIZATION_MASK
    }
}

/// The outcome of looking at the front of a read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderParse {
    /// Fewer than 16 bytes are buffered and those seen so far look right.
    Incomplete,
    /// The buffer does not start with the magic bytes.
    BadMagic,
    /// A whole header.
    Complete(Header),
}

/// Parses the header at the front of `buf`.
///
/// The magic is checked on whatever prefix is buffered, so a stream of
/// garbage is rejected before 16 bytes arrive.
pub fn parse(buf: &[u8]) -> HeaderParse {
    let seen = buf.len().min(MAGIC.len());
    if buf.get(..seen) != MAGIC.get(..seen) {
        return HeaderParse::BadMagic;
    }
    let Some(header) = buf.get(..HEADER_LEN) else {
        return HeaderParse::Incomplete;
    };
    let parsed: nom::IResult<&[u8], _> =
        (tag(&MAGIC[..]), be_u8, be_u8, be_u64, be_i32).parse(header);
    match parsed {
        Ok((_, (_, flags, status, request_id, body_len))) => HeaderParse::Complete(Header {
            flags,
            status,
            request_id,
            body_len,
        }),
        Err(_) => HeaderParse::BadMagic,
    }
}

/// Writes a header to `dst`.
pub fn write(dst: &mut BytesMut, flags: u8, status: u8, request_id: u64, body_len: u32) {
    dst.put_slice(&MAGIC);
    dst.put_u8(flags);
    dst.put_u8(status);
    dst.put_u64(request_id);
    dst.put_u32(body_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_header() {
        let mut buf = BytesMut::new();
        write(&mut buf, 0xc2, 0, 0x0102_0304_0506_0708, 42);
        let HeaderParse::Complete(h) = parse(&buf) else {
            panic!("expected a header");
        };
        assert!(h.is_request() && h.is_two_way() && !h.is_event());
        assert_eq!(h.serialization(), 2);
        assert_eq!(h.request_id, 0x0102_0304_0506_0708);
        assert_eq!(h.body_len, 42);
    }

    #[test]
    fn partial_and_bad_magic() {
        assert_eq!(parse(&[]), HeaderParse::Incomplete);
        assert_eq!(parse(&[0xda]), HeaderParse::Incomplete);
        assert_eq!(parse(&[0xda, 0xbb, 0xc2]), HeaderParse::Incomplete);
        assert_eq!(parse(&[0x47]), HeaderParse::BadMagic);
        assert_eq!(parse(&[0xda, 0x00]), HeaderParse::BadMagic);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), HeaderParse::BadMagic);
    }
}
