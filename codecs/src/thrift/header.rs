//! The message header both protocols decode: name, type, seqid, and where
//! the arguments struct starts.

use std::ops::Range;

use super::wire::{MessageType, Protocol};

/// The largest method name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 64 * 1024;

/// A decoded message header. Offsets are relative to the slice it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHeader {
    /// The protocol the header was written in.
    pub protocol: Protocol,
    /// The method name's bytes.
    pub name: Range<usize>,
    /// The message type.
    pub message_type: MessageType,
    /// The sequence id.
    pub seqid: i32,
    /// Where the header ends and the struct (arguments or result) begins.
    pub body_start: usize,
}
