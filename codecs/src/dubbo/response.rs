//! Reading the response flag of a hessian2 Dubbo response and rewriting
//! the response's attachments for a mutation.
//!
//! An OK (status 20) body starts with an int flag: 0 an exception follows,
//! 1 a value, 2 a null value; 3, 4 and 5 are the same followed by an
//! attachments map. Applying a mutation turns 0/1/2 into 3/4/5 and appends
//! a map, or rewrites the map of 3/4/5. Clients older than Dubbo 2.0.2 do
//! not understand flags 3-5.

use bytes::{BufMut, Bytes, BytesMut};
use metaproxy_core::Mutation;

use super::attachments::{self, AttachmentsError, AttachmentsLayout, Rewrite, RewriteError};
use super::header::{self, HEADER_LEN, Header};
use super::hessian::writer;
use super::hessian::{HessianError, Reader};

/// An exception follows.
pub const FLAG_EXCEPTION: u8 = 0;
/// A value follows.
pub const FLAG_VALUE: u8 = 1;
/// The value is null (nothing follows).
pub const FLAG_NULL_VALUE: u8 = 2;
/// An exception, then attachments.
pub const FLAG_EXCEPTION_WITH_ATTACHMENTS: u8 = 3;
/// A value, then attachments.
pub const FLAG_VALUE_WITH_ATTACHMENTS: u8 = 4;
/// A null value, then attachments.
pub const FLAG_NULL_VALUE_WITH_ATTACHMENTS: u8 = 5;

/// Why a response could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// Bad hessian in the body.
    #[error(transparent)]
    Hessian(#[from] HessianError),
    /// A bad attachments map.
    #[error(transparent)]
    Attachments(#[from] AttachmentsError),
    /// The mutation cannot be applied.
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    /// A response flag outside 0-5.
    #[error("unknown dubbo response flag {0}")]
    UnknownFlag(i32),
    /// The frame is shorter than its header.
    #[error("dubbo response frame truncated")]
    Truncated,
    /// The rewritten body would not fit the 32-bit length field.
    #[error("rewritten dubbo response too large")]
    TooLarge,
}

/// The response flag at the start of an OK body, if it is a valid one.
pub fn flag(frame: &[u8]) -> Option<u8> {
    let mut r = Reader::new(frame, HEADER_LEN);
    let flag = r.read_int().ok()?;
    u8::try_from(flag)
        .ok()
        .filter(|&f| f <= FLAG_NULL_VALUE_WITH_ATTACHMENTS)
}

/// Whether `flag` announces an exception.
pub fn is_exception(flag: u8) -> bool {
    matches!(flag, FLAG_EXCEPTION | FLAG_EXCEPTION_WITH_ATTACHMENTS)
}

/// Writes the OK response `frame` with id `id` and its attachments
/// rewritten by `mutation`.
pub fn encode_mutated(
    frame: &Bytes,
    header: &Header,
    id: u64,
    mutation: &Mutation,
    dst: &mut BytesMut,
) -> Result<(), ResponseError> {
    let mut r = Reader::new(frame, HEADER_LEN);
    let raw_flag = r.read_int()?;
    let flag_end = r.pos();
    let flag = u8::try_from(raw_flag)
        .ok()
        .filter(|&f| f <= FLAG_NULL_VALUE_WITH_ATTACHMENTS)
        .ok_or(ResponseError::UnknownFlag(raw_flag))?;
    if flag != FLAG_NULL_VALUE && flag != FLAG_NULL_VALUE_WITH_ATTACHMENTS {
        r.skip_value()?;
    }
    let layout = if flag >= FLAG_EXCEPTION_WITH_ATTACHMENTS {
        attachments::parse(frame, &mut r)?
    } else {
        AttachmentsLayout::absent(r.pos())
    };
    let new_flag = if flag < FLAG_EXCEPTION_WITH_ATTACHMENTS {
        flag + 3
    } else {
        flag
    };
    let plan = Rewrite::plan(&layout, mutation)?;
    let value = frame
        .get(flag_end..layout.map.start)
        .ok_or(ResponseError::Truncated)?;
    let tail = frame
        .get(layout.map.end..)
        .ok_or(ResponseError::Truncated)?;
    let body_len =
        writer::int_len(i32::from(new_flag)) + value.len() + plan.encoded_len() + tail.len();
    let body_len32 = u32::try_from(body_len)
        .ok()
        .filter(|&l| l <= i32::MAX as u32)
        .ok_or(ResponseError::TooLarge)?;
    if !plan.fits(frame) {
        return Err(ResponseError::Truncated);
    }
    dst.reserve(HEADER_LEN + body_len);
    header::write(dst, header.flags, header.status, id, body_len32);
    writer::write_int(dst, i32::from(new_flag));
    dst.put_slice(value);
    plan.write(frame, dst);
    dst.put_slice(tail);
    Ok(())
}
