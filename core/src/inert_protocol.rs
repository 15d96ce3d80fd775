//! A protocol that builds like any other and serves nothing: what the
//! configuration-building tests and benchmarks register, so that only
//! core's own work is exercised.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::codec::{CodecOptions, UpstreamMode};
use crate::downstream::ClientStream;
use crate::error::PluginError;
use crate::registry::{
    ClusterCodec, ConnectionHandler, ListenerContext, Protocol, Registry, RouteFeatures,
    ServeFuture,
};

/// The protocol `inert`: listeners close every connection at once, clusters
/// carry a codec of `()` (multiplexed), routes may use every feature.
#[derive(Debug, Clone, Copy, Default)]
pub struct InertProtocol;

impl InertProtocol {
    /// The name it registers under.
    pub const NAME: &'static str = "inert";

    /// A registry holding this protocol only.
    pub fn registry() -> Registry {
        let mut registry = Registry::new();
        registry.register_protocol(Arc::new(InertProtocol));
        registry
    }
}

impl ConnectionHandler for InertProtocol {
    fn serve(&self, _: ClientStream, _: SocketAddr, _: Arc<ListenerContext>) -> ServeFuture {
        Box::pin(async {})
    }
}

impl Protocol for InertProtocol {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn listener_handler(
        &self,
        _: &CodecOptions,
    ) -> Result<Arc<dyn ConnectionHandler>, PluginError> {
        Ok(Arc::new(InertProtocol))
    }
    fn cluster_codec(&self, _: &CodecOptions) -> Result<ClusterCodec, PluginError> {
        Ok(ClusterCodec {
            codec: Arc::new(()),
            default_mode: UpstreamMode::Multiplex,
            probe: None,
        })
    }
    fn route_features(&self) -> RouteFeatures {
        RouteFeatures::ALL
    }
}
