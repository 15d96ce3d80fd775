//! The serde types of the config file. Unknown fields are errors everywhere.
//!
//! The shape follows Istio's concepts (see docs/config.md): listeners
//! (Gateway + VirtualService routes) and clusters (DestinationRule).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::UpstreamMode;
use super::duration::ConfigDuration;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The admin endpoint (served from the operations milestone on; parsed now).
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// Where the proxy accepts traffic.
    pub listeners: Vec<Spanned<ListenerConfig>>,
    /// Where it sends traffic.
    #[serde(default)]
    pub clusters: Vec<Spanned<ClusterConfig>>,
    /// How long in-flight requests may take to finish on shutdown (default 10s).
    #[serde(default)]
    pub drain_timeout: Option<ConfigDuration>,
    /// A control plane to take more listeners, routes, clusters and
    /// endpoints from (read by the binary: docs/xds.md).
    #[serde(default)]
    pub xds: Option<Spanned<serde_json::Value>>,
}

/// `admin: { address: 127.0.0.1:9901 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The address to bind (loopback by default in the examples; keep it private).
    pub address: Spanned<String>,
    /// When set, every admin call needs `Authorization: Bearer <token>`.
    #[serde(default)]
    pub token: Option<String>,
}

/// One listener: an address, a protocol, filters and routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Unique name, used in logs and metrics.
    pub name: Spanned<String>,
    /// `host:port` to bind (port 0 picks a free port).
    pub address: Spanned<String>,
    /// The codec name (`dubbo`, or a registered plugin).
    pub protocol: Spanned<String>,
    /// Ordered filters; the router is always last and implicit.
    #[serde(default)]
    pub filters: Vec<Spanned<BTreeMap<String, serde_json::Value>>>,
    /// Routes; the first match wins.
    #[serde(default)]
    pub routes: Vec<Spanned<RouteConfig>>,
    /// Routes grouped by host (`:authority`), HTTP listeners only; instead of `routes`.
    #[serde(default)]
    pub virtual_hosts: Vec<Spanned<VirtualHostConfig>>,
    /// Limits for this listener's connections.
    #[serde(default)]
    pub limits: ListenerLimits,
    /// The protocol's own options, passed to its codec as they are (each
    /// codec parses and validates its own).
    #[serde(default)]
    pub options: Option<Spanned<serde_json::Value>>,
    /// One line per request: `{ path, format, sample }`.
    #[serde(default)]
    pub access_log: Option<Spanned<crate::access_log::AccessLogConfig>>,
    /// Terminate TLS on this listener (any protocol): docs/tls.md.
    #[serde(default)]
    pub tls: Option<Spanned<ListenerTlsConfig>>,
    /// Register this listener in a service registry, e.g.
    /// `{ zookeeper: { servers: [...], interfaces: [...] } }`: docs/discovery.md.
    #[serde(default)]
    pub register: Option<Spanned<serde_json::Value>>,
}

/// `tls:` on a listener: certificates chosen by SNI, ALPN, client
/// certificates, versions and the handshake timeout.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsConfig {
    /// Certificate and key pairs; the first one without `server_names`
    /// (or else the first one) answers clients whose SNI matches none.
    pub certificates: Vec<Spanned<CertificateConfig>>,
    /// ALPN protocols offered, in order of preference (HTTP listeners
    /// default to `[h2, http/1.1]`, others to none).
    #[serde(default)]
    pub alpn: Option<Vec<String>>,
    /// PEM file of the CAs that sign client certificates; setting it asks
    /// clients for a certificate.
    #[serde(default)]
    pub client_ca: Option<String>,
    /// Whether a client certificate must be sent (`required`, the default
    /// when `client_ca` is set) or may be (`optional`).
    #[serde(default)]
    pub client_auth: Option<ClientAuthMode>,
    /// Lowest TLS version accepted: `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: Option<String>,
    /// Time allowed for the handshake (default 10s).
    #[serde(default)]
    pub handshake_timeout: Option<ConfigDuration>,
    /// Refuse a client whose SNI matches no `server_names` instead of
    /// answering with the default certificate (default false).
    #[serde(default)]
    pub strict_sni: bool,
}

