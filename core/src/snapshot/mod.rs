//! The immutable runtime view of one config version, built (and fully
//! validated) from a parsed file. Swapped atomically on reload.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

mod cluster_build;
mod discovery_build;
mod listener_build;
mod route_build;

use crate::access_log::{AccessLog, AccessLogConfig};
use crate::cluster::Cluster;
use crate::config::load::ErrorSink;
use crate::config::validate::{socket_addr, unique_names};
use crate::config::{ConfigErrors, LoadedConfig};
use crate::filter::FilterChain;
use crate::metrics::{ListenerMetrics, Metrics};
use crate::registry::{ConnectionHandler, Registry};
use crate::router::RouteTable;

use cluster_build::build_cluster;
pub use discovery_build::DEFAULT_MAX_DISCOVERED_ENDPOINTS;
use listener_build::build_listener;

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
/// Default longest silence inside an HTTP answer's body (Envoy's default
/// stream idle timeout).
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default largest HTTP request head.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Default most HTTP request headers.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Default time allowed to receive an HTTP request head.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default most concurrent HTTP/2 streams per connection.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 1024;
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
    /// HTTP: largest request head.
    pub max_header_bytes: usize,
    /// HTTP: most request headers.
    pub max_headers: usize,
    /// HTTP: time allowed to receive a request head.
    pub header_read_timeout: Duration,
    /// HTTP/2: most concurrent streams per connection.
    pub max_concurrent_streams: u32,
    /// HTTP: quiet allowed on an upgraded connection.
    pub tunnel_idle_timeout: Duration,
    /// HTTP: silence allowed inside an answer's body.
    pub stream_idle_timeout: Duration,
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
    /// TLS termination, when configured: done before the handler serves.
    pub tls: Option<Arc<crate::tls::ListenerTls>>,
    /// Lock-free metric handles.
    pub metrics: ListenerMetrics,
    /// Access log settings.
    pub access_log_config: Option<AccessLogConfig>,
    /// The access log, started on first use (its writer needs a runtime).
    pub access_log: std::sync::OnceLock<Option<AccessLog>>,
    /// Where the listener registers itself (`register:`), if anywhere.
    pub registration: Option<crate::registration::ConfiguredRegistrar>,
}

impl ListenerRuntime {
    /// The listener's access log, if configured.
    pub fn access_log(&self) -> Option<&AccessLog> {
        let config = self.access_log_config.as_ref()?;
        self.access_log
            .get_or_init(|| {
                AccessLog::start(config)
                    .map_err(|e| tracing::warn!(listener = %self.name, error = %e, "access log disabled"))
                    .ok()
            })
            .as_ref()
    }
}

impl std::fmt::Debug for ListenerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerRuntime")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("protocol", &self.protocol)
            .field("routes", &self.routes.routes().len())
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
    /// Admin bearer token, if configured.
    pub admin_token: Option<String>,
    /// The metrics registry the snapshot's handles belong to.
    pub metrics: Arc<Metrics>,
    /// The effective config as JSON (for `/config_dump`).
    pub source: Option<Arc<serde_json::Value>>,
}

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
        if cfg.listeners.is_empty() {
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

    /// The listener named `name`.
    pub fn listener(&self, name: &str) -> Option<&Arc<ListenerRuntime>> {
        self.listeners.get(name)
    }
}
