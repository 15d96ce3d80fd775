//! Writing one message in a chosen transport and protocol: the transport's
//! framing, a fresh message header (name, type, seqid), then the struct
//! bytes. Every encode goes through here: with an unchanged format this is
//! one copy of the struct with the seqid rewritten.

use bytes::{BufMut, Bytes, BytesMut};

use super::theader::{self, MAX_BLOCK_LEN};
use super::wire::{MessageType, Protocol, Transport};
use super::{binary, compact};

/// The THeader header block to write.
#[derive(Debug, Clone, Copy)]
pub enum Block<'a> {
    /// An existing block, copied as is (it is already padded).
    Verbatim(&'a [u8]),
    /// A block built from these key/value headers.
    Build(&'a [(Bytes, Bytes)]),
}

/// Where and how one message is written.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The framing.
    pub transport: Transport,
    /// The message header's protocol (must match the struct bytes).
    pub protocol: Protocol,
    /// The method name.
    pub name: &'a [u8],
    /// The message type.
    pub message_type: MessageType,
    /// The message's seqid.
    pub seqid: i32,
    /// THeader only: the flags field.
    pub flags: u16,
    /// THeader only: the frame's sequence number.
    pub header_seqid: i32,
    /// THeader only: the header block.
    pub block: Block<'a>,
}

/// Why a message could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The frame would exceed what a 32-bit length can carry.
    #[error("encoded thrift message of {0} bytes is too large for a frame")]
    TooLarge(usize),
    /// The THeader headers exceed what the block size field can carry.
    #[error("THeader headers of {0} bytes exceed the {MAX_BLOCK_LEN}-byte header block")]
    BlockTooLarge(usize),
}

/// The length of a message header in `protocol`.
pub fn message_header_len(protocol: Protocol, name: &[u8], seqid: i32) -> usize {
    match protocol {
        Protocol::Binary { strict } => binary::header_len(strict, name),
        Protocol::Compact => compact::header_len(name, seqid),
    }
}

/// Writes a message header in `protocol`.
pub fn write_message_header(
    dst: &mut impl BufMut,
    protocol: Protocol,
    name: &[u8],
    message_type: MessageType,
    seqid: i32,
) {
    match protocol {
        Protocol::Binary { strict } => binary::write_header(dst, strict, name, message_type, seqid),
        Protocol::Compact => compact::write_header(dst, name, message_type, seqid),
    }
}

fn frame_len(n: usize) -> Result<u32, EnvelopeError> {
    u32::try_from(n)
        .ok()
        .filter(|&l| l <= i32::MAX as u32)
        .ok_or(EnvelopeError::TooLarge(n))
}

/// Writes `env` with `body` (the struct after the message header) to `dst`.
pub fn write(dst: &mut BytesMut, env: &Envelope<'_>, body: &[u8]) -> Result<(), EnvelopeError> {
    let message_len = message_header_len(env.protocol, env.name, env.seqid) + body.len();
    match env.transport {
        Transport::Unframed => dst.reserve(message_len),
        Transport::Framed => {
            let len = frame_len(message_len)?;
            dst.reserve(4 + message_len);
            dst.put_u32(len);
        }
        Transport::Header => {
            let block_len = match env.block {
                Block::Verbatim(b) => b.len(),
                Block::Build(h) => theader::block_len(env.protocol, h),
            };
            if block_len > MAX_BLOCK_LEN {
                return Err(EnvelopeError::BlockTooLarge(block_len));
            }
            frame_len(10 + block_len + message_len)?;
            dst.reserve(14 + block_len + message_len);
            theader::write_fixed(dst, message_len, block_len, env.flags, env.header_seqid);
            match env.block {
                Block::Verbatim(b) => dst.put_slice(b),
                Block::Build(h) => theader::write_block(dst, env.protocol, h, block_len),
            }
        }
    }
    write_message_header(dst, env.protocol, env.name, env.message_type, env.seqid);
    dst.put_slice(body);
    Ok(())
}
