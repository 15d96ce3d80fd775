//! `protocol: auto`: one port for HTTP/1.1, HTTP/2 (and gRPC), Dubbo and
//! Thrift, plain or TLS. The first bytes of each connection are sniffed
//! with one bounded, timed wait; a TLS ClientHello gets the listener's
//! handshake and is sniffed again inside. The connection then goes to
//! the detected protocol's own handler, the bytes read so far put back in
//! front, and is routed with the listener's one route table (conditions
//! may use `protocol`). docs/tls.md.

mod serve;
mod sniff;

use std::sync::Arc;

use metaproxy_core::PluginError;
use metaproxy_core::codec::CodecOptions;
use metaproxy_core::registry::{ClusterCodec, ConnectionHandler, Protocol, Registry};

/// The protocol name.
pub const AUTO: &str = "auto";

/// `protocol: auto`, over the protocols it detects.
pub struct AutoProtocol {
    http: Arc<dyn Protocol>,
    dubbo: Arc<dyn Protocol>,
    thrift: Arc<dyn Protocol>,
}

impl AutoProtocol {
    /// Detection over these three protocols' own handlers.
    pub fn new(
        http: Arc<dyn Protocol>,
        dubbo: Arc<dyn Protocol>,
        thrift: Arc<dyn Protocol>,
    ) -> Self {
        Self {
            http,
            dubbo,
            thrift,
        }
    }
}

impl Protocol for AutoProtocol {
    fn name(&self) -> &'static str {
        AUTO
    }

    fn listener_handler(
        &self,
        options: &CodecOptions,
    ) -> Result<Arc<dyn ConnectionHandler>, PluginError> {
        if !options.extra.is_null() {
            return Err("`protocol: auto` listeners take no `options`".into());
        }
        Ok(Arc::new(serve::AutoHandler {
            http: self.http.listener_handler(options)?,
            dubbo: self.dubbo.listener_handler(options)?,
            thrift: self.thrift.listener_handler(options)?,
        }))
    }

    fn cluster_codec(&self, _options: &CodecOptions) -> Result<ClusterCodec, PluginError> {
        Err("`auto` is for listeners; name a cluster's protocol".into())
    }

    fn cluster_protocols(&self) -> Vec<&'static str> {
        let mut all = self.http.cluster_protocols();
        all.extend(self.dubbo.cluster_protocols());
        all.extend(self.thrift.cluster_protocols());
        all
    }

    fn alpn(&self) -> Vec<&'static str> {
        self.http.alpn()
    }
}

/// Registers `auto` over the registered `http`, `dubbo` and `thrift`.
pub fn register(registry: &mut Registry) {
    let (Some(http), Some(dubbo), Some(thrift)) = (
        registry.protocol("http"),
        registry.protocol("dubbo"),
        registry.protocol("thrift"),
    ) else {
        return;
    };
    let auto = AutoProtocol::new(http.clone(), dubbo.clone(), thrift.clone());
    registry.register_protocol(Arc::new(auto));
}
