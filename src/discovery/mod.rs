//! The built-in discovery sources: a Dubbo registry in ZooKeeper, DNS, a
//! discovery URL and a file. Each is a [`DiscoveryFactory`] registered under
//! its config key; core applies what they find to clusters in place. And
//! the registry a listener registers itself in (ZooKeeper, Dubbo's layout).

mod backoff;
mod dns;
mod dubbo_url;
mod endpoint_list;
mod file;
mod http;
mod provider_nodes;
mod zookeeper;
mod zookeeper_registration;

use std::sync::Arc;

use metaproxy_core::discovery::{DiscoveryError, DiscoveryFactory};
use metaproxy_core::registry::Registry;

pub use dubbo_url::{DubboProvider, parse_provider};
pub use endpoint_list::parse_endpoint_list;

/// Registers every built-in source.
pub fn register_all(registry: &mut Registry) {
    let factories: [Arc<dyn DiscoveryFactory>; 4] = [
        Arc::new(zookeeper::ZookeeperFactory),
        Arc::new(dns::DnsFactory),
        Arc::new(http::HttpFactory),
        Arc::new(file::FileFactory),
    ];
    for f in factories {
        registry.register_discovery(f);
    }
    registry.register_registrar(Arc::new(zookeeper_registration::ZookeeperRegistrarFactory));
}

/// This process's registry identity: the `metaproxy` parameter of the
/// provider nodes it registers, so that its own discovery never takes its
/// own listeners for providers (a proxy that forwards to itself).
fn instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("{}-{:016x}", std::process::id(), fastrand::u64(..)))
}

/// Reads a source's section into its settings type.
fn settings<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    config: &serde_json::Value,
) -> Result<T, DiscoveryError> {
    serde_json::from_value(config.clone()).map_err(|e| DiscoveryError::invalid(kind, e.to_string()))
}
