//! The Thrift wire pieces the client and the echo server share: framed and
//! THeader framing, strict binary and compact message headers, one string
//! field.
//!
//! Layout reminders (offsets from the start of a frame, after its 4-byte
//! length): framed binary starts `80 01 00 <type>`; framed compact starts
//! `82 <type<<5 | 1>`; THeader starts `0f ff <flags:2> <seq:4> <words:2>`
//! followed by `words * 4` header bytes (protocol id varint, transform count
//! varint, info headers, padding) and then the message.

/// Message type of a call.
pub const CALL: u8 = 1;
/// Message type of a reply.
pub const REPLY: u8 = 2;
/// Message type of an exception.
pub const EXCEPTION: u8 = 3;

/// The message encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// Strict `TBinaryProtocol`.
    Binary,
    /// `TCompactProtocol`.
    Compact,
}

/// The framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `TFramedTransport`: a 4-byte length, then the message.
    Framed,
    /// `THeaderTransport` without transforms.
    Header,
}

/// Appends an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned varint at `*at`, advancing it.
pub fn get_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Appends a message header (`type`, `name`, `seqid`) in `proto`.
pub fn put_message_header(out: &mut Vec<u8>, proto: Proto, kind: u8, name: &[u8], seqid: i32) {
    match proto {
        Proto::Binary => {
            out.extend_from_slice(&[0x80, 0x01, 0x00, kind]);
            out.extend_from_slice(&(name.len() as i32).to_be_bytes());
            out.extend_from_slice(name);
            out.extend_from_slice(&seqid.to_be_bytes());
        }
        Proto::Compact => {
            out.extend_from_slice(&[0x82, (kind << 5) | 1]);
            put_varint(out, u64::from(seqid as u32));
            put_varint(out, name.len() as u64);
            out.extend_from_slice(name);
        }
    }
}

/// Appends a string field `id` holding `value`, then the struct's stop byte.
pub fn put_string_field_and_stop(out: &mut Vec<u8>, proto: Proto, id: i16, value: &[u8]) {
    match proto {
        Proto::Binary => {
            out.push(11);
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&(value.len() as i32).to_be_bytes());
        }
        Proto::Compact => {
            if (1..=15).contains(&id) {
                out.push(((id as u8) << 4) | 8);
            } else {
                out.push(8);
                put_varint(
                    out,
                    u64::from((((id as i32) << 1) ^ ((id as i32) >> 31)) as u32),
                );
            }
            put_varint(out, value.len() as u64);
        }
    }
    out.extend_from_slice(value);
    out.push(0);
}

/// A decoded message header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHeader {
    /// The encoding.
    pub proto: Proto,
    /// Call, reply, exception or oneway.
    pub kind: u8,
    /// The method name's byte range.
    pub name: std::ops::Range<usize>,
    /// The sequence id.
    pub seqid: i32,
    /// Where the argument/result struct starts.
    pub body: usize,
}

/// Reads the message header at `at` (strict binary or compact).
pub fn message_header(buf: &[u8], at: usize) -> Option<MessageHeader> {
    match *buf.get(at)? {
        0x80 => {
            let kind = *buf.get(at + 3)?;
            let len = i32::from_be_bytes(buf.get(at + 4..at + 8)?.try_into().ok()?);
            let start = at + 8;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            let seqid = i32::from_be_bytes(buf.get(end..end + 4)?.try_into().ok()?);
            Some(MessageHeader {
                proto: Proto::Binary,
                kind,
                name: start..end,
                seqid,
                body: end + 4,
            })
        }
        0x82 => {
            let kind = *buf.get(at + 1)? >> 5;
            let mut p = at + 2;
            let seqid = get_varint(buf, &mut p)? as u32 as i32;
            let len = usize::try_from(get_varint(buf, &mut p)?).ok()?;
            let end = p.checked_add(len)?;
            (end <= buf.len()).then_some(MessageHeader {
                proto: Proto::Compact,
                kind,
                name: p..end,
                seqid,
                body: end,
            })
        }
        _ => None,
    }
}

/// The byte range of the string field that opens the struct at `at`.
pub fn first_string_field(buf: &[u8], proto: Proto, at: usize) -> Option<std::ops::Range<usize>> {
    let mut p = at;
    let len = match proto {
        Proto::Binary => {
            if *buf.get(p)? != 11 {
                return None;
            }
            p += 3;
            let n = i32::from_be_bytes(buf.get(p..p + 4)?.try_into().ok()?);
            p += 4;
            usize::try_from(n).ok()?
        }
        Proto::Compact => {
            let h = *buf.get(p)?;
            if h & 0x0f != 8 {
                return None;
            }
            p += 1;
            if h >> 4 == 0 {
                get_varint(buf, &mut p)?;
            }
            usize::try_from(get_varint(buf, &mut p)?).ok()?
        }
    };
    let end = p.checked_add(len)?;
    (end <= buf.len()).then_some(p..end)
}

/// Where the message starts inside a THeader frame body (`frame` excludes
/// the 4-byte length), and the header's protocol.
pub fn theader_payload(frame: &[u8]) -> Option<(usize, Proto)> {
    if frame.get(0..2)? != [0x0f, 0xff] {
        return None;
    }
    let words = usize::from(u16::from_be_bytes([*frame.get(8)?, *frame.get(9)?]));
    let mut p = 10;
    let proto = match get_varint(frame, &mut p)? {
        0 => Proto::Binary,
        2 => Proto::Compact,
        _ => return None,
    };
    let start = 10 + words * 4;
    (start <= frame.len()).then_some((start, proto))
}

/// Appends a THeader prefix (after the frame length) for `proto` with
/// sequence number `seq` and no transforms or info headers.
pub fn put_theader_prefix(out: &mut Vec<u8>, proto: Proto, seq: u32) {
    out.extend_from_slice(&[0x0f, 0xff, 0x00, 0x00]);
    out.extend_from_slice(&seq.to_be_bytes());
    // protocol id, transform count, padded to 4 bytes: one word.
    out.extend_from_slice(&1u16.to_be_bytes());
    let id = if proto == Proto::Binary { 0 } else { 2 };
    out.extend_from_slice(&[id, 0, 0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        for proto in [Proto::Binary, Proto::Compact] {
            let mut out = Vec::new();
            put_message_header(&mut out, proto, CALL, b"echo", 77_777);
            put_string_field_and_stop(&mut out, proto, 1, b"payload");
            let h = message_header(&out, 0).unwrap();
            assert_eq!((h.kind, h.seqid), (CALL, 77_777));
            assert_eq!(&out[h.name.clone()], b"echo");
            let f = first_string_field(&out, proto, h.body).unwrap();
            assert_eq!(&out[f.clone()], b"payload");
            assert_eq!(out[f.end], 0);
            let mut zero = Vec::new();
            put_string_field_and_stop(&mut zero, proto, 0, b"x");
            assert_eq!(
                first_string_field(&zero, proto, 0).map(|r| r.len()),
                Some(1)
            );
        }
        let mut t = Vec::new();
        put_theader_prefix(&mut t, Proto::Compact, 9);
        t.push(0x82);
        assert_eq!(theader_payload(&t), Some((14, Proto::Compact)));
    }
}
