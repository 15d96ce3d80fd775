//! Building a [`Snapshot`] from a loaded config: every listener, cluster
//! and route checked against the registry's protocols and filters, with
//! every problem reported (not just the first).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

mod cluster;
mod discovery;
mod listener;
mod route;

use crate::config::load::ErrorSink;
use crate::config::validate::{socket_addr, unique_names};
use crate::config::{ConfigErrors, LoadedConfig};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::snapshot::{DEFAULT_DRAIN_TIMEOUT, Snapshot};

use cluster::build_cluster;
pub use discovery::DEFAULT_MAX_DISCOVERED_ENDPOINTS;
use listener::build_listener;

/// What a snapshot is built with besides the config.
#[derive(Default)]
pub struct BuildContext<'a> {
    /// Where metric handles are registered (a fresh registry when `None`).
    pub metrics: Option<Arc<Metrics>>,
    /// The snapshot being replaced: unchanged clusters keep their endpoints
    /// (connection pools, health and outlier state) and circuit breakers.
    pub previous: Option<&'a Snapshot>,
}

impl Snapshot {
    /// Validates `loaded` against `registry` and builds the runtime view,
    /// reporting every problem found (not just the first).
    pub fn build(loaded: &LoadedConfig, registry: &Registry) -> Result<Snapshot, ConfigErrors> {
        Self::build_with(loaded, registry, BuildContext::default())
    }

    /// [`Snapshot::build`] with a metrics registry and the previous snapshot.
    pub fn build_with(
        loaded: &LoadedConfig,
        registry: &Registry,
        context: BuildContext<'_>,
    ) -> Result<Snapshot, ConfigErrors> {
        let metrics = context.metrics.unwrap_or_default();
        let cfg = &loaded.config;
        let mut sink = ErrorSink::new(loaded.file.clone());

        unique_names(
            &mut sink,
            cfg.listeners.iter().map(|l| &l.value.name),
            "listener",
        );
        unique_names(
            &mut sink,
            cfg.clusters.iter().map(|c| &c.value.name),
            "cluster",
        );
        // A proxy that follows a control plane may start with none: they
        // come from it.
        if cfg.listeners.is_empty() && cfg.xds.is_none() {
            sink.at(serde_saphyr::Location::UNKNOWN, "no listeners configured");
        }

        let mut clusters = HashMap::new();
        for c in &cfg.clusters {
            let previous = context
                .previous
                .and_then(|p| p.clusters.get(c.value.name.value.as_str()))
                .map(|c| &**c);
            if let Some(cluster) = build_cluster(
                &mut sink,
                &c.value,
                registry,
                previous,
                loaded.base_dir.as_deref(),
            ) {
                clusters.insert(cluster.parts.name.clone(), Arc::new(cluster));
            }
        }

        let mut listeners = HashMap::new();
        let mut listener_order = Vec::new();
        let mut bound: HashMap<SocketAddr, &str> = HashMap::new();
        for l in &cfg.listeners {
            let l = &l.value;
            if let Some(addr) = socket_addr(&mut sink, &l.address, "listener address")
                && addr.port() != 0
                && let Some(other) = bound.insert(addr, l.name.value.as_str())
            {
                sink.on(
                    &l.address,
                    format!("address {addr} is already used by listener `{other}`"),
                );
            }
            if let Some(rt) = build_listener(
                &mut sink,
                l,
                registry,
                &clusters,
                &metrics,
                loaded.base_dir.as_deref(),
            ) {
                listener_order.push(rt.name.clone());
                listeners.insert(rt.name.clone(), Arc::new(rt));
            }
        }

        let admin = cfg
            .admin
            .as_ref()
            .and_then(|a| socket_addr(&mut sink, &a.address, "admin address"));
        sink.finish()?;
        Ok(Snapshot {
            listeners,
            listener_order,
            clusters,
            drain_timeout: cfg.drain_timeout.map_or(DEFAULT_DRAIN_TIMEOUT, |d| d.get()),
            admin,
            admin_token: cfg.admin.as_ref().and_then(|a| a.token.clone()),
            metrics,
            source: loaded.source.clone(),
        })
    }
}
