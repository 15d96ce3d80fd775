//! The immutable runtime view of one config version, built (and fully
//! validated) from a parsed file. Swapped atomically on reload.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{Cluster, Endpoint, PoolSettings, Subset, balancer_for};
use crate::codec::{CodecOptions, UpstreamMode};
use crate::config::load::ErrorSink;
use crate::config::validate::{operator_count, socket_addr, unique_names};
use crate::config::{
    ClusterConfig, ConfigErrors, DEFAULT_MAX_FRAME_BYTES, ListenerConfig, LoadedConfig,
    RouteActionConfig, RouteConfig,
};
use crate::filter::FilterChain;
use crate::registry::{ConnectionHandler, Registry};
use crate::router::{Condition, MatchOp, Route, RouteAction, RouteTable, Target};

/// Default route timeout.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// Default upstream connections per endpoint.
pub const DEFAULT_CONNECTIONS_PER_ENDPOINT: usize = 2;
/// Default most open connections per endpoint in exclusive mode.
pub const DEFAULT_EXCLUSIVE_CONNECTIONS: usize = 64;
/// Largest `connections_per_endpoint`.
pub const MAX_CONNECTIONS_PER_ENDPOINT: usize = 4096;
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default max client connections per listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default max in-flight requests per client connection.
pub const DEFAULT_MAX_REQUESTS_PER_CONNECTION: usize = 1024;
/// Default idle timeout of client connections.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Default drain deadline on shutdown.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolved per-listener limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest frame from a client.
    pub max_frame_bytes: usize,
    /// Most client connections.
    pub max_connections: usize,
    /// Most in-flight requests per client connection.
    pub max_requests_per_connection: usize,
    /// Idle timeout.
    pub idle_timeout: Duration,
}

/// One listener as it runs.
pub struct ListenerRuntime {
    /// Unique name.
    pub name: Arc<str>,
    /// Bind address.
    pub address: SocketAddr,
    /// Protocol name.
    pub protocol: String,
    /// Routes.
    pub routes: RouteTable,
    /// Filters.
    pub filters: FilterChain,
    /// Limits.
    pub limits: Limits,
    /// Serves accepted connections.
    pub handler: Arc<dyn ConnectionHandler>,
}

impl std::fmt::Debug for ListenerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerRuntime")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("protocol", &self.protocol)
            .field("routes", &self.routes.routes.len())
            .field("filters", &self.filters)
            .finish_non_exhaustive()
    }
}

/// One config version, ready to serve.
#[derive(Debug)]
pub struct Snapshot {
    /// Listeners by name.
    pub listeners: HashMap<Arc<str>, Arc<ListenerRuntime>>,
    /// Listener names in file order.
    pub listener_order: Vec<Arc<str>>,
    /// Clusters by name.
    pub clusters: HashMap<Arc<str>, Arc<Cluster>>,
    /// Drain deadline on shutdown.
    pub drain_timeout: Duration,
    /// Admin address, if configured.
    pub admin: Option<SocketAddr>,
}

