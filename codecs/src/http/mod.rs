//! HTTP/1.1, HTTP/2 and gRPC on the shared filter chain and router.
//!
//! Unlike the framed RPC codecs, HTTP is served by hyper: a listener of
//! `protocol: http` accepts HTTP/1.1 (keep-alive) and HTTP/2 with prior
//! knowledge (h2c) on the same port. Each request head becomes
//! [`metaproxy_core::Metadata`] (see [`metadata`]), runs through the
//! listener's filter chain and route table exactly like a Dubbo or Thrift
//! request, and is forwarded to an endpoint's pooled HTTP/1.1 or HTTP/2
//! connection (see [`upstream`]). Bodies and trailers stream both ways with
//! back-pressure; nothing is buffered whole.
//!
//! Three protocol names are registered:
//! - `http`: listeners, and clusters whose upstream protocol follows the
//!   client's (HTTP/2 in → HTTP/2 out, HTTP/1.1 in → HTTP/1.1 out);
//! - `http1`, `http2`: clusters only, naming the upstream protocol.
//!
//! The user-facing reference is `docs/protocols/http.md`.

mod body;
mod cluster;
mod conn_tasks;
mod error;
mod grpc_cut;
mod grpc_probe;
pub(crate) mod h1;
pub mod headers;
pub mod metadata;
mod outgoing;
pub mod probe;
mod replay;
pub mod reply;
mod request;
mod route;
mod server;
mod tunnel;
mod upgrade;
pub mod upstream;

use std::sync::Arc;

use metaproxy_core::PluginError;
use metaproxy_core::codec::{CodecOptions, UpstreamMode};
use metaproxy_core::registry::{
    ClusterCodec, ConnectionHandler, Protocol, Registry, RouteFeatures,
};

pub use body::ProxyBody;
pub use error::HttpError;

/// The protocol name of HTTP listeners (and of clusters that follow the client's HTTP version).
pub const HTTP: &str = "http";
/// The protocol name of clusters whose upstream speaks HTTP/1.1.
pub const HTTP1: &str = "http1";
/// The protocol name of clusters whose upstream speaks HTTP/2 (h2c prior knowledge).
pub const HTTP2: &str = "http2";

/// Which HTTP version a cluster's endpoints are spoken to with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamVersion {
    /// The version the client used (`protocol: http`).
    Downstream,
    /// HTTP/1.1 (`protocol: http1`).
    Http1,
    /// HTTP/2 with prior knowledge (`protocol: http2`).
    Http2,
}

/// The cluster-side settings of an HTTP cluster (its type-erased "codec").
#[derive(Debug, Clone)]
pub struct HttpClusterSettings {
    /// The upstream HTTP version.
    pub version: UpstreamVersion,
}

/// One of the three HTTP protocol names.
#[derive(Debug, Clone, Copy)]
pub struct HttpProtocol {
    name: &'static str,
    version: UpstreamVersion,
}

impl HttpProtocol {
    /// `http`: listeners, and clusters that follow the client's version.
    pub fn http() -> Self {
        Self {
            name: HTTP,
            version: UpstreamVersion::Downstream,
        }
    }

    /// `http1`: clusters spoken to with HTTP/1.1.
    pub fn http1() -> Self {
        Self {
            name: HTTP1,
            version: UpstreamVersion::Http1,
        }
    }

    /// `http2`: clusters spoken to with HTTP/2 (h2c prior knowledge).
    pub fn http2() -> Self {
        Self {
            name: HTTP2,
            version: UpstreamVersion::Http2,
        }
    }
}

impl Protocol for HttpProtocol {
    fn name(&self) -> &'static str {
        self.name
    }

    fn listener_handler(
        &self,
        options: &CodecOptions,
    ) -> Result<Arc<dyn ConnectionHandler>, PluginError> {
        if self.version != UpstreamVersion::Downstream {
            return Err(
                "use `protocol: http` on listeners; http1/http2 name the upstream protocol of a cluster"
                    .into(),
            );
        }
        if !options.extra.is_null() {
            return Err("`protocol: http` listeners take no `options`".into());
        }
        Ok(Arc::new(server::HttpHandler))
    }

    fn cluster_codec(&self, options: &CodecOptions) -> Result<ClusterCodec, PluginError> {
        if !options.extra.is_null() {
            return Err(PluginError::Invalid(format!(
                "`protocol: {}` clusters take no `options`",
                self.name
            )));
        }
        Ok(ClusterCodec {
            codec: Arc::new(HttpClusterSettings {
                version: self.version,
            }),
            default_mode: UpstreamMode::Multiplex,
            // `kind: protocol`: GET /health (h2c for `http2` clusters).
            probe: Some(probe::maker(self.version)),
        })
    }

    fn cluster_protocols(&self) -> Vec<&'static str> {
        vec![HTTP, HTTP1, HTTP2]
    }

    /// Every feature on `http` listeners; `http1` and `http2` name
    /// cluster protocols only, which set affinity cookies.
    fn route_features(&self) -> RouteFeatures {
        match self.version {
            UpstreamVersion::Downstream => RouteFeatures::ALL,
            UpstreamVersion::Http1 | UpstreamVersion::Http2 => RouteFeatures {
                affinity_cookies: true,
                ..RouteFeatures::default()
            },
        }
    }

    fn alpn(&self) -> Vec<&'static str> {
        vec!["h2", "http/1.1"]
    }

    fn upstream_alpn(&self) -> Vec<&'static str> {
        match self.version {
            UpstreamVersion::Http2 => vec!["h2"],
            UpstreamVersion::Http1 => vec!["http/1.1"],
            UpstreamVersion::Downstream => Vec::new(),
        }
    }
}

/// Registers `http`, `http1` and `http2`.
pub fn register(registry: &mut Registry) {
    registry.register_protocol(Arc::new(HttpProtocol::http()));
    registry.register_protocol(Arc::new(HttpProtocol::http1()));
    registry.register_protocol(Arc::new(HttpProtocol::http2()));
}

#[cfg(test)]
mod tests;
