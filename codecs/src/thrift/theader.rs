//! `THeaderTransport` framing: parsing the header block (protocol id,
//! transforms, `INFO_KEYVALUE` headers) and writing it.
//!
//! ```text
//! 0..4    frame length (i32, counts everything after it)
//! 4..6    magic 0x0FFF
//! 6..8    flags
//! 8..12   sequence number (i32)
//! 12..14  header block size in 4-byte words (u16)
//! 14..    header block: varint protocol id (0 binary, 2 compact),
//!         varint transform count, transform ids,
//!         info blocks (varint type; type 1 = INFO_KEYVALUE: varint count,
//!         then count × (varint-length key, varint-length value)),
//!         zero padding to a multiple of 4
//! then    the payload: one binary or compact message
//! ```

use std::ops::Range;

use bytes::{BufMut, Bytes};

use super::cursor::{Cursor, put_varint, varint_len};
use super::error::ReadError;
use super::wire::Protocol;

/// The magic at bytes 4..6 of a THeader frame.
pub const MAGIC: u16 = 0x0FFF;
/// Offset of the header block in the frame (after length, magic, flags, seqid, size).
pub const BLOCK_OFFSET: usize = 14;
/// Info block type of key/value headers.
pub const INFO_KEYVALUE: u64 = 1;
/// Most key/value headers accepted in one frame.
pub const MAX_HEADERS: usize = 1024;
/// Largest header block the 16-bit word count can describe.
pub const MAX_BLOCK_LEN: usize = u16::MAX as usize * 4;

/// Why a THeader frame was refused, beyond plain malformation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum THeaderError {
    /// The frame does not follow the format.
    #[error("malformed THeader: {0}")]
    Malformed(String),
    /// The payload is transformed (zlib, snappy, ...): the proxy does not
    /// decompress, so it cannot read or route the message.
    #[error(
        "THeader transforms are not supported (transform id {id}); send the payload untransformed"
    )]
    Transform {
        /// The first transform's id (1 zlib, 2 hmac, 3 snappy).
        id: u64,
        /// The inner protocol, to answer in.
        protocol: Protocol,
    },
    /// The inner protocol is neither binary (0) nor compact (2).
    #[error("THeader protocol id {0} is not supported (binary 0 and compact 2 are)")]
    Protocol(u64),
}

impl From<ReadError> for THeaderError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Incomplete { .. } => {
                THeaderError::Malformed("header block truncated".into())
            }
            ReadError::Malformed(m) | ReadError::TooLarge(m) => THeaderError::Malformed(m),
        }
    }
}

/// What a THeader frame's header carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct THeaderInfo {
    /// The flags field.
    pub flags: u16,
    /// The sequence number field.
    pub seqid: i32,
    /// The whole header block (protocol id through padding), in the frame.
    pub block: Range<usize>,
    /// The inner protocol.
    pub protocol: Protocol,
    /// Key/value info headers, slices of the frame, in wire order.
    pub headers: Vec<(Bytes, Bytes)>,
}

/// The fixed fields at bytes 6..14, readable before the block is checked: (flags, seqid, block length).
pub fn fixed_fields(frame: &[u8]) -> Option<(u16, i32, usize)> {
    let mut c = Cursor::at(frame, 6);
    let flags = c.u16().ok()?;
    let seqid = c.i32().ok()?;
    let words = c.u16().ok()?;
    Some((flags, seqid, usize::from(words) * 4))
}

/// Checks what the first bytes of a THeader frame (length prefix
/// included) already show, before the rest arrives: a header block larger
/// than the frame its length prefix declares is refused at once. `Ok`
/// when it fits, or when fewer than the 14 fixed bytes are there yet.
pub fn check_prefix(prefix: &[u8]) -> Result<(), THeaderError> {
    let (Some(len), Some((_, _, block_len))) = (prefix.get(..4), fixed_fields(prefix)) else {
        return Ok(());
    };
    let frame_len = 4 + u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if BLOCK_OFFSET + block_len > frame_len {
        return Err(THeaderError::Malformed(format!(
            "header block of {block_len} bytes exceeds the {frame_len}-byte frame"
        )));
    }
    Ok(())
}

