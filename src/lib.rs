//! The metaproxy binary's library side: the registry of built-in protocols
//! and filters, and the run/validate commands, so tests and examples can
//! embed exactly what the binary runs.

pub mod admin;
pub mod discovery;
pub mod import;
pub mod reload;
pub mod xds;

use std::path::Path;

use metaproxy_core::config::{ConfigErrors, load_file};
use metaproxy_core::proxy::{RunningProxy, StartError};
use metaproxy_core::registry::Registry;
use metaproxy_core::snapshot::Snapshot;

pub use metaproxy_codecs as codecs;
pub use metaproxy_core as core;
pub use metaproxy_filters as filters;

/// Every built-in protocol and filter.
pub fn default_registry() -> Registry {
    let mut registry = Registry::new();
    metaproxy_codecs::register_all(&mut registry);
    metaproxy_filters::register_all(&mut registry);
    discovery::register_all(&mut registry);
    registry.register_discovery(std::sync::Arc::new(xds::XdsDiscoveryFactory));
    registry
}

/// Reads, parses and validates a config file against `registry`, returning
/// a one-line summary or every error found.
pub fn validate_file(path: &Path, registry: &Registry) -> Result<String, ConfigErrors> {
    let loaded = load_file(path)?;
    let snapshot = Snapshot::build(&loaded, registry)?;
    if let Some(section) = &loaded.config.xds
        && let Err(message) = xds::XdsSettings::from_value(&section.value)
    {
        let mut sink = metaproxy_core::config::load::ErrorSink::new(loaded.file.clone());
        sink.on(section, format!("xds: {message}"));
        sink.finish()?;
    }
    Ok(format!(
        "{}: OK ({} listeners, {} clusters)",
        loaded.file,
        snapshot.listeners.len(),
        snapshot.clusters.len()
    ))
}

/// Loads a config file and starts serving it.
pub async fn start_file(path: &Path, registry: &Registry) -> Result<RunningProxy, StartError> {
    let loaded = load_file(path)?;
    RunningProxy::start(&loaded, registry).await
}

/// Loads a config file, starts serving it, and follows the control plane
/// its `xds:` section names, if any.
pub async fn start_with_xds(
    path: &Path,
    registry: &Registry,
) -> Result<std::sync::Arc<RunningProxy>, String> {
    let loaded = load_file(path).map_err(|e| e.to_string())?;
    let proxy = std::sync::Arc::new(
        RunningProxy::start(&loaded, registry)
            .await
            .map_err(|e| e.to_string())?,
    );
    xds::Xds::start(proxy.clone(), &loaded)?;
    Ok(proxy)
}
