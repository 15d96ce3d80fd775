//! The immutable runtime view of one config version (built, and fully
//! validated, from a parsed file by [`crate::build`]). Swapped atomically
//! on reload.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

mod handler;

use crate::access_log::{AccessLog, AccessLogConfig};
use crate::cluster::Cluster;
use crate::filter::FilterChain;
use crate::metrics::{ListenerMetrics, Metrics};
use crate::router::RouteTable;

pub use handler::{ConnectionHandler, ListenerContext, ServeFuture};

/// Default route timeout.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// Default upstream connections per endpoint.
pub const DEFAULT_CONNECTIONS_PER_ENDPOINT: usize = 2;
/// Default connections per endpoint in pipeline mode: each carries up to
/// the pipeline depth, so a server that answers one call at a time per
/// connection still works on this many at once.
pub const DEFAULT_PIPELINE_CONNECTIONS: usize = 4;
/// Default most calls in flight on one pipelined connection.
pub const DEFAULT_PIPELINE_DEPTH: usize = 16;
/// Largest `pipeline_depth`.
pub const MAX_PIPELINE_DEPTH: usize = 4096;
/// Default most open connections per endpoint in exclusive mode.
pub const DEFAULT_EXCLUSIVE_CONNECTIONS: usize = 64;
/// Largest `connections_per_endpoint`.
pub const MAX_CONNECTIONS_PER_ENDPOINT: usize = 4096;
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an idle exclusive upstream connection is kept.
pub const DEFAULT_UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
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

impl Snapshot {
    /// The listener named `name`.
    pub fn listener(&self, name: &str) -> Option<&Arc<ListenerRuntime>> {
        self.listeners.get(name)
    }
}
