//! Building a cluster's `discovery:` feed, or keeping the previous one.

use std::sync::Arc;

use serde_saphyr::Spanned;

use crate::cluster::{Cluster, Endpoint};
use crate::config::load::ErrorSink;
use crate::discovery::{DiscoveryContext, Feed};
use crate::registry::Registry;

/// Default most endpoints one source may give a cluster.
pub const DEFAULT_MAX_DISCOVERED_ENDPOINTS: usize = 10_000;

/// The feed for `section`: the previous cluster's when its section is the
/// same (the source keeps running and what it found is kept), else a new one.
pub(super) fn build_feed(
    sink: &mut ErrorSink,
    cluster: &str,
    section: &Spanned<serde_json::Value>,
    registry: &Registry,
    previous: Option<&Cluster>,
    base_dir: Option<&std::path::Path>,
) -> Option<Arc<Feed>> {
    let key = section.value.to_string();
    if let Some(feed) = previous
        .and_then(|p| p.discovery.as_ref())
        .filter(|f| f.key() == key)
    {
        return Some(feed.clone());
    }
    let Some(map) = section.value.as_object() else {
        sink.on(
            section,
            "discovery is a map with one source, e.g. `{ dns: { name: web.internal, port: 8080 } }`",
        );
        return None;
    };
    let mut max_endpoints = DEFAULT_MAX_DISCOVERED_ENDPOINTS;
    let mut sources = Vec::new();
    for (name, value) in map {
        if name == "max_endpoints" {
            match value.as_u64().filter(|n| *n >= 1) {
                Some(n) => max_endpoints = usize::try_from(n).unwrap_or(usize::MAX),
                None => sink.on(section, "discovery max_endpoints must be at least 1"),
            }
        } else {
            sources.push((name, value));
        }
    }
    let [(name, value)] = sources[..] else {
        sink.on(
            section,
            format!(
                "discovery needs exactly one source (known: {})",
                registry.discovery_names().join(", ")
            ),
        );
        return None;
    };
    let Some(factory) = registry.discovery(name) else {
        sink.on(
            section,
            format!(
                "unknown discovery source `{name}` (known: {})",
                registry.discovery_names().join(", ")
            ),
        );
        return None;
    };
    let context = DiscoveryContext {
        cluster: cluster.to_string(),
        base_dir: base_dir.map(std::path::Path::to_path_buf),
    };
    match factory.build(value, &context) {
        Ok(source) => Some(Arc::new(Feed::new(cluster, source, key, max_endpoints))),
        Err(e) => {
            sink.on(section, e.to_string());
            None
        }
    }
}

/// The discovered endpoints a new cluster is built with: the previous
/// cluster's own (pools, health and outlier state kept) when `reuse` allows
/// and the feed is the same; the feed's last list is applied on top.
pub(super) fn kept_discovered(
    feed: Option<&Arc<Feed>>,
    previous: Option<&Cluster>,
    reuse: bool,
) -> Vec<Arc<Endpoint>> {
    match (feed, previous) {
        (Some(feed), Some(p))
            if reuse && p.discovery.as_ref().is_some_and(|f| Arc::ptr_eq(f, feed)) =>
        {
            p.endpoints().discovered.clone()
        }
        _ => Vec::new(),
    }
}