/// One certificate chain and its private key, as PEM files.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert: String,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
    /// Names this certificate answers: exact (`shop.example.com`) or a
    /// one-label wildcard (`*.shop.example.com`).
    #[serde(default)]
    pub server_names: Vec<String>,
}

/// `tls:` on a cluster: how the proxy verifies its endpoints and what it
/// presents to them.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ClusterTlsConfig {
    /// The server name sent (SNI) and verified (default: the endpoint's IP).
    #[serde(default)]
    pub sni: Option<String>,
    /// PEM file of the CAs the endpoints' certificates must chain to
    /// (required unless `verify: false`).
    #[serde(default)]
    pub ca: Option<String>,
    /// Client certificate chain (PEM) for mutual TLS.
    #[serde(default)]
    pub cert: Option<String>,
    /// Its private key (PEM).
    #[serde(default)]
    pub key: Option<String>,
    /// ALPN protocols offered (default: `h2` for `http2` clusters,
    /// `http/1.1` for `http1`, none otherwise).
    #[serde(default)]
    pub alpn: Option<Vec<String>>,
    /// Verify the endpoints' certificates (default true; false is for
    /// tests only: anyone in the path can impersonate the endpoint).
    #[serde(default = "yes")]
    pub verify: bool,
}

fn yes() -> bool {
    true
}

/// `client_auth:` on a TLS listener.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    /// A client without a valid certificate is refused.
    Required,
    /// A client may send a certificate; one it sends must be valid.
    Optional,
}

/// Per-listener limits. Every one has a default.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ListenerLimits {
    /// Largest frame accepted from a client (default 8 MiB).
    pub max_frame_bytes: Option<usize>,
    /// Most open client connections (default 10000); more are closed at accept.
    pub max_connections: Option<usize>,
    /// Most requests in flight per client connection (default 1024); reading pauses above it.
    pub max_requests_per_connection: Option<usize>,
    /// Close a client connection idle this long (default 10m).
    pub idle_timeout: Option<ConfigDuration>,
    /// HTTP: largest request head (request line + headers) in bytes (default 64 KiB; 431 above).
    pub max_header_bytes: Option<usize>,
    /// HTTP: most request headers (default 100; 431 above).
    pub max_headers: Option<usize>,
    /// HTTP: time allowed to receive a request head (default 10s; 408 after).
    pub header_read_timeout: Option<ConfigDuration>,
    /// HTTP/2: most concurrent streams per connection (default 1024).
    pub max_concurrent_streams: Option<u32>,
    /// HTTP: close an upgraded connection (WebSocket) with no byte moving
    /// either way for this long (default: `idle_timeout`).
    pub tunnel_idle_timeout: Option<ConfigDuration>,
    /// HTTP: cut an answer whose body is silent this long (default 5m; the
    /// route `timeout` bounds the whole answer).
    pub stream_idle_timeout: Option<ConfigDuration>,
}

/// A group of routes for some hosts (HTTP `:authority`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualHostConfig {
    /// Name for logs.
    #[serde(default)]
    pub name: Option<String>,
    /// Host names: exact (`shop.example.com`), suffix wildcard (`*.example.com`) or `*`.
    pub hosts: Vec<Spanned<String>>,
    /// Routes; the first match wins.
    #[serde(default)]
    pub routes: Vec<Spanned<RouteConfig>>,
}

