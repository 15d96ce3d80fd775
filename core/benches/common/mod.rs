//! What the core benchmarks share: a protocol that routes like HTTP and
//! serves nothing, so that only core's own work is measured.

use std::net::SocketAddr;
use std::sync::Arc;

use metaproxy_core::PluginError;
use metaproxy_core::listener::{ClientStream, ListenerContext};
use metaproxy_core::registry::{ClusterCodec, ConnectionHandler, Protocol, Registry, ServeFuture};
use metaproxy_core::{CodecOptions, UpstreamMode};

/// A protocol that routes like HTTP and serves nothing: only building counts.
struct Fake;

impl ConnectionHandler for Fake {
    fn serve(&self, _: ClientStream, _: SocketAddr, _: Arc<ListenerContext>) -> ServeFuture {
        Box::pin(async {})
    }
}

impl Protocol for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn listener_handler(
        &self,
        _: &CodecOptions,
    ) -> Result<Arc<dyn ConnectionHandler>, PluginError> {
        Ok(Arc::new(Fake))
    }
    fn cluster_codec(&self, _: &CodecOptions) -> Result<ClusterCodec, PluginError> {
        Ok(ClusterCodec {
            codec: Arc::new(()),
            default_mode: UpstreamMode::Multiplex,
            probe: None,
        })
    }
    fn route_features(&self) -> metaproxy_core::registry::RouteFeatures {
        metaproxy_core::registry::RouteFeatures::ALL
    }
}

/// A registry with [`Fake`] registered as `fake`.
pub fn fake_registry() -> Registry {
    let mut registry = Registry::new();
    registry.register_protocol(Arc::new(Fake));
    registry
}
