//! Reading a hessian2 Dubbo request body into routing metadata and the
//! attachments layout.
//!
//! The body is: dubbo version, service path, service version, method name,
//! parameter-types descriptor (strings), one value per parameter (skipped,
//! never materialised), then the attachments map (optional).
//!
//! Metadata keys, in order: `protocol`, `service`, `interface`, `method`,
//! `version`, `dubbo_version`, `request_id`, `group`, then every attachment
//! key as sent. The body's fields win over attachments with the same key:
//! `version` comes from the body unless it is empty, in which case the
//! `version` attachment is used; `group` comes from the `group` attachment.
//! An attachment whose key is already set is not added again (the first
//! value wins, also between duplicate attachment keys).

use bytes::Bytes;
use bytestring::ByteString;
use metaproxy_core::{Metadata, keys};

use super::attachments::{self, AttachmentsError, AttachmentsLayout};
use super::header::HEADER_LEN;
use super::hessian::{DescriptorError, HessianError, Reader, count_params, span_text};

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Bad hessian.
    #[error(transparent)]
    Hessian(#[from] HessianError),
    /// A bad parameter-types descriptor.
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
    /// A bad attachments map.
    #[error(transparent)]
    Attachments(#[from] AttachmentsError),
}

/// The routing fields of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBody {
    /// The Dubbo protocol version (`2.0.2`).
    pub dubbo_version: ByteString,
    /// The service path (the interface).
    pub service: ByteString,
    /// The service version from the body (may be empty).
    pub version: ByteString,
    /// The method name.
    pub method: ByteString,
    /// The attachments map.
    pub attachments: AttachmentsLayout,
}

fn read_text(frame: &Bytes, r: &mut Reader<'_>) -> Result<ByteString, HessianError> {
    let span = r.read_string()?;
    span_text(frame, &span)
}

/// Reads the request body of `frame` (the whole frame, header included).
pub fn parse(frame: &Bytes) -> Result<RequestBody, RequestError> {
    let mut r = Reader::new(frame, HEADER_LEN);
    let dubbo_version = read_text(frame, &mut r)?;
    let service = read_text(frame, &mut r)?;
    let version = read_text(frame, &mut r)?;
    let method = read_text(frame, &mut r)?;
    let descriptor = read_text(frame, &mut r)?;
    for _ in 0..count_params(descriptor.as_bytes())? {
        r.skip_value()?;
    }
    let attachments = attachments::parse(frame, &mut r)?;
    Ok(RequestBody {
        dubbo_version,
        service,
        version,
        method,
        attachments,
    })
}

/// The metadata of a request (see the module doc for keys and precedence).
pub fn metadata(body: &RequestBody, request_id: u64) -> Metadata {
    let mut m = Metadata::with_capacity(8 + body.attachments.entries.len());
    m.push(
        ByteString::from_static(keys::PROTOCOL),
        ByteString::from_static(super::PROTOCOL),
    );
    m.push(ByteString::from_static(keys::SERVICE), body.service.clone());
    m.push(ByteString::from_static("interface"), body.service.clone());
    m.push(ByteString::from_static(keys::METHOD), body.method.clone());
    let version = if body.version.is_empty() {
        body.attachments.get("version").cloned()
    } else {
        Some(body.version.clone())
    };
    if let Some(version) = version {
        m.push(ByteString::from_static("version"), version);
    }
    m.push(
        ByteString::from_static("dubbo_version"),
        body.dubbo_version.clone(),
    );
    m.push(
        ByteString::from_static(keys::REQUEST_ID),
        ByteString::from(request_id.to_string()),
    );
    if let Some(group) = body.attachments.get("group") {
        m.push(ByteString::from_static("group"), group.clone());
    }
    for e in &body.attachments.entries {
        if let (Some(k), Some(v)) = (&e.key, &e.value)
            && m.get(k).is_none()
        {
            m.push(k.clone(), v.clone());
        }
    }
    m
}