/// One route: conditions and an action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name for logs, metrics and `/routes/explain`.
    #[serde(default)]
    pub name: Option<String>,
    /// Conditions that must all hold; none matches everything.
    #[serde(default, rename = "match")]
    pub conditions: Vec<Spanned<MatchConfig>>,
    /// What to do with a matching request.
    pub route: Spanned<RouteActionConfig>,
    /// Headers (attachments, THeader headers) changed on the request sent upstream.
    #[serde(default)]
    pub request_headers: Option<HeaderOpsConfig>,
    /// Headers changed on the response sent to the client.
    #[serde(default)]
    pub response_headers: Option<HeaderOpsConfig>,
    /// Per-route filter overrides: `<filter>: false` disables a listener
    /// filter for this route, `<filter>: {config}` replaces its config.
    #[serde(default)]
    pub filters: BTreeMap<String, Spanned<serde_json::Value>>,
}

/// Keys to set and remove.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct HeaderOpsConfig {
    /// Set (replace) these keys.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Remove these keys.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// An HTTP redirect answered by the proxy.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RedirectConfig {
    /// New scheme (`https`).
    #[serde(default)]
    pub scheme: Option<String>,
    /// New host.
    #[serde(default)]
    pub host: Option<String>,
    /// New port.
    #[serde(default)]
    pub port: Option<u16>,
    /// New path (query kept).
    #[serde(default)]
    pub path: Option<String>,
    /// Status: 301 (default), 302, 303, 307 or 308.
    #[serde(default)]
    pub code: Option<u16>,
}

/// Rewrites applied to an HTTP request before it goes upstream.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RewriteConfig {
    /// Replace the prefix matched by the route's `:path` prefix condition.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Replace every match of a regex in the path.
    #[serde(default)]
    pub regex: Option<RegexRewriteConfig>,
    /// Replace the `:authority` (Host).
    #[serde(default)]
    pub host: Option<String>,
}

/// `rewrite.regex`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RegexRewriteConfig {
    /// The pattern.
    pub pattern: String,
    /// The substitution (`$1` refers to groups).
    pub substitution: String,
}

/// One condition on a metadata key. Exactly one of exact / prefix / suffix /
/// regex / present. Routes and filters write conditions in this one shape and
/// compile them with [`MatchConfig::compile`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// The metadata key.
    pub key: String,
    /// The value equals this.
    #[serde(default)]
    pub exact: Option<String>,
    /// The value starts with this.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The value ends with this.
    #[serde(default)]
    pub suffix: Option<String>,
    /// The whole value matches this regular expression.
    #[serde(default)]
    pub regex: Option<Spanned<String>>,
    /// The key is present (true) or absent (false).
    #[serde(default)]
    pub present: Option<bool>,
    /// Negate the condition.
    #[serde(default)]
    pub invert: bool,
}

/// The action of a route: one cluster, or weighted clusters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteActionConfig {
    /// Send to this cluster.
    #[serde(default)]
    pub cluster: Option<Spanned<String>>,
    /// Only to endpoints of this subset of the cluster.
    #[serde(default)]
    pub subset: Option<Spanned<String>>,
    /// Split across clusters/subsets by weight.
    #[serde(default)]
    pub weighted: Option<Vec<Spanned<WeightedTargetConfig>>>,
    /// Give up after this long (default 15s).
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    /// Retry policy.
    #[serde(default)]
    pub retries: Option<Spanned<RetryConfig>>,
    /// Also send a share of requests to a shadow cluster; its answers are dropped.
    #[serde(default)]
    pub mirror: Option<Spanned<MirrorConfig>>,
    /// Answer with an HTTP redirect instead of forwarding (HTTP only).
    #[serde(default)]
    pub redirect: Option<RedirectConfig>,
    /// Rewrite path or host before forwarding (HTTP only).
    #[serde(default)]
    pub rewrite: Option<RewriteConfig>,
    /// Connection upgrades relayed (HTTP/1.1 only): `[websocket]`. Without
    /// it, `Upgrade` is removed like any hop-by-hop header.
    #[serde(default)]
    pub upgrades: Option<Spanned<Vec<String>>>,
}

