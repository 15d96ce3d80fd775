//! Apache Thrift: framed, unframed (buffered) and THeader transports, binary
//! (strict and non-strict) and compact protocols, sniffed per connection.
//!
//! [`ThriftCodecFactory`] registers under the name `thrift`. Every message
//! gets the metadata `protocol`, `request_id` (seqid), `method`, `service`
//! (for `Service:method` names of `TMultiplexedProtocol`) and every THeader
//! info header under its own name. Only the message header is decoded; the
//! arguments are forwarded untouched unless the cluster speaks another
//! protocol. See docs/protocols/thrift.md.

pub mod binary;
pub mod codec;
pub mod compact;
pub mod cursor;
pub mod decoder;
pub mod envelope;
pub mod error;
pub mod exception;
pub mod header;
pub mod options;
pub mod reply_to;
pub mod sniff;
pub mod theader;
pub mod transcode;
pub mod wire;

#[cfg(test)]
mod tests;

use std::ops::Range;

pub use codec::{ThriftCodec, ThriftCodecFactory};
pub use decoder::ThriftDecoder;
pub use theader::THeaderInfo;
pub use wire::{MessageType, Protocol, Transport};

/// The protocol name, also the `protocol` metadata value.
pub const PROTOCOL: &str = "thrift";

/// What the codec knows about a message beyond its metadata.
#[derive(Debug, Clone)]
pub struct ThriftState {
    transport: Transport,
    protocol: Protocol,
    message_type: MessageType,
    seqid: i32,
    name: Range<usize>,
    body: Range<usize>,
    theader: Option<THeaderInfo>,
}

impl ThriftState {
    /// The transport the message came in.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The protocol the message came in.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        self.message_type
    }

    /// The seqid as sent.
    pub fn seqid(&self) -> i32 {
        self.seqid
    }

    /// Where the method name lies in the frame.
    pub fn name_range(&self) -> Range<usize> {
        self.name.clone()
    }

    /// Where the struct after the message header lies in the frame.
    pub fn body_range(&self) -> Range<usize> {
        self.body.clone()
    }

    /// The THeader fields and info headers, for THeader messages.
    pub fn theader(&self) -> Option<&THeaderInfo> {
        self.theader.as_ref()
    }
}
