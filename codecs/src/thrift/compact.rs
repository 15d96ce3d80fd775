//! `TCompactProtocol`: message headers, skipping values, and writing the
//! few things the proxy writes itself.
//!
//! Header: `u8 0x82` (protocol id), `u8 (type << 5) | 1` (type, version),
//! seqid as an unsigned varint, name length as a varint, name.

use bytes::BufMut;

use super::cursor::{Cursor, put_varint, varint_len, zigzag32};
use super::error::ReadError;
use super::header::{MAX_NAME_LEN, MessageHeader};
use super::wire::{MAX_DEPTH, MessageType, Protocol};

/// The first byte of every compact message.
pub const PROTOCOL_ID: u8 = 0x82;
/// The protocol version in the second byte's low 5 bits.
pub const VERSION: u8 = 1;
/// Mask of the version in the second byte.
pub const VERSION_MASK: u8 = 0x1f;
/// How far the message type is shifted in the second byte.
pub const TYPE_SHIFT: u8 = 5;

/// Compact type ids (they differ from the binary protocol's).
pub mod ctype {
    /// End of a struct's fields.
    pub const STOP: u8 = 0;
    /// `bool` true (in a field header; any bool element type in containers).
    pub const BOOL_TRUE: u8 = 1;
    /// `bool` false (in a field header).
    pub const BOOL_FALSE: u8 = 2;
    /// `byte`.
    pub const BYTE: u8 = 3;
    /// `i16` (zigzag varint).
    pub const I16: u8 = 4;
    /// `i32` (zigzag varint).
    pub const I32: u8 = 5;
    /// `i64` (zigzag varint).
    pub const I64: u8 = 6;
    /// `double` (8 bytes, little-endian).
    pub const DOUBLE: u8 = 7;
    /// `binary` / `string` (varint length, bytes).
    pub const BINARY: u8 = 8;
    /// `list`.
    pub const LIST: u8 = 9;
    /// `set`.
    pub const SET: u8 = 10;
    /// `map`.
    pub const MAP: u8 = 11;
    /// `struct`.
    pub const STRUCT: u8 = 12;
    /// `uuid` (16 bytes).
    pub const UUID: u8 = 13;
}

/// Reads a compact message header starting at `start` in `buf`.
pub fn read_header(buf: &[u8], start: usize) -> Result<MessageHeader, ReadError> {
    let mut c = Cursor::at(buf, start);
    let id = c.u8()?;
    if id != PROTOCOL_ID {
        return Err(ReadError::malformed(format!(
            "bad compact protocol id {id:#04x}"
        )));
    }
    let vt = c.u8()?;
    if vt & VERSION_MASK != VERSION {
        return Err(ReadError::malformed(format!(
            "unknown compact protocol version {}",
            vt & VERSION_MASK
        )));
    }
    let t = vt >> TYPE_SHIFT;
    let message_type = MessageType::from_wire(t)
        .ok_or_else(|| ReadError::malformed(format!("unknown thrift message type {t}")))?;
    let seqid = c.varint32()? as i32;
    let len = c.varint32()? as usize;
    if len > MAX_NAME_LEN {
        return Err(ReadError::TooLarge(format!(
            "method name of {len} bytes exceeds {MAX_NAME_LEN}"
        )));
    }
    let name_start = c.pos();
    c.skip(len)?;
    Ok(MessageHeader {
        protocol: Protocol::Compact,
        name: name_start..name_start + len,
        message_type,
        seqid,
        body_start: c.pos(),
    })
}

/// The length of a header written by [`write_header`].
pub fn header_len(name: &[u8], seqid: i32) -> usize {
    2 + varint_len(u64::from(seqid as u32)) + varint_len(name.len() as u64) + name.len()
}

/// Writes a message header.
pub fn write_header(dst: &mut impl BufMut, name: &[u8], message_type: MessageType, seqid: i32) {
    dst.put_u8(PROTOCOL_ID);
    dst.put_u8((message_type.wire() << TYPE_SHIFT) | VERSION);
    put_varint(dst, u64::from(seqid as u32));
    put_varint(dst, name.len() as u64);
    dst.put_slice(name);
}

fn fixed_size(t: u8) -> Option<usize> {
    match t {
        ctype::BOOL_TRUE | ctype::BOOL_FALSE | ctype::BYTE => Some(1),
        ctype::DOUBLE => Some(8),
        ctype::UUID => Some(16),
        _ => None,
    }
}