/// When and how often to retry.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries after the first try (default 1).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Timeout of each try (default: the route's timeout).
    #[serde(default)]
    pub per_try_timeout: Option<ConfigDuration>,
    /// Conditions: connect-failure, reset, timeout, unavailable, server-error
    /// (default: connect-failure, reset, unavailable).
    #[serde(default)]
    pub on: Option<Vec<String>>,
    /// Backoff between tries: base and cap (defaults 25ms, 250ms; full jitter).
    #[serde(default)]
    pub backoff: Option<BackoffConfig>,
}

/// Exponential backoff bounds.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct BackoffConfig {
    /// First interval.
    #[serde(default)]
    pub base: Option<ConfigDuration>,
    /// Largest interval.
    #[serde(default)]
    pub max: Option<ConfigDuration>,
}

/// Request mirroring.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// The shadow cluster.
    pub cluster: Spanned<String>,
    /// Optional subset of it.
    #[serde(default)]
    pub subset: Option<Spanned<String>>,
    /// Share of requests mirrored, 0-100 (default 100).
    #[serde(default)]
    pub percent: Option<f64>,
}

/// One branch of a weighted split.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedTargetConfig {
    /// The cluster.
    pub cluster: Spanned<String>,
    /// Optional subset of it.
    #[serde(default)]
    pub subset: Option<Spanned<String>>,
    /// Relative weight (0 sends nothing).
    pub weight: u32,
}

/// Load-balancing policy.
#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LbPolicy {
    /// Weighted round robin.
    #[default]
    RoundRobin,
    /// Weighted random.
    Random,
    /// Power of two choices on active requests.
    LeastRequest,
    /// Consistent hashing on a ring (session affinity; see `hash`).
    RingHash,
    /// Maglev consistent hashing (session affinity; see `hash`).
    Maglev,
}

/// One element of a hash policy: the first that yields a value is used.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct HashPolicyConfig {
    /// Hash the value of this metadata key.
    #[serde(default)]
    pub key: Option<String>,
    /// Hash an HTTP cookie, set by the proxy on the first response when absent.
    #[serde(default)]
    pub cookie: Option<CookieConfig>,
    /// Hash the client's IP address.
    #[serde(default)]
    pub source_ip: Option<bool>,
}

/// The session cookie of a hash policy.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct CookieConfig {
    /// Cookie name.
    pub name: String,
    /// Lifetime (`Max-Age`); a session cookie when absent.
    #[serde(default)]
    pub ttl: Option<ConfigDuration>,
    /// Cookie path (default `/`).
    #[serde(default)]
    pub path: Option<String>,
}

/// Per-cluster limits; overflow is answered at once with the over-limit reply.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Most open upstream connections in the cluster (default 1024).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Most requests waiting for a connection (default 1024).
    #[serde(default)]
    pub max_pending: Option<usize>,
    /// Most requests in flight to the cluster (default 1024).
    #[serde(default)]
    pub max_requests: Option<usize>,
    /// Most retries in flight (default 3).
    #[serde(default)]
    pub max_retries: Option<usize>,
    /// Requests per upstream connection before it is replaced (default unlimited).
    #[serde(default)]
    pub max_requests_per_connection: Option<u64>,
}

/// Retries may be at most this share of the requests in flight.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RetryBudgetConfig {
    /// Percent of active requests (default 20).
    #[serde(default)]
    pub percent: Option<f64>,
    /// Retries always allowed up to this many in flight (default 3).
    #[serde(default)]
    pub min_retry_concurrency: Option<usize>,
}

