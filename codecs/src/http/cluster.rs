//! An HTTP cluster as both HTTP engines see it: its settings, its
//! endpoints' pools, and how an answer counts for retries and outlier
//! detection.

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use metaproxy_core::cluster::{Cluster, Endpoint};
use metaproxy_core::codec::ResponseClass;
use metaproxy_core::{ErrorKind, Origin, ProxyError};

use super::HttpClusterSettings;
use super::upstream::HttpPool;

/// The cluster's HTTP settings (an internal error for a cluster of
/// another protocol, which the config build rules out).
pub(crate) fn settings_of(cluster: &Cluster) -> Result<Arc<HttpClusterSettings>, ProxyError> {
    cluster
        .parts
        .codec
        .clone()
        .downcast::<HttpClusterSettings>()
        .map_err(|_| {
            ProxyError::new(
                ErrorKind::Internal,
                Origin::Internal,
                format!("cluster `{}` is not an HTTP cluster", cluster.parts.name),
            )
        })
}

/// The endpoint's HTTP pools, made on first use with the cluster's settings.
pub(crate) fn pool_of<'a>(
    endpoint: &'a Endpoint,
    cluster: &Cluster,
) -> Result<&'a HttpPool, ProxyError> {
    endpoint.pool_of(|| Ok(HttpPool::new(endpoint.address, &cluster.parts.pool)))
}

/// `grpc-status` as a made name: a `&str` key is parsed at every lookup.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// How an answer counts for retries and outlier detection: 503 (and a gRPC
/// trailers-only UNAVAILABLE) is "unavailable", any other 5xx a server error.
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap) -> ResponseClass {
    let status = status.as_u16();
    // A 5xx is classed by its code alone: no header lookup.
    let grpc_status = if status >= 500 {
        None
    } else {
        headers.get(&GRPC_STATUS).map(HeaderValue::as_bytes)
    };
    class_of(status, grpc_status)
}

/// [`classify`] from the status code and the `grpc-status` header's value.
pub(crate) fn class_of(status: u16, grpc_status: Option<&[u8]>) -> ResponseClass {
    match status {
        503 => ResponseClass::Unavailable,
        500..=599 => ResponseClass::ServerError,
        _ if grpc_status == Some(b"14") => ResponseClass::Unavailable,
        _ => ResponseClass::Success,
    }
}
