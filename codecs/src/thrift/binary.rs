//! `TBinaryProtocol`: message headers (strict and non-strict), skipping
//! values, and writing the few things the proxy writes itself.
//!
//! Strict header: `i32 0x8001_00TT` (version, type), `i32` name length, name,
//! `i32` seqid. Non-strict header: `i32` name length, name, `u8` type, `i32` seqid.

use bytes::BufMut;

use super::cursor::Cursor;
use super::error::ReadError;
use super::header::{MAX_NAME_LEN, MessageHeader};
use super::wire::{MAX_DEPTH, MessageType, Protocol, ttype};

/// The version word's high half in a strict header.
pub const VERSION_1: u32 = 0x8001_0000;
/// Mask of the version in the first word.
pub const VERSION_MASK: u32 = 0xffff_0000;

fn message_type(v: u8) -> Result<MessageType, ReadError> {
    MessageType::from_wire(v)
        .ok_or_else(|| ReadError::malformed(format!("unknown thrift message type {v}")))
}

fn name_len(len: i32) -> Result<usize, ReadError> {
    let len = usize::try_from(len)
        .map_err(|_| ReadError::malformed(format!("negative method name length {len}")))?;
    if len > MAX_NAME_LEN {
        return Err(ReadError::TooLarge(format!(
            "method name of {len} bytes exceeds {MAX_NAME_LEN}"
        )));
    }
    Ok(len)
}

/// Reads a binary message header starting at `start` in `buf`.
pub fn read_header(buf: &[u8], start: usize) -> Result<MessageHeader, ReadError> {
    let mut c = Cursor::at(buf, start);
    let word = c.i32()?;
    if word < 0 {
        let word = word as u32;
        if word & VERSION_MASK != VERSION_1 {
            return Err(ReadError::malformed(format!(
                "unknown binary protocol version {:#010x}",
                word & VERSION_MASK
            )));
        }
        let message_type = message_type((word & 0xff) as u8)?;
        let len = name_len(c.i32()?)?;
        let name_start = c.pos();
        c.skip(len)?;
        let seqid = c.i32()?;
        return Ok(MessageHeader {
            protocol: Protocol::Binary { strict: true },
            name: name_start..name_start + len,
            message_type,
            seqid,
            body_start: c.pos(),
        });
    }
    let len = name_len(word)?;
    let name_start = c.pos();
    c.skip(len)?;
    let message_type = message_type(c.u8()?)?;
    let seqid = c.i32()?;
    Ok(MessageHeader {
        protocol: Protocol::Binary { strict: false },
        name: name_start..name_start + len,
        message_type,
        seqid,
        body_start: c.pos(),
    })
}

/// The length of a header written by [`write_header`].
pub fn header_len(strict: bool, name: &[u8]) -> usize {
    if strict {
        12 + name.len()
    } else {
        9 + name.len()
    }
}

/// Writes a message header.
pub fn write_header(
    dst: &mut impl BufMut,
    strict: bool,
    name: &[u8],
    message_type: MessageType,
    seqid: i32,
) {
    let len = i32::try_from(name.len()).unwrap_or(i32::MAX);
    if strict {
        dst.put_u32(VERSION_1 | u32::from(message_type.wire()));
        dst.put_i32(len);
        dst.put_slice(name);
    } else {
        dst.put_i32(len);
        dst.put_slice(name);
        dst.put_u8(message_type.wire());
    }
    dst.put_i32(seqid);
}

/// The fixed encoded size of a value of type `t`, if it has one.
fn fixed_size(t: u8) -> Option<usize> {
    match t {
        ttype::BOOL | ttype::BYTE => Some(1),
        ttype::I16 => Some(2),
        ttype::I32 => Some(4),
        ttype::DOUBLE | ttype::I64 => Some(8),
        ttype::UUID => Some(16),
        _ => None,
    }
}

/// The smallest encoded size of a value of type `t` (used to bound element counts).
fn min_size(t: u8) -> usize {
    match t {
        ttype::STRING => 4,
        ttype::STRUCT => 1,
        ttype::MAP => 6,
        ttype::SET | ttype::LIST => 5,
        other => fixed_size(other).unwrap_or(1),
    }
}

fn count(c: &mut Cursor<'_>, per_element: usize) -> Result<usize, ReadError> {
    let n = c.i32()?;
    let n = usize::try_from(n)
        .map_err(|_| ReadError::malformed(format!("negative container size {n}")))?;
    let bytes = n
        .checked_mul(per_element)
        .ok_or_else(|| ReadError::TooLarge("container size overflows".into()))?;
    if bytes > c.remaining() {
        // Each element takes at least `per_element` bytes: ask for them all at once.
        return Err(ReadError::Incomplete {
            at_least: c.pos().saturating_add(bytes),
        });
    }
    Ok(n)
}

/// Skips one value of type `t`.
pub fn skip(c: &mut Cursor<'_>, t: u8, depth: usize) -> Result<(), ReadError> {
    if let Some(n) = fixed_size(t) {
        return c.skip(n);
    }
    if depth >= MAX_DEPTH {
        return Err(ReadError::TooLarge(format!(
            "nesting deeper than {MAX_DEPTH}"
        )));
    }
    match t {
        ttype::STRING => {
            let len = c.i32()?;
            let len = usize::try_from(len)
                .map_err(|_| ReadError::malformed(format!("negative string length {len}")))?;
            c.skip(len)
        }
        ttype::STRUCT => skip_struct(c, depth + 1),
        ttype::MAP => {
            let (k, v) = (c.u8()?, c.u8()?);
            let n = count(c, min_size(k) + min_size(v))?;
            for _ in 0..n {
                skip(c, k, depth + 1)?;
                skip(c, v, depth + 1)?;
            }
            Ok(())
        }
        ttype::SET | ttype::LIST => {
            let e = c.u8()?;
            let n = count(c, min_size(e))?;
            if let Some(size) = fixed_size(e) {
                return c.skip(n * size);
            }
            for _ in 0..n {
                skip(c, e, depth + 1)?;
            }
            Ok(())
        }
        other => Err(ReadError::malformed(format!(
            "unknown binary field type {other}"
        ))),
    }
}

/// Skips a struct's fields up to and including its STOP byte.
pub fn skip_struct(c: &mut Cursor<'_>, depth: usize) -> Result<(), ReadError> {
    if depth >= MAX_DEPTH {
        return Err(ReadError::TooLarge(format!(
            "nesting deeper than {MAX_DEPTH}"
        )));
    }
    loop {
        let t = c.u8()?;
        if t == ttype::STOP {
            return Ok(());
        }
        c.skip(2)?;
        skip(c, t, depth)?;
    }
}

/// Writes a field header.
pub fn write_field_header(dst: &mut impl BufMut, t: u8, id: i16) {
    dst.put_u8(t);
    dst.put_i16(id);
}

/// Writes a `TApplicationException` struct: `{1: string message, 2: i32 type}`.
pub fn write_application_exception(dst: &mut impl BufMut, message: &str, kind: i32) {
    write_field_header(dst, ttype::STRING, 1);
    dst.put_i32(i32::try_from(message.len()).unwrap_or(i32::MAX));
    dst.put_slice(message.as_bytes());
    write_field_header(dst, ttype::I32, 2);
    dst.put_i32(kind);
    dst.put_u8(ttype::STOP);
}

/// The length written by [`write_application_exception`].
pub fn application_exception_len(message: &str) -> usize {
    3 + 4 + message.len() + 3 + 4 + 1
}
