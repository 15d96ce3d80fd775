//! Who a decode-error reply goes to.
//!
//! [`metaproxy_core::Codec::decode_error_reply`] sees only the
//! [`metaproxy_core::CodecError`], not the connection's transport and
//! protocol, so the decoder attaches a [`ReplyTo`] to the error as its
//! [`metaproxy_core::ReplyContext`]; the error's `request_id` stays the
//! frame's seqid.

use metaproxy_core::{CodecError, ReplyContext};

use super::wire::{Protocol, Transport};

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
    /// Attaches this address to `error`, with the seqid as its request id.
    pub fn attach(self, error: CodecError) -> CodecError {
        error
            .with_request_id(u64::from(self.seqid as u32))
            .with_reply_context(ReplyContext::new(self))
    }

    /// The address a Thrift decoder attached to `error`, if any.
    pub fn of(error: &CodecError) -> Option<&Self> {
        error.reply_context.as_ref()?.get::<Self>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaproxy_core::CodecErrorKind;

    #[test]
    fn attaches_and_reads_back() {
        let r = ReplyTo {
            transport: Transport::Header,
            protocol: Protocol::Compact,
            seqid: -7,
            exception_type: 8,
        };
        let e = r.attach(CodecError::fatal(CodecErrorKind::Malformed, "x"));
        assert_eq!(ReplyTo::of(&e), Some(&r));
        assert_eq!(e.request_id, Some(u64::from((-7i32) as u32)));
        let plain = CodecError::fatal(CodecErrorKind::Malformed, "x").with_request_id(42);
        assert_eq!(ReplyTo::of(&plain), None);
        let foreign = plain.with_reply_context(ReplyContext::new(42u64));
        assert_eq!(ReplyTo::of(&foreign), None, "another codec's context");
    }
}
