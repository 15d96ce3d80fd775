//! Re-encoding a struct between the binary and compact protocols, for
//! clusters that speak another protocol than the client.
//!
//! The input is a whole struct (a decoded frame's arguments or result), so
//! running out of bytes is malformed input here, not a reason to wait.
//! Every container count is checked against the bytes left before looping.

use bytes::{BufMut, BytesMut};

use super::compact::{self, ctype};
use super::cursor::{Cursor, put_varint, unzigzag32, zigzag32};
use super::error::ReadError;
use super::wire::{MAX_DEPTH, Protocol, ttype};

/// Re-encodes the struct `src` from protocol `from` to protocol `to` into `dst`.
pub fn transcode(
    src: &[u8],
    from: Protocol,
    to: Protocol,
    dst: &mut BytesMut,
) -> Result<(), ReadError> {
    let mut c = Cursor::new(src);
    let r = match (from, to) {
        (Protocol::Binary { .. }, Protocol::Compact) => b2c_struct(&mut c, dst, 0),
        (Protocol::Compact, Protocol::Binary { .. }) => c2b_struct(&mut c, dst, 0),
        _ => {
            dst.put_slice(src);
            return Ok(());
        }
    };
    match r {
        Err(ReadError::Incomplete { .. }) => Err(ReadError::malformed("struct truncated")),
        other => other,
    }
}

