//! Telling transports and protocols apart from a connection's first bytes.
//!
//! Each check names the bytes it looks at:
//! - unframed strict binary: bytes 0..2 are `0x80 0x01` (the version word;
//!   a frame length never starts with 0x80 since it would be negative);
//! - unframed compact: byte 0 is `0x82`, byte 1's low 5 bits are version 1;
//! - THeader: bytes 4..6 are the magic `0x0F 0xFF` (after the 4-byte length);
//! - framed strict binary: bytes 4..6 are `0x80 0x01`;
//! - framed compact: byte 4 is `0x82`, byte 5's low 5 bits are version 1;
//!   any other byte 4 with its high bit set is taken as framed too, so that
//!   an unknown version is reported as such;
//! - otherwise non-strict binary (a message starting with the method name's
//!   length): framed when bytes 4..8 hold a name length that fits the frame
//!   and the byte after the name is a message type, else unframed when bytes
//!   0..4 hold such a name length.

use super::compact;
use super::wire::Transport;

/// The outcome of looking at the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// Not enough bytes yet to tell.
    NeedMore,
    /// The transport the bytes are in.
    Found(Transport),
    /// Not Thrift.
    Unknown,
}

/// Bytes 0..2 are the strict binary version `0x80 0x01`.
pub fn is_unframed_binary(buf: &[u8]) -> bool {
    buf.get(..2) == Some(&[0x80, 0x01][..])
}

/// Byte 0 is the compact protocol id `0x82` and byte 1 carries version 1.
pub fn is_unframed_compact(buf: &[u8]) -> bool {
    matches!(buf.get(..2), Some([compact::PROTOCOL_ID, vt]) if vt & compact::VERSION_MASK == compact::VERSION)
}

/// Bytes 4..6 are the THeader magic `0x0F 0xFF`.
pub fn is_theader(buf: &[u8]) -> bool {
    buf.get(4..6) == Some(&[0x0f, 0xff][..])
}

/// Bytes 4..6 are the strict binary version `0x80 0x01` (after a frame length).
pub fn is_framed_binary(buf: &[u8]) -> bool {
    buf.get(4..6) == Some(&[0x80, 0x01][..])
}

/// Byte 4 is the compact protocol id and byte 5 carries version 1 (after a frame length).
pub fn is_framed_compact(buf: &[u8]) -> bool {
    buf.get(4..).is_some_and(is_unframed_compact)
}

fn be_i32(buf: &[u8], at: usize) -> Option<i32> {
    let b = buf.get(at..at + 4)?;
    Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A non-strict binary message header at `at`: a name length, the name, a
/// message type 1..=4. `None` when not enough bytes are buffered to tell.
fn is_non_strict_header(buf: &[u8], at: usize, limit: usize) -> Option<bool> {
    let len = be_i32(buf, at)?;
    let Ok(len) = usize::try_from(len) else {
        return Some(false);
    };
    if len == 0 || len > limit {
        return Some(false);
    }
    let t = *buf.get(at + 4 + len)?;
    Some((1..=4).contains(&t))
}

/// Bytes 4..8 hold a name length fitting the frame length at 0..4, and the
/// byte after the name (at 8 + len) is a message type.
pub fn is_framed_non_strict(buf: &[u8]) -> Option<bool> {
    let frame = usize::try_from(be_i32(buf, 0)?).ok()?;
    is_non_strict_header(buf, 4, frame.saturating_sub(9))
}

/// Bytes 0..4 hold a name length (at most 64 KiB) and the byte after the name is a message type.
pub fn is_unframed_non_strict(buf: &[u8]) -> Option<bool> {
    is_non_strict_header(buf, 0, super::header::MAX_NAME_LEN)
}

/// Finds the transport of the message at the front of `buf`.
pub fn transport(buf: &[u8]) -> Sniff {
    if buf.is_empty() {
        return Sniff::NeedMore;
    }
    if is_unframed_binary(buf) || is_unframed_compact(buf) {
        return Sniff::Found(Transport::Unframed);
    }
    if buf.len() < 2 {
        return Sniff::NeedMore;
    }
    if buf[0] & 0x80 != 0 {
        return Sniff::Unknown;
    }
    if buf.len() < 6 {
        return Sniff::NeedMore;
    }
    if is_theader(buf) {
        return Sniff::Found(Transport::Header);
    }
    // Byte 4 with its high bit set can only start a version word or a
    // compact id: framed (an unknown version is then reported by the header parser).
    if is_framed_binary(buf) || is_framed_compact(buf) || buf[4] & 0x80 != 0 {
        return Sniff::Found(Transport::Framed);
    }
    match (is_framed_non_strict(buf), is_unframed_non_strict(buf)) {
        (Some(true), _) => Sniff::Found(Transport::Framed),
        (Some(false), Some(true)) => Sniff::Found(Transport::Unframed),
        (Some(false), Some(false)) | (None, Some(false)) => Sniff::Unknown,
        _ => Sniff::NeedMore,
    }
}
