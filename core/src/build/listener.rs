//! Building a listener (limits, handler, filters, routes) from config.

use std::collections::HashMap;
use std::sync::Arc;

use crate::access_log::AccessLog;
use crate::cluster::Cluster;
use crate::codec::CodecOptions;
use crate::config::load::ErrorSink;
use crate::config::{DEFAULT_MAX_FRAME_BYTES, ListenerConfig};
use crate::filter::{FilterChain, FilterContext};
use crate::metrics::Metrics;
use crate::registration::{ConfiguredRegistrar, RegistrarContext};
use crate::registry::Registry;
use crate::router::{HostMatch, RouteTable, VirtualHost};

use super::cluster::protocol_section;
use super::route::{ConfiguredFilter, RouteBuilder, unsupported};
use crate::snapshot::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONCURRENT_STREAMS,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADERS,
    DEFAULT_MAX_REQUESTS_PER_CONNECTION, DEFAULT_STREAM_IDLE_TIMEOUT, Limits, ListenerRuntime,
};

pub(super) fn build_listener(
    sink: &mut ErrorSink,
    l: &ListenerConfig,
    registry: &Registry,
    clusters: &HashMap<Arc<str>, Arc<Cluster>>,
    metrics: &Metrics,
    base_dir: Option<&std::path::Path>,
) -> Option<ListenerRuntime> {
    let limits = Limits {
        max_frame_bytes: l.limits.max_frame_bytes.unwrap_or(DEFAULT_MAX_FRAME_BYTES),
        max_connections: l.limits.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
        max_requests_per_connection: l
            .limits
            .max_requests_per_connection
            .unwrap_or(DEFAULT_MAX_REQUESTS_PER_CONNECTION),
        idle_timeout: l
            .limits
            .idle_timeout
            .map_or(DEFAULT_IDLE_TIMEOUT, |d| d.get()),
        max_header_bytes: l
            .limits
            .max_header_bytes
            .unwrap_or(DEFAULT_MAX_HEADER_BYTES),
        max_headers: l.limits.max_headers.unwrap_or(DEFAULT_MAX_HEADERS),
        header_read_timeout: l
            .limits
            .header_read_timeout
            .map_or(DEFAULT_HEADER_READ_TIMEOUT, |d| d.get()),
        max_concurrent_streams: l
            .limits
            .max_concurrent_streams
            .unwrap_or(DEFAULT_MAX_CONCURRENT_STREAMS),
        tunnel_idle_timeout: l
            .limits
            .tunnel_idle_timeout
            .or(l.limits.idle_timeout)
            .map_or(DEFAULT_IDLE_TIMEOUT, |d| d.get()),
        stream_idle_timeout: l
            .limits
            .stream_idle_timeout
            .map_or(DEFAULT_STREAM_IDLE_TIMEOUT, |d| d.get()),
    };
    if limits.max_frame_bytes < 16
        || limits.max_connections == 0
        || limits.max_requests_per_connection == 0
    {
        sink.on(
            &l.name,
            "limits: max_frame_bytes must be ≥ 16, max_connections and max_requests_per_connection ≥ 1",
        );
    }
    let protocol = registry.protocol(&l.protocol.value);
    if protocol.is_none() {
        sink.on(
            &l.protocol,
            format!(
                "unknown protocol `{}` (known: {})",
                l.protocol.value,
                registry.protocol_names().join(", ")
            ),
        );
    }
    let extra = protocol_section(l.options.as_ref());
    let handler = protocol.and_then(|p| {
        p.listener_handler(&CodecOptions {
            max_frame_bytes: limits.max_frame_bytes,
            extra,
        })
        .map_err(|e| sink.on(&l.protocol, e.to_string()))
        .ok()
    });

    if let (Some(t), Some(p)) = (&l.tls, protocol)
        && !p.terminates_tls()
    {
        sink.on(
            t,
            format!(
                "`protocol: {}` relays TLS as it is; it takes no `tls:`",
                l.protocol.value
            ),
        );
    }
    let tls = l.tls.as_ref().and_then(|t| {
        let alpn = protocol.map(|p| p.alpn()).unwrap_or_default();
        crate::tls::build_listener_tls(
            &l.name.value,
            &crate::tls::resolve_paths(&t.value, base_dir),
            &alpn,
            metrics.tls_reload_counters(&l.name.value),
        )
        .map_err(|e| sink.on(t, format!("tls: {e}")))
        .ok()
        .map(Arc::new)
    });
    if l.tls.is_some() && tls.is_none() {
        // The error is in the sink already; the listener is not built.
        return None;
    }

    let context = FilterContext {
        listener: &l.name.value,
        protocol: &l.protocol.value,
        route: None,
    };
    let mut filters = Vec::new();
    for f in &l.filters {
        if f.value.len() != 1 {
            sink.on(
                f,
                "each filter entry must have exactly one key: the filter name",
            );
            continue;
        }
        let Some((name, config)) = f.value.iter().next() else {
            continue;
        };
        match registry.filter(name) {
            None => sink.on(
                f,
                format!(
                    "unknown filter `{name}` (known: {})",
                    registry.filter_names().join(", ")
                ),
            ),
            Some(factory) => match factory.build(config, &context) {
                Ok(filter) => filters.push(ConfiguredFilter { name, filter }),
                Err(e) => sink.on(f, format!("filter `{name}`: {e}")),
            },
        }
    }

    let features = protocol.map(|p| p.route_features()).unwrap_or_default();
    let mut builder = RouteBuilder {
        sink,
        clusters,
        registry,
        listener: &l.name.value,
        protocol: &l.protocol.value,
        cluster_protocols: protocol.map(|p| p.cluster_protocols()).unwrap_or_default(),
        features,
        filters: &filters,
        metrics,
        route: String::new(),
    };
    let routes = builder.build_routes(&l.routes);
    let mut virtual_hosts = Vec::new();
    if !l.virtual_hosts.is_empty() {
        if !features.virtual_hosts {
            let why = unsupported(registry, "virtual_hosts", &l.protocol.value, |f| {
                f.virtual_hosts
            });
            builder.sink.on(&l.name, why);
        }
        if !l.routes.is_empty() {
            builder
                .sink
                .on(&l.name, "use either `routes` or `virtual_hosts`, not both");
        }
        for (i, v) in l.virtual_hosts.iter().enumerate() {
            if v.value.hosts.is_empty() {
                builder.sink.on(v, "a virtual host needs at least one host");
            }
            virtual_hosts.push(VirtualHost {
                name: Arc::from(v.value.name.clone().unwrap_or_else(|| format!("vhost-{i}"))),
                hosts: v
                    .value
                    .hosts
                    .iter()
                    .map(|h| HostMatch::parse(&h.value))
                    .collect(),
                routes: builder.build_routes(&v.value.routes),
            });
        }
    }
    let access_log_config = l.access_log.as_ref().and_then(|a| {
        AccessLog::check(&a.value)
            .map_err(|e| builder.sink.on(a, e.to_string()))
            .ok()?;
        Some(a.value.clone())
    });
    let address: std::net::SocketAddr = l.address.value.parse().ok()?;
    let registration = l
        .register
        .as_ref()
        .and_then(|section| build_registrar(builder.sink, l, section, registry, address, base_dir));
    Some(ListenerRuntime {
        name: Arc::from(l.name.value.as_str()),
        address,
        protocol: l.protocol.value.clone(),
        routes: RouteTable::new(routes, virtual_hosts),
        filters: FilterChain::new(filters.into_iter().map(|f| f.filter).collect()),
        limits,
        handler: handler?,
        tls,
        metrics: metrics.listener(&l.name.value, &l.protocol.value),
        access_log_config,
        access_log: std::sync::OnceLock::new(),
        registration,
    })
}