impl Snapshot {
    /// Validates `loaded` against `registry` and builds the runtime view,
    /// reporting every problem found (not just the first).
    pub fn build(loaded: &LoadedConfig, registry: &Registry) -> Result<Snapshot, ConfigErrors> {
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
        if cfg.listeners.is_empty() {
            sink.at(serde_saphyr::Location::UNKNOWN, "no listeners configured");
        }

        let mut clusters = HashMap::new();
        for c in &cfg.clusters {
            if let Some(cluster) = build_cluster(&mut sink, &c.value, registry) {
                clusters.insert(cluster.name.clone(), Arc::new(cluster));
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
            if let Some(rt) = build_listener(&mut sink, l, registry, &clusters) {
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
        })
    }

    /// The listener named `name`.
    pub fn listener(&self, name: &str) -> Option<&Arc<ListenerRuntime>> {
        self.listeners.get(name)
    }
}

fn build_cluster(sink: &mut ErrorSink, c: &ClusterConfig, registry: &Registry) -> Option<Cluster> {
    let protocol = match registry.protocol(&c.protocol.value) {
        Some(p) => p,
        None => {
            sink.on(
                &c.protocol,
                format!(
                    "unknown protocol `{}` (known: {})",
                    c.protocol.value,
                    registry.protocol_names().join(", ")
                ),
            );
            return None;
        }
    };
    let options = CodecOptions {
        max_frame_bytes: c.max_frame_bytes.unwrap_or(DEFAULT_MAX_FRAME_BYTES),
        extra: protocol_section(
            sink,
            &c.protocol.value,
            c.thrift.as_ref(),
            c.options.as_ref(),
        ),
    };
    if options.max_frame_bytes < 16 {
        sink.on(&c.name, "max_frame_bytes must be at least 16");
    }
    let codec = match protocol.cluster_codec(&options) {
        Ok(codec) => Some(codec),
        Err(e) => {
            sink.on(&c.protocol, e);
            None
        }
    };
    let mut endpoints = Vec::new();
    for e in &c.endpoints {
        let ep = &e.value;
        if ep.weight == Some(0) {
            sink.on(e, "endpoint weight must be at least 1");
        }
        if let Some(addr) = socket_addr(sink, &ep.address, "endpoint address") {
            endpoints.push(Arc::new(Endpoint::new(
                addr,
                ep.labels.clone(),
                ep.weight.unwrap_or(1),
            )));
        }
    }
    let mode = c
        .mode
        .or(codec.as_ref().map(|cc| cc.default_mode))
        .unwrap_or(UpstreamMode::Multiplex);
    let connections = c.connections_per_endpoint.unwrap_or(match mode {
        UpstreamMode::Exclusive => DEFAULT_EXCLUSIVE_CONNECTIONS,
        _ => DEFAULT_CONNECTIONS_PER_ENDPOINT,
    });
    if !(1..=MAX_CONNECTIONS_PER_ENDPOINT).contains(&connections) {
        sink.on(
            &c.name,
            format!(
                "connections_per_endpoint must be between 1 and {MAX_CONNECTIONS_PER_ENDPOINT}"
            ),
        );
    }
    let mut subsets = vec![Subset {
        name: String::new(),
        balancer: balancer_for(c.lb, &endpoints),
        endpoints: endpoints.clone(),
    }];
    for (name, selector) in &c.subsets {
        if name.is_empty() {
            sink.on(selector, "subset name must not be empty");
        }
        let members: Vec<_> = endpoints
            .iter()
            .filter(|e| e.has_labels(&selector.value))
            .cloned()
            .collect();
        subsets.push(Subset {
            name: name.clone(),
            balancer: balancer_for(c.lb, &members),
            endpoints: members,
        });
    }
    Some(Cluster {
        name: Arc::from(c.name.value.as_str()),
        protocol: c.protocol.value.clone(),
        subsets,
        pool: PoolSettings {
            mode,
            connections_per_endpoint: connections.clamp(1, MAX_CONNECTIONS_PER_ENDPOINT),
            connect_timeout: c
                .connect_timeout
                .map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.get()),
        },
        codec: codec?.codec,
    })
}

/// The protocol's own config section: `thrift:` for Thrift, `options:` for
/// any other protocol (plugins); `thrift:` elsewhere is an error.
fn protocol_section(
    sink: &mut ErrorSink,
    protocol: &str,
    thrift: Option<&serde_saphyr::Spanned<serde_json::Value>>,
    options: Option<&serde_saphyr::Spanned<serde_json::Value>>,
) -> serde_json::Value {
    if let Some(t) = thrift
        && protocol != "thrift"
    {
        sink.on(
            t,
            format!("`thrift` options apply only to `protocol: thrift`, not `{protocol}`"),
        );
    }
    match (protocol, thrift, options) {
        ("thrift", Some(t), _) => t.value.clone(),
        (_, _, Some(o)) => o.value.clone(),
        _ => serde_json::Value::Null,
    }
}

fn build_listener(
    sink: &mut ErrorSink,
    l: &ListenerConfig,
    registry: &Registry,
    clusters: &HashMap<Arc<str>, Arc<Cluster>>,
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
    let extra = protocol_section(
        sink,
        &l.protocol.value,
        l.thrift.as_ref(),
        l.options.as_ref(),
    );
    let handler = protocol.and_then(|p| {
        p.listener_handler(&CodecOptions {
            max_frame_bytes: limits.max_frame_bytes,
            extra,
        })
        .map_err(|e| sink.on(&l.protocol, e))
        .ok()
    });

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
            Some(factory) => match factory.build(config) {
                Ok(filter) => filters.push(filter),
                Err(e) => sink.on(f, format!("filter `{name}`: {e}")),
            },
        }
    }

    let mut routes = Vec::new();
    for (i, r) in l.routes.iter().enumerate() {
        if let Some(route) = build_route(sink, &r.value, i, &l.protocol.value, clusters) {
            routes.push(route);
        }
    }
    Some(ListenerRuntime {
        name: Arc::from(l.name.value.as_str()),
        address: l.address.value.parse().ok()?,
        protocol: l.protocol.value.clone(),
        routes: RouteTable { routes },
        filters: FilterChain::new(filters),
        limits,
        handler: handler?,
    })
}

