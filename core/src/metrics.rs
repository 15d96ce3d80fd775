//! Prometheus metrics, in an explicit registry (no globals). Per-request
//! counters are resolved once per route target and listener when a config
//! snapshot is built, so the request path increments atomics and takes no lock.
//! Names and labels: docs/observability.md.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::ErrorKind;

/// Labels of per-route request metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Listener name.
    pub listener: String,
    /// Route name.
    pub route: String,
    /// Target cluster.
    pub cluster: String,
    /// Protocol.
    pub protocol: String,
}

/// Labels of request outcome counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Listener name.
    pub listener: String,
    /// Route name.
    pub route: String,
    /// Target cluster.
    pub cluster: String,
    /// Protocol.
    pub protocol: String,
    /// `success` (upstream answered ok), `error` (upstream answered with an error), `local` (the proxy answered).
    pub outcome: String,
}

/// Labels of per-listener metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// Listener name.
    pub listener: String,
    /// Protocol.
    pub protocol: String,
}

/// Labels of bytes relayed through tunnels (upgraded connections).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TunnelLabels {
    /// Listener name.
    pub listener: String,
    /// `upstream` (client to upstream) or `downstream` (upstream to client).
    pub direction: String,
}

/// Labels of local replies.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Listener name.
    pub listener: String,
    /// Why the proxy answered (`route_not_found`, `timeout`, ...).
    pub reason: String,
}

/// Labels of per-cluster counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// Cluster name.
    pub cluster: String,
}

/// Labels of discovery attempts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DiscoveryLabels {
    /// Cluster name.
    pub cluster: String,
    /// Source kind (`dns`, `zookeeper`, ...).
    pub source: String,
    /// `ok` or `error`.
    pub result: String,
}

/// Labels of health check results.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HealthLabels {
    /// Cluster name.
    pub cluster: String,
    /// `pass` or `fail`.
    pub result: String,
}

/// Labels of TLS handshakes and certificate reloads.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TlsLabels {
    /// Listener name.
    pub listener: String,
    /// `ok`, or why not (`timeout`, `bad_message`, `rejected`, ...).
    pub result: String,
}

/// Labels of config reloads.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `rejected`.
    pub result: String,
}

/// Labels of updates from a config source (a control plane).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConfigUpdateLabels {
    /// The source (`xds`).
    pub source: String,
    /// The resource type (`lds`, `rds`, `cds`, `eds`).
    pub resource: String,
    /// `accepted` or `rejected`.
    pub result: String,
}