/// Builds a listener's `register:` section: one registry kind and its settings.
fn build_registrar(
    sink: &mut ErrorSink,
    l: &ListenerConfig,
    section: &serde_saphyr::Spanned<serde_json::Value>,
    registry: &Registry,
    address: std::net::SocketAddr,
    base_dir: Option<&std::path::Path>,
) -> Option<ConfiguredRegistrar> {
    let known = || registry.registrar_names().join(", ");
    let entries = section
        .value
        .as_object()
        .map(|m| m.iter().collect::<Vec<_>>());
    let Some([(name, value)]) = entries.as_deref() else {
        sink.on(
            section,
            format!(
                "register is a map with one registry, e.g. `{{ zookeeper: {{ servers: [...], interfaces: [...] }} }}` (known: {})",
                known()
            ),
        );
        return None;
    };
    let Some(factory) = registry.registrar(name) else {
        sink.on(
            section,
            format!("unknown registry `{name}` (known: {})", known()),
        );
        return None;
    };
    let context = RegistrarContext {
        listener: l.name.value.clone(),
        protocol: l.protocol.value.clone(),
        address,
        base_dir: base_dir.map(std::path::Path::to_path_buf),
    };
    match factory.build(value, &context) {
        Ok(registrar) => Some(ConfiguredRegistrar {
            key: section.value.to_string(),
            registrar,
        }),
        Err(e) => {
            sink.on(section, e.to_string());
            None
        }
    }
}
