//! Where protocols and filters plug in by name, without touching this crate.

use crate::error::PluginError;
use std::any::Any;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::codec::{Codec, CodecOptions, ProtocolCodecFactory, UpstreamMode};
use crate::config::{HealthCheckConfig, HealthCheckKind};
use crate::downstream::ClientStream;
use crate::filter::FilterFactory;
use crate::health_check::{CodecProbe, Probe};
use crate::listener::serve_rpc_connection;
pub use crate::snapshot::{ConnectionHandler, ListenerContext, ServeFuture};

/// What a protocol's routes may use beyond matching metadata and picking
/// targets; the config build refuses a feature the listener's (or, for
/// cookies, the cluster's) protocol does not claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteFeatures {
    /// Metadata keys compare case-insensitively: route and filter keys are
    /// lower-cased at load (the codec stores its keys lower-case).
    pub case_insensitive_keys: bool,
    /// `virtual_hosts`: routes grouped by the `:authority` key.
    pub virtual_hosts: bool,
    /// `redirect` actions (the engine renders `Early::Redirect`).
    pub redirects: bool,
    /// `rewrite` of the `:path` and `:authority` keys on the way up.
    pub rewrites: bool,
    /// `upgrades`: protocol switches the engine relays.
    pub upgrades: bool,
    /// `hash: [{ cookie }]` on clusters: an affinity cookie read from the
    /// `cookie.<name>` key and set on answers by the engine.
    pub affinity_cookies: bool,
}

impl RouteFeatures {
    /// Every feature.
    pub const ALL: Self = Self {
        case_insensitive_keys: true,
        virtual_hosts: true,
        redirects: true,
        rewrites: true,
        upgrades: true,
        affinity_cookies: true,
    };
}

/// A protocol as the proxy sees it: builds listener handlers and cluster codecs.
pub trait Protocol: Send + Sync + 'static {
    /// The name used in config.
    fn name(&self) -> &'static str;
    /// A handler for a listener of this protocol.
    fn listener_handler(
        &self,
        options: &CodecOptions,
    ) -> Result<Arc<dyn ConnectionHandler>, PluginError>;
    /// The cluster-side codec, type-erased; the listener engine downcasts it.
    fn cluster_codec(&self, options: &CodecOptions) -> Result<ClusterCodec, PluginError>;

    /// The cluster protocols a listener of this protocol can route to.
    fn cluster_protocols(&self) -> Vec<&'static str> {
        vec![self.name()]
    }

    /// What routes of this protocol may use beyond matching and targets
    /// (virtual hosts, redirects, rewrites, upgrades, affinity cookies), and
    /// whether its metadata keys are case-insensitive. None by default; a
    /// protocol (built-in or a plugin) claims what its engine carries out.
    fn route_features(&self) -> RouteFeatures {
        RouteFeatures::default()
    }

    /// The ALPN protocols a TLS listener of this protocol offers when its
    /// config names none (HTTP: `h2`, `http/1.1`).
    fn alpn(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// Whether a listener of this protocol may terminate TLS (`tls:`);
    /// false for protocols that relay TLS as it is.
    fn terminates_tls(&self) -> bool {
        true
    }

    /// The ALPN protocols a TLS cluster of this protocol offers when its
    /// config names none (`http2`: `h2`, `http1`: `http/1.1`).
    fn upstream_alpn(&self) -> Vec<&'static str> {
        Vec::new()
    }
}

/// Builds the probe of a cluster's `health_check` for every kind but `tcp`:
/// `kind: protocol` and any kind the protocol names, with its options (the
/// section's other fields). `Ok(None)`: the protocol has no probe of its
/// own (a TCP connect is used). An unknown kind or option is an error,
/// reported at the `health_check` entry.
pub type ProbeMaker =
    Box<dyn Fn(&HealthCheckConfig) -> Result<Option<Arc<dyn Probe>>, PluginError> + Send + Sync>;

/// A cluster's codec, type-erased, with the upstream mode it prefers.
pub struct ClusterCodec {
    /// `Arc<C>` of the protocol's codec type.
    pub codec: Arc<dyn Any + Send + Sync>,
    /// The mode used when the cluster's config does not choose one.
    pub default_mode: UpstreamMode,
    /// The protocol's health probe.
    pub probe: Option<ProbeMaker>,
}

/// Adapts any framed request/response codec ([`ProtocolCodecFactory`]) to
/// the shared listener engine and upstream pools.
pub struct RpcProtocol<F: ProtocolCodecFactory> {
    factory: F,
}

impl<F: ProtocolCodecFactory> RpcProtocol<F> {
    /// Wraps a codec factory.
    pub fn new(factory: F) -> Self {
        Self { factory }
    }
}

struct RpcHandler<C> {
    codec: Arc<C>,
}