/// Every metric family of a proxy.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// `metaproxy_requests_total`.
    pub requests: Family<OutcomeLabels, Counter>,
    /// `metaproxy_request_duration_seconds`.
    pub duration: Family<RouteLabels, Histogram>,
    /// `metaproxy_local_replies_total`.
    pub local_replies: Family<ReasonLabels, Counter>,
    /// `metaproxy_downstream_connections_total`.
    pub connections_total: Family<ListenerLabels, Counter>,
    /// `metaproxy_downstream_connections_active`.
    pub connections_active: Family<ListenerLabels, Gauge>,
    /// `metaproxy_requests_active`.
    pub requests_active: Family<ListenerLabels, Gauge>,
    /// `metaproxy_upstream_retries_total`.
    pub retries: Family<ClusterLabels, Counter>,
    /// `metaproxy_circuit_breaker_overflows_total`.
    pub overflows: Family<ClusterLabels, Counter>,
    /// `metaproxy_outlier_ejections_total`.
    pub ejections: Family<ClusterLabels, Counter>,
    /// `metaproxy_health_checks_total`.
    pub health_checks: Family<HealthLabels, Counter>,
    /// `metaproxy_config_reloads_total`.
    pub reloads: Family<ReloadLabels, Counter>,
    /// `metaproxy_tls_handshakes_total`.
    pub tls_handshakes: Family<TlsLabels, Counter>,
    /// `metaproxy_tls_certificate_reloads_total`.
    pub tls_reloads: Family<TlsLabels, Counter>,
    /// `metaproxy_discovery_updates_total`.
    pub discovery_updates: Family<DiscoveryLabels, Counter>,
    /// `metaproxy_config_updates_total`: updates from a control plane, by
    /// type and result (Envoy's `update_success` / `update_rejected`).
    pub config_updates: Family<ConfigUpdateLabels, Counter>,
    /// `metaproxy_discovered_endpoints`.
    pub discovered_endpoints: Family<ClusterLabels, Gauge>,
    /// `metaproxy_tunnel_bytes_total`.
    pub tunnel_bytes: Family<TunnelLabels, Counter>,
    /// `metaproxy_tunnels_active`.
    pub tunnels_active: Family<ListenerLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every family registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("metaproxy");
        let requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by listener, route, cluster and outcome",
            requests.clone(),
        );
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.5, 16))
        });
        registry.register(
            "request_duration_seconds",
            "Time from a decoded request to its answer being queued to the client",
            duration.clone(),
        );
        let local_replies = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "local_replies",
            "Answers given by the proxy itself, by reason",
            local_replies.clone(),
        );
        let connections_total = Family::<ListenerLabels, Counter>::default();
        registry.register(
            "downstream_connections",
            "Client connections accepted",
            connections_total.clone(),
        );
        let connections_active = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "downstream_connections_active",
            "Client connections open",
            connections_active.clone(),
        );
        let requests_active = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "requests_active",
            "Requests in flight",
            requests_active.clone(),
        );
        let retries = Family::<ClusterLabels, Counter>::default();
        registry.register("upstream_retries", "Retries sent", retries.clone());
        let overflows = Family::<ClusterLabels, Counter>::default();
        registry.register(
            "circuit_breaker_overflows",
            "Requests refused by a circuit breaker",
            overflows.clone(),
        );
        let ejections = Family::<ClusterLabels, Counter>::default();
        registry.register(
            "outlier_ejections",
            "Endpoints ejected by outlier detection",
            ejections.clone(),
        );
        let health_checks = Family::<HealthLabels, Counter>::default();
        registry.register(
            "health_checks",
            "Active health check results",
            health_checks.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Config reloads by result",
            reloads.clone(),
        );
        let tls_handshakes = Family::<TlsLabels, Counter>::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes on listeners by result",
            tls_handshakes.clone(),
        );
        let tls_reloads = Family::<TlsLabels, Counter>::default();
        registry.register(
            "tls_certificate_reloads",
            "Changed certificate files loaded (ok) or refused (rejected)",
            tls_reloads.clone(),
        );
        let discovery_updates = Family::<DiscoveryLabels, Counter>::default();
        registry.register(
            "discovery_updates",
            "Discovery attempts by cluster, source and result (ok, error)",
            discovery_updates.clone(),
        );
        let config_updates = Family::<ConfigUpdateLabels, Counter>::default();
        registry.register(
            "config_updates",
            "Resource updates from a control plane by source, type and result (accepted, rejected)",
            config_updates.clone(),
        );
        let discovered_endpoints = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "discovered_endpoints",
            "Endpoints a cluster currently has from its discovery source",
            discovered_endpoints.clone(),
        );
        let tunnel_bytes = Family::<TunnelLabels, Counter>::default();
        registry.register(
            "tunnel_bytes",
            "Bytes relayed through upgraded connections (WebSocket), by direction",
            tunnel_bytes.clone(),
        );
        let tunnels_active = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "tunnels_active",
            "Upgraded connections (WebSocket) open",
            tunnels_active.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            tunnel_bytes,
            tunnels_active,
            discovery_updates,
            config_updates,
            discovered_endpoints,
            tls_handshakes,
            tls_reloads,
            requests,
            duration,
            local_replies,
            connections_total,
            connections_active,
            requests_active,
            retries,
            overflows,
            ejections,
            health_checks,
            reloads,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }

    /// Handles for one route target (resolved at config load).
    pub fn target(
        &self,
        listener: &str,
        route: &str,
        cluster: &str,
        protocol: &str,
    ) -> TargetMetrics {
        let outcome = |o: &str| {
            self.requests
                .get_or_create(&OutcomeLabels {
                    listener: listener.into(),
                    route: route.into(),
                    cluster: cluster.into(),
                    protocol: protocol.into(),
                    outcome: o.into(),
                })
                .clone()
        };
        TargetMetrics {
            success: outcome("success"),
            error: outcome("error"),
            local: outcome("local"),
            duration: self
                .duration
                .get_or_create(&RouteLabels {
                    listener: listener.into(),
                    route: route.into(),
                    cluster: cluster.into(),
                    protocol: protocol.into(),
                })
                .clone(),
            retries: self
                .retries
                .get_or_create(&ClusterLabels {
                    cluster: cluster.into(),
                })
                .clone(),
            overflows: self
                .overflows
                .get_or_create(&ClusterLabels {
                    cluster: cluster.into(),
                })
                .clone(),
            ejections: self
                .ejections
                .get_or_create(&ClusterLabels {
                    cluster: cluster.into(),
                })
                .clone(),
        }
    }

    /// Handles for one listener (resolved at config load).
    pub fn listener(&self, listener: &str, protocol: &str) -> ListenerMetrics {
        let labels = ListenerLabels {
            listener: listener.into(),
            protocol: protocol.into(),
        };
        let reasons = ALL_KINDS
            .iter()
            .map(|k| {
                self.local_replies
                    .get_or_create(&ReasonLabels {
                        listener: listener.into(),
                        reason: reason(*k).into(),
                    })
                    .clone()
            })
            .collect();
        let bytes = |direction: &str| {
            self.tunnel_bytes
                .get_or_create(&TunnelLabels {
                    listener: listener.into(),
                    direction: direction.into(),
                })
                .clone()
        };
        ListenerMetrics {
            connections_total: self.connections_total.get_or_create(&labels).clone(),
            connections_active: self.connections_active.get_or_create(&labels).clone(),
            requests_active: self.requests_active.get_or_create(&labels).clone(),
            local_replies: reasons,
            tunnel_to_upstream: bytes("upstream"),
            tunnel_to_downstream: bytes("downstream"),
            tunnels_active: self.tunnels_active.get_or_create(&labels).clone(),
        }
    }

    /// Counts a TLS handshake on `listener` (`result`: `ok` or the failure).
    pub fn tls_handshake(&self, listener: &str, result: &str) {
        self.tls_handshakes
            .get_or_create(&TlsLabels {
                listener: listener.into(),
                result: result.into(),
            })
            .inc();
    }

    /// The certificate reload counters of one listener.
    pub fn tls_reload_counters(&self, listener: &str) -> crate::tls::ReloadCounters {
        let get = |result: &str| {
            self.tls_reloads
                .get_or_create(&TlsLabels {
                    listener: listener.into(),
                    result: result.into(),
                })
                .clone()
        };
        crate::tls::ReloadCounters {
            ok: get("ok"),
            rejected: get("rejected"),
        }
    }

    /// Counts an update of `kind` from config source `source`.
    pub fn config_update(&self, source: &str, kind: &str, accepted: bool) {
        self.config_updates
            .get_or_create(&ConfigUpdateLabels {
                source: source.into(),
                resource: kind.into(),
                result: if accepted { "accepted" } else { "rejected" }.into(),
            })
            .inc();
    }

    /// Counts a config reload.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                result: if ok { "ok" } else { "rejected" }.into(),
            })
            .inc();
    }
}

