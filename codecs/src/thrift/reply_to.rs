//! Who a decode-error reply goes to.
//!
//! [`metaproxy_core::Codec::decode_error_reply`] sees only the
//! [`metaproxy_core::CodecError`], not the connection's transport and
//! protocol, so the decoder packs them, the seqid and the exception type
//! into the error's 64-bit `request_id`:
//!
//! ```text
//! bit 63      set: the id was packed by this module
//! bits 48..56 TApplicationException type
//! bits 40..48 protocol (0 binary strict, 1 binary non-strict, 2 compact)
//! bits 32..40 transport (0 framed, 1 unframed, 2 header)
//! bits 0..32  seqid
//! ```

use super::wire::{Protocol, Transport};

const MARK: u64 = 1 << 63;

/// The addressing of an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    /// The client's transport.
    pub transport: Transport,
    /// The client's protocol.
    pub protocol: Protocol,
    /// The seqid to answer with.
    pub seqid: i32,
    /// The `TApplicationException` type.
    pub exception_type: i32,
}

impl ReplyTo {
    /// Packs into a `request_id`.
    pub fn pack(self) -> u64 {
        let t = match self.transport {
            Transport::Framed => 0u64,
            Transport::Unframed => 1,
            Transport::Header => 2,
        };
        let p = match self.protocol {
            Protocol::Binary { strict: true } => 0u64,
            Protocol::Binary { strict: false } => 1,
            Protocol::Compact => 2,
        };
        let e = u64::from(self.exception_type.clamp(0, 0xff) as u8);
        MARK | (e << 48) | (p << 40) | (t << 32) | u64::from(self.seqid as u32)
    }

    /// Unpacks a `request_id` made by [`ReplyTo::pack`].
    pub fn unpack(id: u64) -> Option<Self> {
        if id & MARK == 0 {
            return None;
        }
        let transport = match (id >> 32) & 0xff {
            0 => Transport::Framed,
            1 => Transport::Unframed,
            2 => Transport::Header,
            _ => return None,
        };
        let protocol = match (id >> 40) & 0xff {
            0 => Protocol::Binary { strict: true },
            1 => Protocol::Binary { strict: false },
            2 => Protocol::Compact,
            _ => return None,
        };
        Some(Self {
            transport,
            protocol,
            seqid: id as u32 as i32,
            exception_type: ((id >> 48) & 0xff) as i32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks() {
        let r = ReplyTo {
            transport: Transport::Header,
            protocol: Protocol::Compact,
            seqid: -7,
            exception_type: 8,
        };
        assert_eq!(ReplyTo::unpack(r.pack()), Some(r));
        assert_eq!(ReplyTo::unpack(42), None);
    }
}
