//! `protocol: tls_passthrough`: TLS connections routed by the SNI of their
//! ClientHello, without decrypting them (Istio's `PASSTHROUGH` gateway
//! mode). The listener reads the ClientHello (bounded and timed), routes
//! on `sni` and the connection's metadata with the usual router (weights,
//! subsets, hash policies, retries on connect failure, outlier
//! detection), then relays the bytes both ways untouched. docs/tls.md.

mod hello;
mod relay;
mod serve;

use std::sync::Arc;

use metaproxy_core::PluginError;
use metaproxy_core::codec::{CodecOptions, UpstreamMode};
use metaproxy_core::registry::{ClusterCodec, ConnectionHandler, Protocol, Registry};

/// The protocol name, for listeners and their clusters.
pub const TLS_PASSTHROUGH: &str = "tls_passthrough";

/// What a passthrough cluster needs to know: nothing beyond its pool
/// settings (a marker for the type-erased cluster codec).
#[derive(Debug)]
pub struct PassthroughCluster;

/// The `tls_passthrough` protocol.
#[derive(Debug, Default)]
pub struct PassthroughProtocol;

impl Protocol for PassthroughProtocol {
    fn name(&self) -> &'static str {
        TLS_PASSTHROUGH
    }

    fn listener_handler(
        &self,
        options: &CodecOptions,
    ) -> Result<Arc<dyn ConnectionHandler>, PluginError> {
        if !options.extra.is_null() {
            return Err("`protocol: tls_passthrough` listeners take no `options`".into());
        }
        Ok(Arc::new(serve::PassthroughHandler))
    }

    fn cluster_codec(&self, options: &CodecOptions) -> Result<ClusterCodec, PluginError> {
        if !options.extra.is_null() {
            return Err("`protocol: tls_passthrough` clusters take no `options`".into());
        }
        Ok(ClusterCodec {
            codec: Arc::new(PassthroughCluster),
            default_mode: UpstreamMode::Exclusive,
            probe: None,
        })
    }

    fn terminates_tls(&self) -> bool {
        false
    }
}

/// Registers `tls_passthrough`.
pub fn register(registry: &mut Registry) {
    registry.register_protocol(Arc::new(PassthroughProtocol));
}