/// Lock-free handles for one route target.
#[derive(Debug, Clone)]
pub struct TargetMetrics {
    /// Upstream answered, success.
    pub success: Counter,
    /// Upstream answered with an error.
    pub error: Counter,
    /// The proxy answered.
    pub local: Counter,
    /// Latency.
    pub duration: Histogram,
    /// Retries.
    pub retries: Counter,
    /// Circuit breaker overflows.
    pub overflows: Counter,
    /// Outlier ejections.
    pub ejections: Counter,
}

/// Lock-free handles for one listener.
#[derive(Debug, Clone, Default)]
pub struct ListenerMetrics {
    /// Connections accepted.
    pub connections_total: Counter,
    /// Connections open.
    pub connections_active: Gauge,
    /// Requests in flight.
    pub requests_active: Gauge,
    /// Local replies, indexed like [`ALL_KINDS`].
    pub local_replies: Vec<Counter>,
    /// Bytes relayed from clients to upstreams through tunnels.
    pub tunnel_to_upstream: Counter,
    /// Bytes relayed from upstreams to clients through tunnels.
    pub tunnel_to_downstream: Counter,
    /// Tunnels open.
    pub tunnels_active: Gauge,
}

impl ListenerMetrics {
    /// Counts a local reply of `kind`.
    pub fn local_reply(&self, kind: ErrorKind) {
        if let Some(c) = ALL_KINDS
            .iter()
            .position(|k| *k == kind)
            .and_then(|i| self.local_replies.get(i))
        {
            c.inc();
        }
    }
}

/// Every error kind, in a fixed order.
pub const ALL_KINDS: [ErrorKind; 10] = [
    ErrorKind::RouteNotFound,
    ErrorKind::ClusterNotFound,
    ErrorKind::NoHealthyUpstream,
    ErrorKind::ConnectFailure,
    ErrorKind::OverLimit,
    ErrorKind::Timeout,
    ErrorKind::UpstreamReset,
    ErrorKind::BadRequest,
    ErrorKind::PermissionDenied,
    ErrorKind::Internal,
];

/// The `reason` label of an error kind.
pub fn reason(kind: ErrorKind) -> &'static str {
    kind.reason()
}
