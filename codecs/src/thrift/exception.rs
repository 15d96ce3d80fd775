//! `TApplicationException`: its types, which one each proxy error maps to,
//! and its struct body in either protocol.

use bytes::BufMut;
use metaproxy_core::{CodecErrorKind, ErrorKind};

use super::wire::Protocol;
use super::{binary, compact};

/// `TApplicationException` type codes, as Apache Thrift defines them.
pub mod types {
    /// `UNKNOWN`.
    pub const UNKNOWN: i32 = 0;
    /// `UNKNOWN_METHOD`.
    pub const UNKNOWN_METHOD: i32 = 1;
    /// `INVALID_MESSAGE_TYPE`.
    pub const INVALID_MESSAGE_TYPE: i32 = 2;
    /// `WRONG_METHOD_NAME`.
    pub const WRONG_METHOD_NAME: i32 = 3;
    /// `BAD_SEQUENCE_ID`.
    pub const BAD_SEQUENCE_ID: i32 = 4;
    /// `MISSING_RESULT`.
    pub const MISSING_RESULT: i32 = 5;
    /// `INTERNAL_ERROR`.
    pub const INTERNAL_ERROR: i32 = 6;
    /// `PROTOCOL_ERROR`.
    pub const PROTOCOL_ERROR: i32 = 7;
    /// `INVALID_TRANSFORM`.
    pub const INVALID_TRANSFORM: i32 = 8;
    /// `INVALID_PROTOCOL`.
    pub const INVALID_PROTOCOL: i32 = 9;
    /// `UNSUPPORTED_CLIENT_TYPE`.
    pub const UNSUPPORTED_CLIENT_TYPE: i32 = 10;
}

/// Longest message text written into an exception.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// The exception type a local reply for `kind` carries.
///
/// Apache Thrift has no timeout or permission type: those are
/// `INTERNAL_ERROR` with a message that says so.
pub fn type_for(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::RouteNotFound | ErrorKind::ClusterNotFound => types::UNKNOWN_METHOD,
        ErrorKind::BadRequest => types::PROTOCOL_ERROR,
        ErrorKind::NoHealthyUpstream
        | ErrorKind::ConnectFailure
        | ErrorKind::OverLimit
        | ErrorKind::Timeout
        | ErrorKind::UpstreamReset
        | ErrorKind::PermissionDenied
        | ErrorKind::Internal => types::INTERNAL_ERROR,
    }
}

/// The exception type answering a frame that failed to decode.
pub fn type_for_codec_error(kind: CodecErrorKind) -> i32 {
    match kind {
        CodecErrorKind::Malformed | CodecErrorKind::FrameTooLarge => types::PROTOCOL_ERROR,
        CodecErrorKind::Unsupported => types::INVALID_TRANSFORM,
        CodecErrorKind::Encode => types::INTERNAL_ERROR,
    }
}

/// `message` cut to [`MAX_MESSAGE_LEN`] bytes on a character boundary.
pub fn clip(message: &str) -> &str {
    if message.len() <= MAX_MESSAGE_LEN {
        return message;
    }
    let mut end = MAX_MESSAGE_LEN;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// The encoded length of the exception struct.
pub fn body_len(protocol: Protocol, message: &str, kind: i32) -> usize {
    match protocol {
        Protocol::Binary { .. } => binary::application_exception_len(message),
        Protocol::Compact => compact::application_exception_len(message, kind),
    }
}

/// Writes the exception struct `{1: string message, 2: i32 type}`.
pub fn write_body(dst: &mut impl BufMut, protocol: Protocol, message: &str, kind: i32) {
    match protocol {
        Protocol::Binary { .. } => binary::write_application_exception(dst, message, kind),
        Protocol::Compact => compact::write_application_exception(dst, message, kind),
    }
}