impl<C: Codec> ConnectionHandler for RpcHandler<C> {
    fn serve(
        &self,
        stream: ClientStream,
        peer: SocketAddr,
        ctx: Arc<ListenerContext>,
    ) -> ServeFuture {
        Box::pin(serve_rpc_connection(self.codec.clone(), stream, peer, ctx))
    }
}

impl<F: ProtocolCodecFactory> Protocol for RpcProtocol<F> {
    fn name(&self) -> &'static str {
        self.factory.name()
    }

    fn listener_handler(
        &self,
        options: &CodecOptions,
    ) -> Result<Arc<dyn ConnectionHandler>, PluginError> {
        let codec = Arc::new(self.factory.listener_codec(options)?);
        Ok(Arc::new(RpcHandler { codec }))
    }

    fn cluster_codec(&self, options: &CodecOptions) -> Result<ClusterCodec, PluginError> {
        let codec: Arc<F::Codec> = Arc::new(self.factory.cluster_codec(options)?);
        let for_probe = codec.clone();
        Ok(ClusterCodec {
            default_mode: codec.default_upstream_mode(),
            probe: Some(Box::new(move |check: &HealthCheckConfig| {
                if check.kind != HealthCheckKind::Protocol {
                    return Err(PluginError::Invalid(format!(
                        "no `kind: {}` health check for this protocol (use `protocol` or `tcp`)",
                        check.kind.name()
                    )));
                }
                // `method`: what the probe frame calls, for codecs whose
                // probe is a call (Thrift).
                check.only_options(&["method"])?;
                let method = check.option_str("method")?;
                Ok(CodecProbe::new(for_probe.clone(), method)
                    .map(|p| Arc::new(p) as Arc<dyn Probe>))
            })),
            codec,
        })
    }
}

/// The protocols and filters known to a proxy instance.
#[derive(Default, Clone)]
pub struct Registry {
    protocols: BTreeMap<&'static str, Arc<dyn Protocol>>,
    filters: BTreeMap<&'static str, Arc<dyn FilterFactory>>,
    discovery: BTreeMap<&'static str, Arc<dyn crate::discovery::DiscoveryFactory>>,
    registrars: BTreeMap<&'static str, Arc<dyn crate::registration::RegistrarFactory>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a protocol under its name (replacing one of the same name).
    pub fn register_protocol(&mut self, protocol: Arc<dyn Protocol>) -> &mut Self {
        self.protocols.insert(protocol.name(), protocol);
        self
    }

    /// Registers a framed codec factory as a protocol.
    pub fn register_codec<F: ProtocolCodecFactory>(&mut self, factory: F) -> &mut Self {
        self.register_protocol(Arc::new(RpcProtocol::new(factory)))
    }

    /// Registers a filter factory under its name.
    pub fn register_filter(&mut self, factory: Arc<dyn FilterFactory>) -> &mut Self {
        self.filters.insert(factory.name(), factory);
        self
    }

    /// Registers a discovery source factory under its config key.
    pub fn register_discovery(
        &mut self,
        factory: Arc<dyn crate::discovery::DiscoveryFactory>,
    ) -> &mut Self {
        self.discovery.insert(factory.name(), factory);
        self
    }

    /// The discovery source factory for config key `name`.
    pub fn discovery(&self, name: &str) -> Option<&Arc<dyn crate::discovery::DiscoveryFactory>> {
        self.discovery.get(name)
    }

    /// Registered discovery source kinds.
    pub fn discovery_names(&self) -> Vec<&'static str> {
        self.discovery.keys().copied().collect()
    }

    /// Registers a registrar factory (a registry listeners announce
    /// themselves in) under its config key.
    pub fn register_registrar(
        &mut self,
        factory: Arc<dyn crate::registration::RegistrarFactory>,
    ) -> &mut Self {
        self.registrars.insert(factory.name(), factory);
        self
    }

    /// The registrar factory for config key `name`.
    pub fn registrar(&self, name: &str) -> Option<&Arc<dyn crate::registration::RegistrarFactory>> {
        self.registrars.get(name)
    }

    /// Registered registrar kinds.
    pub fn registrar_names(&self) -> Vec<&'static str> {
        self.registrars.keys().copied().collect()
    }

    /// The protocol named `name`.
    pub fn protocol(&self, name: &str) -> Option<&Arc<dyn Protocol>> {
        self.protocols.get(name)
    }

    /// The filter factory named `name`.
    pub fn filter(&self, name: &str) -> Option<&Arc<dyn FilterFactory>> {
        self.filters.get(name)
    }

    /// Registered protocol names.
    pub fn protocol_names(&self) -> Vec<&'static str> {
        self.protocols.keys().copied().collect()
    }

    /// Registered filter names.
    pub fn filter_names(&self) -> Vec<&'static str> {
        self.filters.keys().copied().collect()
    }
}
