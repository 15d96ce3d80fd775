//! Service discovery: sources that find a cluster's endpoints (a registry,
//! DNS, a URL, a file) and the feed that carries what they find to the
//! clusters that use them.
//!
//! A source is built by a [`DiscoveryFactory`] registered under the name of
//! its config key (`discovery: { dns: {...} }` uses the factory `dns`). It
//! runs as one task per feed and publishes whole endpoint lists; the proxy
//! applies each list to the cluster in place ([`Cluster::apply_discovered`]),
//! without a config reload (the proxy's task, `proxy/discovery.rs`). A feed outlives reloads that leave the cluster's
//! `discovery:` section unchanged, so a reload neither restarts the source
//! nor forgets what it found.
//!
//! [`Cluster::apply_discovered`]: crate::cluster::Cluster::apply_discovered

mod feed;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use feed::{Feed, FeedStatus, FeedWriter, SourceState};

/// A boxed future of a source's run.
pub type SourceFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// One endpoint a source found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredEndpoint {
    /// Where it listens.
    pub address: SocketAddr,
    /// Its labels (`group`, `version`, ...), matched by subsets like static
    /// ones. Shared: a list re-published with the same entries costs no
    /// copy of them.
    pub labels: Arc<BTreeMap<String, String>>,
    /// Relative weight (≥ 1).
    pub weight: u32,
    /// Priority level (0 = first; a control plane's locality priority).
    pub priority: u32,
}

impl DiscoveredEndpoint {
    /// An endpoint at `address` with no labels, weight 1, priority 0.
    pub fn at(address: SocketAddr) -> Self {
        Self {
            address,
            labels: Arc::default(),
            weight: 1,
            priority: 0,
        }
    }
}

/// A running source of endpoints.
pub trait DiscoverySource: Send + Sync + 'static {
    /// The source kind, as in config (`dns`, `zookeeper`, ...).
    fn kind(&self) -> &'static str;

    /// Watches until `feed` is cancelled, publishing every change of the
    /// endpoint list with [`FeedWriter::publish`] and every failure with
    /// [`FeedWriter::failed`] (the last published list stays in use).
    fn run(self: Arc<Self>, feed: FeedWriter) -> SourceFuture;
}

/// What a factory builds a source with besides its config section.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryContext {
    /// The cluster being built.
    pub cluster: String,
    /// The config file's directory: relative paths are read from there.
    pub base_dir: Option<PathBuf>,
}

/// Why a `discovery:` section cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The section is not the shape the source expects.
    #[error("invalid `{source_kind}` discovery: {message}")]
    Invalid {
        /// The source kind.
        source_kind: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl DiscoveryError {
    /// An invalid section of `source_kind`.
    pub fn invalid(source_kind: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            source_kind,
            message: message.into(),
        }
    }
}

/// Builds sources of one kind from their config sections.
pub trait DiscoveryFactory: Send + Sync + 'static {
    /// The config key (`dns`).
    fn name(&self) -> &'static str;

    /// Builds a source from its section (`{ name: ..., port: ... }`).
    fn build(
        &self,
        config: &serde_json::Value,
        context: &DiscoveryContext,
    ) -> Result<Arc<dyn DiscoverySource>, DiscoveryError>;
}
