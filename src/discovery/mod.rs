//! The built-in discovery sources: a Dubbo registry in ZooKeeper, DNS, a
//! discovery URL and a file. Each is a [`DiscoveryFactory`] registered under
//! its config key; core applies what they find to clusters in place.

mod backoff;
mod dns;
mod dubbo_url;
mod endpoint_list;
mod file;
mod http;
mod zookeeper;

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
}

/// Reads a source's section into its settings type.
fn settings<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    config: &serde_json::Value,
) -> Result<T, DiscoveryError> {
    serde_json::from_value(config.clone()).map_err(|e| DiscoveryError::invalid(kind, e.to_string()))
}