fn deeper(depth: usize) -> Result<usize, ReadError> {
    if depth >= MAX_DEPTH {
        return Err(ReadError::TooLarge(format!(
            "nesting deeper than {MAX_DEPTH}"
        )));
    }
    Ok(depth + 1)
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn to_ctype(t: u8) -> Result<u8, ReadError> {
    Ok(match t {
        ttype::BOOL => ctype::BOOL_TRUE,
        ttype::BYTE => ctype::BYTE,
        ttype::I16 => ctype::I16,
        ttype::I32 => ctype::I32,
        ttype::I64 => ctype::I64,
        ttype::DOUBLE => ctype::DOUBLE,
        ttype::STRING => ctype::BINARY,
        ttype::LIST => ctype::LIST,
        ttype::SET => ctype::SET,
        ttype::MAP => ctype::MAP,
        ttype::STRUCT => ctype::STRUCT,
        ttype::UUID => ctype::UUID,
        other => {
            return Err(ReadError::malformed(format!(
                "unknown binary field type {other}"
            )));
        }
    })
}

fn to_ttype(t: u8) -> Result<u8, ReadError> {
    Ok(match t {
        ctype::BOOL_TRUE | ctype::BOOL_FALSE => ttype::BOOL,
        ctype::BYTE => ttype::BYTE,
        ctype::I16 => ttype::I16,
        ctype::I32 => ttype::I32,
        ctype::I64 => ttype::I64,
        ctype::DOUBLE => ttype::DOUBLE,
        ctype::BINARY => ttype::STRING,
        ctype::LIST => ttype::LIST,
        ctype::SET => ttype::SET,
        ctype::MAP => ttype::MAP,
        ctype::STRUCT => ttype::STRUCT,
        ctype::UUID => ttype::UUID,
        other => {
            return Err(ReadError::malformed(format!(
                "unknown compact field type {other}"
            )));
        }
    })
}

fn binary_count(c: &mut Cursor<'_>) -> Result<usize, ReadError> {
    let n = c.i32()?;
    let n = usize::try_from(n)
        .map_err(|_| ReadError::malformed(format!("negative container size {n}")))?;
    if n > c.remaining() {
        return Err(ReadError::malformed(format!(
            "container of {n} elements overruns the message"
        )));
    }
    Ok(n)
}

fn b2c_struct(c: &mut Cursor<'_>, dst: &mut BytesMut, depth: usize) -> Result<(), ReadError> {
    let depth = deeper(depth)?;
    let mut last = 0i16;
    loop {
        let t = c.u8()?;
        if t == ttype::STOP {
            dst.put_u8(ctype::STOP);
            return Ok(());
        }
        let id = c.i16()?;
        if t == ttype::BOOL {
            let v = c.u8()?;
            let ct = if v != 0 {
                ctype::BOOL_TRUE
            } else {
                ctype::BOOL_FALSE
            };
            compact::write_field_header(dst, ct, id, last);
        } else {
            compact::write_field_header(dst, to_ctype(t)?, id, last);
            b2c_value(c, dst, t, depth)?;
        }
        last = id;
    }
}

fn b2c_value(c: &mut Cursor<'_>, dst: &mut BytesMut, t: u8, depth: usize) -> Result<(), ReadError> {
    match t {
        ttype::BOOL => dst.put_u8(if c.u8()? != 0 {
            ctype::BOOL_TRUE
        } else {
            ctype::BOOL_FALSE
        }),
        ttype::BYTE => dst.put_u8(c.u8()?),
        ttype::I16 => put_varint(dst, u64::from(zigzag32(i32::from(c.i16()?)))),
        ttype::I32 => put_varint(dst, u64::from(zigzag32(c.i32()?))),
        ttype::I64 => {
            let b = c.take(8)?;
            let v = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            put_varint(dst, zigzag64(v));
        }
        ttype::DOUBLE => {
            let b = c.take(8)?;
            dst.put_slice(&[b[7], b[6], b[5], b[4], b[3], b[2], b[1], b[0]]);
        }
        ttype::UUID => dst.put_slice(c.take(16)?),
        ttype::STRING => {
            let len = c.i32()?;
            let len = usize::try_from(len)
                .map_err(|_| ReadError::malformed(format!("negative string length {len}")))?;
            let s = c.take(len)?;
            put_varint(dst, len as u64);
            dst.put_slice(s);
        }
        ttype::STRUCT => b2c_struct(c, dst, depth)?,
        ttype::LIST | ttype::SET => {
            let e = c.u8()?;
            let n = binary_count(c)?;
            let ce = to_ctype(e)?;
            if n < 15 {
                dst.put_u8(((n as u8) << 4) | ce);
            } else {
                dst.put_u8(0xf0 | ce);
                put_varint(dst, n as u64);
            }
            let depth = deeper(depth)?;
            for _ in 0..n {
                b2c_value(c, dst, e, depth)?;
            }
        }
        ttype::MAP => {
            let (k, v) = (c.u8()?, c.u8()?);
            let n = binary_count(c)?;
            put_varint(dst, n as u64);
            if n > 0 {
                dst.put_u8((to_ctype(k)? << 4) | to_ctype(v)?);
            }
            let depth = deeper(depth)?;
            for _ in 0..n {
                b2c_value(c, dst, k, depth)?;
                b2c_value(c, dst, v, depth)?;
            }
        }
        other => {
            return Err(ReadError::malformed(format!(
                "unknown binary field type {other}"
            )));
        }
    }
    Ok(())
}

fn c2b_struct(c: &mut Cursor<'_>, dst: &mut BytesMut, depth: usize) -> Result<(), ReadError> {
    let depth = deeper(depth)?;
    let mut last = 0i16;
    while let Some((t, id)) = compact::read_field_header(c, last)? {
        last = id;
        let bt = to_ttype(t)?;
        dst.put_u8(bt);
        dst.put_i16(id);
        match t {
            ctype::BOOL_TRUE => dst.put_u8(1),
            ctype::BOOL_FALSE => dst.put_u8(0),
            _ => c2b_value(c, dst, t, depth)?,
        }
    }
    dst.put_u8(ttype::STOP);
    Ok(())
}

fn put_count(dst: &mut BytesMut, n: usize) -> Result<(), ReadError> {
    let n = i32::try_from(n).map_err(|_| ReadError::TooLarge("container too large".into()))?;
    dst.put_i32(n);
    Ok(())
}

fn c2b_value(c: &mut Cursor<'_>, dst: &mut BytesMut, t: u8, depth: usize) -> Result<(), ReadError> {
    match t {
        ctype::BOOL_TRUE | ctype::BOOL_FALSE => dst.put_u8(u8::from(c.u8()? == ctype::BOOL_TRUE)),
        ctype::BYTE => dst.put_u8(c.u8()?),
        ctype::I16 => {
            let v = unzigzag32(c.varint32()?);
            dst.put_i16(i16::try_from(v).map_err(|_| ReadError::malformed("i16 out of range"))?);
        }
        ctype::I32 => dst.put_i32(unzigzag32(c.varint32()?)),
        ctype::I64 => dst.put_i64(unzigzag64(c.varint(10)?)),
        ctype::DOUBLE => {
            let b = c.take(8)?;
            dst.put_slice(&[b[7], b[6], b[5], b[4], b[3], b[2], b[1], b[0]]);
        }
        ctype::UUID => dst.put_slice(c.take(16)?),
        ctype::BINARY => {
            let len = c.varint32()? as usize;
            let s = c.take(len)?;
            put_count(dst, len)?;
            dst.put_slice(s);
        }
        ctype::STRUCT => c2b_struct(c, dst, depth)?,
        ctype::LIST | ctype::SET => {
            let (e, n) = compact::read_list_header(c)?;
            dst.put_u8(to_ttype(e)?);
            put_count(dst, n)?;
            let depth = deeper(depth)?;
            for _ in 0..n {
                c2b_value(c, dst, e, depth)?;
            }
        }
        ctype::MAP => {
            let (k, v, n) = compact::read_map_header(c)?;
            if n == 0 {
                // An empty compact map carries no element types; binary needs some.
                dst.put_u8(ttype::STRING);
                dst.put_u8(ttype::STRING);
            } else {
                dst.put_u8(to_ttype(k)?);
                dst.put_u8(to_ttype(v)?);
            }
            put_count(dst, n)?;
            let depth = deeper(depth)?;
            for _ in 0..n {
                c2b_value(c, dst, k, depth)?;
                c2b_value(c, dst, v, depth)?;
            }
        }
        other => {
            return Err(ReadError::malformed(format!(
                "unknown compact field type {other}"
            )));
        }
    }
    Ok(())
}