fn build_route(
    sink: &mut ErrorSink,
    r: &RouteConfig,
    index: usize,
    protocol: &str,
    clusters: &HashMap<Arc<str>, Arc<Cluster>>,
) -> Option<Route> {
    let mut conditions = Vec::new();
    let mut ok = true;
    for m in &r.conditions {
        let mc = &m.value;
        if operator_count(mc) != 1 {
            sink.on(
                m,
                format!(
                    "condition on `{}` needs exactly one of exact, prefix, suffix, regex, present",
                    mc.key
                ),
            );
            ok = false;
            continue;
        }
        let op = if let Some(v) = &mc.exact {
            MatchOp::Exact(v.clone())
        } else if let Some(v) = &mc.prefix {
            MatchOp::Prefix(v.clone())
        } else if let Some(v) = &mc.suffix {
            MatchOp::Suffix(v.clone())
        } else if let Some(v) = &mc.regex {
            match Condition::compile_regex(&v.value) {
                Ok(re) => MatchOp::Regex(re),
                Err(e) => {
                    let first = e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    sink.on(v, format!("bad regex `{}`: {first}", v.value));
                    ok = false;
                    continue;
                }
            }
        } else {
            MatchOp::Present(mc.present.unwrap_or(true))
        };
        conditions.push(Condition {
            key: mc.key.clone(),
            op,
            invert: mc.invert,
        });
    }
    let action = build_action(sink, &r.route, protocol, clusters);
    let name: Arc<str> = Arc::from(r.name.clone().unwrap_or_else(|| format!("route-{index}")));
    let timeout = r
        .route
        .value
        .timeout
        .map_or(DEFAULT_ROUTE_TIMEOUT, |d| d.get());
    if timeout.is_zero() {
        sink.on(&r.route, "timeout must be greater than zero");
    }
    Some(Route {
        name,
        conditions,
        action: action.filter(|_| ok)?,
        timeout,
    })
}

fn build_action(
    sink: &mut ErrorSink,
    action: &serde_saphyr::Spanned<RouteActionConfig>,
    protocol: &str,
    clusters: &HashMap<Arc<str>, Arc<Cluster>>,
) -> Option<RouteAction> {
    let a = &action.value;
    match (&a.cluster, &a.weighted) {
        (Some(cluster), None) => {
            target(sink, cluster, a.subset.as_ref(), protocol, clusters).map(RouteAction::Single)
        }
        (None, Some(weighted)) => {
            if a.subset.is_some() {
                sink.on(action, "`subset` goes inside each `weighted` entry");
            }
            if weighted.is_empty() {
                sink.on(action, "`weighted` needs at least one entry");
                return None;
            }
            let mut targets = Vec::new();
            let mut total: u32 = 0;
            let mut ok = true;
            for w in weighted {
                total = total.saturating_add(w.value.weight);
                match target(
                    sink,
                    &w.value.cluster,
                    w.value.subset.as_ref(),
                    protocol,
                    clusters,
                ) {
                    Some(t) if w.value.weight > 0 => targets.push((t, total)),
                    Some(_) => {}
                    None => ok = false,
                }
            }
            if total == 0 {
                sink.on(
                    action,
                    "weights of `weighted` add up to 0: nothing would be routed",
                );
                return None;
            }
            ok.then_some(RouteAction::Weighted { targets, total })
        }
        (Some(_), Some(_)) => {
            sink.on(
                action,
                "a route has either `cluster` or `weighted`, not both",
            );
            None
        }
        (None, None) => {
            sink.on(action, "a route needs `cluster` or `weighted`");
            None
        }
    }
}

fn target(
    sink: &mut ErrorSink,
    cluster: &serde_saphyr::Spanned<String>,
    subset: Option<&serde_saphyr::Spanned<String>>,
    protocol: &str,
    clusters: &HashMap<Arc<str>, Arc<Cluster>>,
) -> Option<Target> {
    let Some(c) = clusters.get(cluster.value.as_str()) else {
        sink.on(cluster, format!("unknown cluster `{}`", cluster.value));
        return None;
    };
    if c.protocol != protocol {
        sink.on(
            cluster,
            format!(
                "cluster `{}` speaks `{}` but this listener speaks `{protocol}`",
                c.name, c.protocol
            ),
        );
        return None;
    }
    let subset = match subset {
        None => 0,
        Some(s) => match c.subset_index(&s.value) {
            Some(i) if !s.value.is_empty() => i,
            _ => {
                sink.on(
                    s,
                    format!("cluster `{}` has no subset `{}`", c.name, s.value),
                );
                return None;
            }
        },
    };
    Some(Target {
        cluster: c.clone(),
        subset,
    })
}