fn count(c: &mut Cursor<'_>, n: u32) -> Result<usize, ReadError> {
    let n = n as usize;
    // Every element takes at least one byte.
    if n > c.remaining() {
        return Err(ReadError::Incomplete {
            at_least: c.pos().saturating_add(n),
        });
    }
    Ok(n)
}

/// Reads a list or set header: (element type, size).
pub fn read_list_header(c: &mut Cursor<'_>) -> Result<(u8, usize), ReadError> {
    let b = c.u8()?;
    let small = u32::from(b >> 4);
    let size = if small == 15 { c.varint32()? } else { small };
    Ok((b & 0x0f, count(c, size)?))
}

/// Reads a map header: (key type, value type, size).
pub fn read_map_header(c: &mut Cursor<'_>) -> Result<(u8, u8, usize), ReadError> {
    let size = c.varint32()?;
    if size == 0 {
        return Ok((0, 0, 0));
    }
    let kv = c.u8()?;
    Ok((kv >> 4, kv & 0x0f, count(c, size)?))
}

/// Skips one value of compact type `t`.
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
        ctype::I16 | ctype::I32 | ctype::I64 => c.varint(10).map(|_| ()),
        ctype::BINARY => {
            let len = c.varint32()? as usize;
            c.skip(len)
        }
        ctype::STRUCT => skip_struct(c, depth + 1),
        ctype::LIST | ctype::SET => {
            let (e, n) = read_list_header(c)?;
            if let Some(size) = fixed_size(e) {
                return c.skip(n * size);
            }
            for _ in 0..n {
                skip(c, e, depth + 1)?;
            }
            Ok(())
        }
        ctype::MAP => {
            let (k, v, n) = read_map_header(c)?;
            for _ in 0..n {
                skip(c, k, depth + 1)?;
                skip(c, v, depth + 1)?;
            }
            Ok(())
        }
        other => Err(ReadError::malformed(format!(
            "unknown compact field type {other}"
        ))),
    }
}

/// Reads a field header: `None` at STOP, else (compact type, field id delta or explicit id).
pub fn read_field_header(c: &mut Cursor<'_>, last_id: i16) -> Result<Option<(u8, i16)>, ReadError> {
    let b = c.u8()?;
    if b == ctype::STOP {
        return Ok(None);
    }
    let t = b & 0x0f;
    let delta = b >> 4;
    let id = if delta == 0 {
        let v = c.varint(5)?;
        let v = u32::try_from(v).map_err(|_| ReadError::malformed("field id varint too large"))?;
        super::cursor::unzigzag32(v) as i16
    } else {
        last_id.wrapping_add(i16::from(delta))
    };
    Ok(Some((t, id)))
}

/// Skips a struct's fields up to and including its STOP byte.
pub fn skip_struct(c: &mut Cursor<'_>, depth: usize) -> Result<(), ReadError> {
    if depth >= MAX_DEPTH {
        return Err(ReadError::TooLarge(format!(
            "nesting deeper than {MAX_DEPTH}"
        )));
    }
    let mut last = 0;
    while let Some((t, id)) = read_field_header(c, last)? {
        last = id;
        if t != ctype::BOOL_TRUE && t != ctype::BOOL_FALSE {
            skip(c, t, depth)?;
        }
    }
    Ok(())
}

/// Writes a field header with the short (delta) form when it fits.
pub fn write_field_header(dst: &mut impl BufMut, t: u8, id: i16, last_id: i16) {
    let delta = i32::from(id) - i32::from(last_id);
    if (1..=15).contains(&delta) {
        dst.put_u8(((delta as u8) << 4) | t);
    } else {
        dst.put_u8(t);
        put_varint(dst, u64::from(zigzag32(i32::from(id))));
    }
}

/// Writes a `TApplicationException` struct: `{1: string message, 2: i32 type}`.
pub fn write_application_exception(dst: &mut impl BufMut, message: &str, kind: i32) {
    write_field_header(dst, ctype::BINARY, 1, 0);
    put_varint(dst, message.len() as u64);
    dst.put_slice(message.as_bytes());
    write_field_header(dst, ctype::I32, 2, 1);
    put_varint(dst, u64::from(zigzag32(kind)));
    dst.put_u8(ctype::STOP);
}

/// The length written by [`write_application_exception`].
pub fn application_exception_len(message: &str, kind: i32) -> usize {
    1 + varint_len(message.len() as u64)
        + message.len()
        + 1
        + varint_len(u64::from(zigzag32(kind)))
        + 1
}