/// Passive health: eject endpoints that keep failing.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct OutlierDetectionConfig {
    /// Consecutive errors (server errors, resets, timeouts, connect failures) before ejection (default 5).
    #[serde(default)]
    pub consecutive_errors: Option<u32>,
    /// Consecutive gateway errors (connect failures, resets, timeouts, unavailable) before ejection (default 5).
    #[serde(default)]
    pub consecutive_gateway_errors: Option<u32>,
    /// How often ejections are reconsidered (default 10s).
    #[serde(default)]
    pub interval: Option<ConfigDuration>,
    /// Ejection time, multiplied by the times the endpoint was ejected (default 30s).
    #[serde(default)]
    pub base_ejection_time: Option<ConfigDuration>,
    /// Most endpoints ejected at once, in percent (default 10).
    #[serde(default)]
    pub max_ejection_percent: Option<u32>,
}

/// What an active health check sends: `protocol` (the default), `tcp`, or
/// any other name, which the cluster's protocol must know (the HTTP
/// protocol knows the kinds of its own probes).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum HealthCheckKind {
    /// The protocol's own probe (a heartbeat, a call, a request); a TCP
    /// connect if the protocol has none.
    #[default]
    Protocol,
    /// A TCP connect.
    Tcp,
    /// A probe the cluster's protocol names.
    Named(String),
}

impl HealthCheckKind {
    /// The name as written in config.
    pub fn name(&self) -> &str {
        match self {
            HealthCheckKind::Protocol => "protocol",
            HealthCheckKind::Tcp => "tcp",
            HealthCheckKind::Named(name) => name,
        }
    }
}

impl<'de> Deserialize<'de> for HealthCheckKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(match name.as_str() {
            "protocol" => HealthCheckKind::Protocol,
            "tcp" => HealthCheckKind::Tcp,
            _ => HealthCheckKind::Named(name),
        })
    }
}

/// Active health checking. Core reads the schedule and the kind; every
/// other field is the probe's own (`path`, `method`, ...), checked by the
/// cluster's protocol when it builds the probe.
#[derive(Debug, Deserialize, Clone)]
pub struct HealthCheckConfig {
    /// Between checks (default 5s; ±10% jitter).
    #[serde(default)]
    pub interval: Option<ConfigDuration>,
    /// A check that takes longer fails (default 1s).
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    /// Failed checks in a row before an endpoint is unhealthy (default 3).
    #[serde(default)]
    pub unhealthy_threshold: Option<u32>,
    /// Passed checks in a row before it is healthy again (default 2).
    #[serde(default)]
    pub healthy_threshold: Option<u32>,
    /// What to send (default `protocol`).
    #[serde(default)]
    pub kind: HealthCheckKind,
    /// The probe's own settings: every other field of the section.
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

impl HealthCheckConfig {
    /// The probe option `name`: `None` when not given, an error when it is
    /// not text.
    pub fn option_str(&self, name: &str) -> Result<Option<&str>, crate::error::PluginError> {
        match self.options.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(crate::error::PluginError::invalid_option(
                name,
                "must be a string",
            )),
        }
    }

    /// Refuses probe options other than `known` (the kind's own).
    pub fn only_options(&self, known: &[&str]) -> Result<(), crate::error::PluginError> {
        match self.options.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(crate::error::PluginError::Invalid(format!(
                "unknown field `{k}` for `kind: {}` health checks{}",
                self.kind.name(),
                if known.is_empty() {
                    " (they take none)".to_string()
                } else {
                    format!(" (known: {})", known.join(", "))
                }
            ))),
        }
    }
}

