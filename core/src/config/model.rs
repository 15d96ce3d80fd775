//! The serde types of the config file. Unknown fields are errors everywhere.
//!
//! The shape follows Istio's concepts (see docs/config.md): listeners
//! (Gateway + VirtualService routes) and clusters (DestinationRule).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::duration::ConfigDuration;
use crate::codec::UpstreamMode;

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
}

/// `admin: { address: 127.0.0.1:9901 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The address to bind.
    pub address: Spanned<String>,
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
    /// Thrift options (`transport`, `protocol`); only for `protocol: thrift`.
    #[serde(default)]
    pub thrift: Option<Spanned<serde_json::Value>>,
    /// Options of a plugin codec, passed to it as they are.
    #[serde(default)]
    pub options: Option<Spanned<serde_json::Value>>,
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

/// One condition on a metadata key. Exactly one of exact / prefix / suffix / regex / present.
#[derive(Debug, Deserialize)]
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
    /// Answer with an HTTP redirect instead of forwarding (HTTP only).
    #[serde(default)]
    pub redirect: Option<RedirectConfig>,
    /// Rewrite path or host before forwarding (HTTP only).
    #[serde(default)]
    pub rewrite: Option<RewriteConfig>,
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
    /// The endpoints.
    pub endpoints: Vec<Spanned<EndpointConfig>>,
    /// Named label selectors: `v1: { version: v1 }`.
    #[serde(default)]
    pub subsets: BTreeMap<String, Spanned<BTreeMap<String, String>>>,
    /// Upstream connections per endpoint: shared by all client connections in
    /// `multiplex` and `pipeline` modes (default 2); the most open at once in
    /// `exclusive` mode (default 64).
    #[serde(default)]
    pub connections_per_endpoint: Option<usize>,
    /// Give up connecting after this long (default 1s).
    #[serde(default)]
    pub connect_timeout: Option<ConfigDuration>,
    /// Largest frame accepted from an endpoint (default 8 MiB).
    #[serde(default)]
    pub max_frame_bytes: Option<usize>,
    /// How requests share upstream connections (default: the protocol's choice).
    #[serde(default)]
    pub mode: Option<UpstreamMode>,
    /// Thrift options (`transport`, `protocol`); only for `protocol: thrift`.
    #[serde(default)]
    pub thrift: Option<Spanned<serde_json::Value>>,
    /// Options of a plugin codec, passed to it as they are.
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
}