/// Parses the header of a whole THeader `frame` (length prefix included).
/// Returns the info and where the payload starts.
pub fn parse(frame: &Bytes) -> Result<(THeaderInfo, usize), THeaderError> {
    let (flags, seqid, block_len) = fixed_fields(frame)
        .ok_or_else(|| THeaderError::Malformed("frame shorter than its fixed header".into()))?;
    let end = BLOCK_OFFSET + block_len;
    if end > frame.len() {
        return Err(THeaderError::Malformed(format!(
            "header block of {block_len} bytes exceeds the {}-byte frame",
            frame.len()
        )));
    }
    let block = &frame[..end];
    let mut c = Cursor::at(block, BLOCK_OFFSET);
    let protocol = match c.varint(5)? {
        0 => Protocol::Binary { strict: true },
        2 => Protocol::Compact,
        other => return Err(THeaderError::Protocol(other)),
    };
    let transforms = c.varint(5)?;
    if transforms > 0 {
        let id = c.varint(5).unwrap_or(0);
        return Err(THeaderError::Transform { id, protocol });
    }
    let mut headers = Vec::new();
    while c.remaining() > 0 {
        if c.varint(5)? != INFO_KEYVALUE {
            // Padding (0) or an info type we do not know: the rest is skipped, as every implementation does.
            break;
        }
        let n = c.varint32()? as usize;
        if n > MAX_HEADERS || n.saturating_mul(2) > c.remaining() {
            return Err(THeaderError::Malformed(format!(
                "{n} info headers do not fit the header block"
            )));
        }
        for _ in 0..n {
            let k = string(&mut c)?;
            let v = string(&mut c)?;
            headers.push((frame.slice(k), frame.slice(v)));
        }
    }
    Ok((
        THeaderInfo {
            flags,
            seqid,
            block: BLOCK_OFFSET..end,
            protocol,
            headers,
        },
        end,
    ))
}

fn string(c: &mut Cursor<'_>) -> Result<Range<usize>, ReadError> {
    let len = c.varint32()? as usize;
    let start = c.pos();
    c.take(len).map_err(|_| {
        ReadError::malformed(format!(
            "info header of {len} bytes overruns the header block"
        ))
    })?;
    Ok(start..start + len)
}

/// The encoded length of a header block (padding included).
pub fn block_len<K: AsRef<[u8]>, V: AsRef<[u8]>>(protocol: Protocol, headers: &[(K, V)]) -> usize {
    let mut n = varint_len(protocol.theader_id()) + 1;
    if !headers.is_empty() {
        n += varint_len(INFO_KEYVALUE) + varint_len(headers.len() as u64);
        for (k, v) in headers {
            let (k, v) = (k.as_ref(), v.as_ref());
            n += varint_len(k.len() as u64) + k.len() + varint_len(v.len() as u64) + v.len();
        }
    }
    n.div_ceil(4) * 4
}

/// Writes a header block: protocol id, no transforms, the headers, padding.
/// `len` must be [`block_len`] of the same arguments.
pub fn write_block<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    dst: &mut impl BufMut,
    protocol: Protocol,
    headers: &[(K, V)],
    len: usize,
) {
    let mut written = varint_len(protocol.theader_id()) + 1;
    put_varint(dst, protocol.theader_id());
    dst.put_u8(0);
    if !headers.is_empty() {
        put_varint(dst, INFO_KEYVALUE);
        put_varint(dst, headers.len() as u64);
        written += varint_len(INFO_KEYVALUE) + varint_len(headers.len() as u64);
        for (k, v) in headers {
            for s in [k.as_ref(), v.as_ref()] {
                put_varint(dst, s.len() as u64);
                dst.put_slice(s);
                written += varint_len(s.len() as u64) + s.len();
            }
        }
    }
    dst.put_bytes(0, len.saturating_sub(written));
}

/// Writes the fixed part of a THeader frame (length through block size).
/// `block_len` must be a multiple of 4 and at most [`MAX_BLOCK_LEN`].
pub fn write_fixed(
    dst: &mut impl BufMut,
    payload_len: usize,
    block_len: usize,
    flags: u16,
    seqid: i32,
) {
    let total = 10 + block_len + payload_len;
    dst.put_u32(u32::try_from(total).unwrap_or(u32::MAX));
    dst.put_u16(MAGIC);
    dst.put_u16(flags);
    dst.put_i32(seqid);
    dst.put_u16(u16::try_from(block_len / 4).unwrap_or(u16::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 14 bytes of a THeader frame of `len` bytes (after the
    /// prefix) whose header block is `words` × 4 bytes.
    fn fixed(len: u32, words: u16) -> Vec<u8> {
        let mut v = len.to_be_bytes().to_vec();
        v.extend_from_slice(&MAGIC.to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes());
        v.extend_from_slice(&7i32.to_be_bytes());
        v.extend_from_slice(&words.to_be_bytes());
        v
    }

    #[test]
    fn a_header_block_larger_than_its_frame_is_seen_in_the_first_bytes() {
        // 10 fixed bytes + a 4-byte block + a 20-byte payload: fits.
        assert_eq!(check_prefix(&fixed(34, 1)), Ok(()));
        // Exactly the frame: fits.
        assert_eq!(check_prefix(&fixed(14, 1)), Ok(()));
        // One word more than the frame holds.
        let e = check_prefix(&fixed(14, 2)).unwrap_err();
        assert!(
            matches!(&e, THeaderError::Malformed(m) if m.contains("8 bytes exceeds the 18-byte frame")),
            "{e}"
        );
        assert!(check_prefix(&fixed(100, u16::MAX)).is_err());
        // Too few bytes to tell yet.
        assert_eq!(check_prefix(&fixed(14, 2)[..13]), Ok(()));
        assert_eq!(check_prefix(&[]), Ok(()));
    }
}