/// A group of endpoints speaking one protocol.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Unique name, referenced by routes.
    pub name: Spanned<String>,
    /// The codec used to talk to the endpoints.
    pub protocol: Spanned<String>,
    /// How an endpoint is picked.
    #[serde(default)]
    pub lb: LbPolicy,
    /// The endpoints written here (a cluster with `discovery:` may have none).
    #[serde(default)]
    pub endpoints: Vec<Spanned<EndpointConfig>>,
    /// Where more endpoints are found, watched live: one source key
    /// (`zookeeper`, `dns`, `http`, `file`, or a plugin's) with its settings,
    /// and optionally `max_endpoints` (default 10 000).
    #[serde(default)]
    pub discovery: Option<Spanned<serde_json::Value>>,
    /// Named label selectors: `v1: { version: v1 }`.
    #[serde(default)]
    pub subsets: BTreeMap<String, Spanned<BTreeMap<String, String>>>,
    /// Upstream connections per endpoint: shared by all client connections in
    /// `multiplex` mode (default 2) and `pipeline` mode (default 4, opened as
    /// load needs them); the most open at once in `exclusive` mode (default 64).
    #[serde(default)]
    pub connections_per_endpoint: Option<usize>,
    /// The most calls in flight at once on one `pipeline` connection
    /// (default 16); more wait for an answer, or go to another connection.
    #[serde(default)]
    pub pipeline_depth: Option<usize>,
    /// Give up connecting after this long (default 1s), TLS handshake included.
    #[serde(default)]
    pub connect_timeout: Option<ConfigDuration>,
    /// Close an upstream connection left idle this long instead of reusing
    /// it (default 60s; connections that carry one request at a time).
    #[serde(default)]
    pub idle_timeout: Option<ConfigDuration>,
    /// Speak TLS to the endpoints: docs/tls.md.
    #[serde(default)]
    pub tls: Option<Spanned<ClusterTlsConfig>>,
    /// Largest frame accepted from an endpoint (default 8 MiB).
    #[serde(default)]
    pub max_frame_bytes: Option<usize>,
    /// How requests share upstream connections (default: the protocol's choice).
    #[serde(default)]
    pub mode: Option<UpstreamMode>,
    /// Hash policy for `ring_hash` / `maglev`: the first element that yields a value.
    #[serde(default)]
    pub hash: Vec<Spanned<HashPolicyConfig>>,
    /// Per-cluster limits.
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerConfig,
    /// Retries as a share of active requests.
    #[serde(default)]
    pub retry_budget: Option<RetryBudgetConfig>,
    /// Passive ejection of failing endpoints.
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetectionConfig>,
    /// Active health checks.
    #[serde(default)]
    pub health_check: Option<Spanned<HealthCheckConfig>>,
    /// Below this percentage of healthy endpoints, route to all of them (default 50; 0 disables).
    #[serde(default)]
    pub panic_threshold: Option<f64>,
    /// Priority spill-over factor in percent (default 140, as Envoy).
    #[serde(default)]
    pub overprovisioning_factor: Option<u32>,
    /// Zone-aware routing: the zones in order of preference (they become
    /// priority levels) and the zones drained of traffic.
    #[serde(default)]
    pub locality: Option<Spanned<LocalityConfig>>,
    /// The protocol's own options, passed to its codec as they are (each
    /// codec parses and validates its own).
    #[serde(default)]
    pub options: Option<Spanned<serde_json::Value>>,
}

/// One upstream endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// `ip:port`.
    pub address: Spanned<String>,
    /// Labels for subsets.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Relative weight for load balancing (default 1).
    #[serde(default)]
    pub weight: Option<u32>,
    /// Priority (0 = first); lower priorities take traffic as higher ones fail (default 0).
    /// With the cluster's `locality`, the zone order sets it instead.
    #[serde(default)]
    pub priority: Option<Spanned<u32>>,
    /// The endpoint's zone: shorthand for the label `zone`.
    #[serde(default)]
    pub zone: Option<Spanned<String>>,
    /// Take the endpoint out of load balancing (in-flight requests finish;
    /// its health, outlier state and connections are kept).
    #[serde(default)]
    pub drain: bool,
}

/// Zone-aware routing of a cluster (Envoy's locality / priority failover).
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct LocalityConfig {
    /// Zones in order of preference: the first is priority 0, the next 1,
    /// and endpoints of any other zone (or none) come last.
    pub zones: Vec<Spanned<String>>,
    /// Zones taken out of load balancing, as `drain: true` on each of their endpoints.
    #[serde(default)]
    pub drain: Vec<Spanned<String>>,
}
