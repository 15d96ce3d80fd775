//! The vocabulary shared by the transports and protocols: message types,
//! protocols and transports as the codec records them per message.

/// A Thrift message type (the `TMessageType` of the message header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// `CALL` (1): a request expecting a reply.
    Call,
    /// `REPLY` (2): a normal answer (may carry a declared exception).
    Reply,
    /// `EXCEPTION` (3): a `TApplicationException` answer.
    Exception,
    /// `ONEWAY` (4): a request expecting nothing back.
    Oneway,
}

impl MessageType {
    /// The type from its wire value.
    pub fn from_wire(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Call),
            2 => Some(Self::Reply),
            3 => Some(Self::Exception),
            4 => Some(Self::Oneway),
            _ => None,
        }
    }

    /// The wire value.
    pub fn wire(self) -> u8 {
        match self {
            Self::Call => 1,
            Self::Reply => 2,
            Self::Exception => 3,
            Self::Oneway => 4,
        }
    }
}

/// The protocol (serialization) of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `TBinaryProtocol`; `strict` when the header starts with the version word `0x8001`.
    Binary {
        /// Whether the message header carries the version word.
        strict: bool,
    },
    /// `TCompactProtocol`.
    Compact,
}

impl Protocol {
    /// Strict binary, what every current implementation writes.
    pub const BINARY: Protocol = Protocol::Binary { strict: true };

    /// Whether both are the same serialization (strictness only changes the message header).
    pub fn same_family(self, other: Protocol) -> bool {
        matches!(
            (self, other),
            (Protocol::Binary { .. }, Protocol::Binary { .. })
                | (Protocol::Compact, Protocol::Compact)
        )
    }

    /// The THeader protocol id (binary 0, compact 2).
    pub fn theader_id(self) -> u64 {
        match self {
            Protocol::Binary { .. } => 0,
            Protocol::Compact => 2,
        }
    }

    /// A short name for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Binary { strict: true } => "binary",
            Protocol::Binary { strict: false } => "binary (non-strict)",
            Protocol::Compact => "compact",
        }
    }
}

/// The transport (framing) of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `TFramedTransport`: a 4-byte big-endian length, then the message.
    Framed,
    /// `TBufferedTransport` (unframed): the message alone.
    Unframed,
    /// `THeaderTransport`: length, magic `0x0FFF`, flags, seqid, header block, message.
    Header,
}

impl Transport {
    /// A short name for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Framed => "framed",
            Transport::Unframed => "unframed",
            Transport::Header => "header",
        }
    }
}

/// Thrift field type ids of the binary protocol (`TType`).
pub mod ttype {
    /// End of a struct's fields.
    pub const STOP: u8 = 0;
    /// `bool`.
    pub const BOOL: u8 = 2;
    /// `byte` / `i8`.
    pub const BYTE: u8 = 3;
    /// `double`.
    pub const DOUBLE: u8 = 4;
    /// `i16`.
    pub const I16: u8 = 6;
    /// `i32`.
    pub const I32: u8 = 8;
    /// `i64`.
    pub const I64: u8 = 10;
    /// `string` / `binary`.
    pub const STRING: u8 = 11;
    /// `struct`.
    pub const STRUCT: u8 = 12;
    /// `map`.
    pub const MAP: u8 = 13;
    /// `set`.
    pub const SET: u8 = 14;
    /// `list`.
    pub const LIST: u8 = 15;
    /// `uuid`.
    pub const UUID: u8 = 16;
}

/// The deepest nesting of structs and containers the walkers accept.
pub const MAX_DEPTH: usize = 64;
