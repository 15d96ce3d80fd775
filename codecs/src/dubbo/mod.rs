//! Dubbo 2 over hessian2: framing, request metadata, attachment mutation
//! and native error replies.
//!
//! [`DubboCodecFactory`] registers under the name `dubbo`. Requests get the
//! metadata described in [`request`]; responses get `protocol`,
//! `request_id` and `status`. Only the hessian2 serialization (id 2) is
//! read: requests in any other serialization are skipped with an
//! `Unsupported` error, responses in any other serialization are forwarded
//! untouched.

pub mod attachments;
pub mod codec;
pub mod header;
pub mod hessian;
pub mod request;
pub mod response;
pub mod status;

#[cfg(test)]
mod test_vectors;
#[cfg(test)]
mod tests;

use std::ops::Range;

pub use attachments::AttachmentsLayout;
pub use codec::{DubboCodec, DubboCodecFactory, DubboDecoder};
pub use header::Header;

/// The protocol name, also the `protocol` metadata value.
pub const PROTOCOL: &str = "dubbo";

/// What the codec knows about a frame beyond its metadata.
#[derive(Debug, Clone)]
pub struct DubboState {
    header: Header,
    body: BodyInfo,
}

/// What was read from the body.
#[derive(Debug, Clone)]
enum BodyInfo {
    /// Not read (events).
    Unread,
    /// A request: where its attachments map lies.
    Request(AttachmentsLayout),
    /// A response: its flag, when the body is hessian2 with status OK.
    Response(Option<u8>),
}

impl DubboState {
    fn new(header: Header, body: BodyInfo) -> Self {
        Self { header, body }
    }

    /// The frame header as decoded.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The flags byte.
    pub fn flags(&self) -> u8 {
        self.header.flags
    }

    /// The serialization id (2 = hessian2).
    pub fn serialization_id(&self) -> u8 {
        self.header.serialization()
    }

    /// The status byte (responses).
    pub fn status(&self) -> u8 {
        self.header.status
    }

    /// Whether the frame is an event (heartbeat).
    pub fn is_event(&self) -> bool {
        self.header.is_event()
    }

    /// The response flag of an OK hessian2 response.
    pub fn response_flag(&self) -> Option<u8> {
        match self.body {
            BodyInfo::Response(flag) => flag,
            _ => None,
        }
    }

    /// Where a request's attachments map lies in the frame (an empty range
    /// at the end of the body when it has none).
    pub fn attachments_range(&self) -> Option<Range<usize>> {
        self.attachments().map(|l| l.map.clone())
    }

    /// A request's attachments: each entry's key, text value and byte range.
    pub fn attachments(&self) -> Option<&AttachmentsLayout> {
        match &self.body {
            BodyInfo::Request(layout) => Some(layout),
            _ => None,
        }
    }
}
