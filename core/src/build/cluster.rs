//! Building clusters (endpoints, subsets, balancers, codecs) from config.

use std::sync::Arc;

use std::time::Duration;

use crate::cluster::{
    BreakerLimits, CircuitBreaker, Cluster, ClusterParts, Endpoint, FailoverPolicy, HashPolicy,
    OutlierPolicy, PoolSettings, SetLayout,
};
use crate::codec::{CodecOptions, UpstreamMode};
use crate::config::load::ErrorSink;
use crate::config::locality::place_endpoints;
use crate::config::validate::socket_addr;
use crate::config::{
    ClusterConfig, DEFAULT_MAX_FRAME_BYTES, HealthCheckConfig, HealthCheckKind, LbPolicy,
};
use crate::error::PluginError;
use crate::health_check::{HealthChecker, Probe, TcpProbe};
use crate::registry::{ClusterCodec, Registry};

use super::discovery::{build_feed, kept_discovered};
use crate::snapshot::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_CONNECTIONS_PER_ENDPOINT, DEFAULT_EXCLUSIVE_CONNECTIONS,
    DEFAULT_PIPELINE_CONNECTIONS, DEFAULT_PIPELINE_DEPTH, DEFAULT_UPSTREAM_IDLE_TIMEOUT,
    MAX_CONNECTIONS_PER_ENDPOINT, MAX_PIPELINE_DEPTH,
};

pub(super) fn build_cluster(
    sink: &mut ErrorSink,
    c: &ClusterConfig,
    registry: &Registry,
    previous: Option<&Cluster>,
    base_dir: Option<&std::path::Path>,
) -> Option<Cluster> {
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
        extra: protocol_section(c.options.as_ref()),
    };
    if options.max_frame_bytes < 16 {
        sink.on(&c.name, "max_frame_bytes must be at least 16");
    }
    let codec = match protocol.cluster_codec(&options) {
        Ok(codec) => Some(codec),
        Err(e) => {
            sink.on(&c.protocol, e.to_string());
            None
        }
    };
    let mode = c
        .mode
        .or(codec.as_ref().map(|cc| cc.default_mode))
        .unwrap_or(UpstreamMode::Multiplex);
    let connections = c.connections_per_endpoint.unwrap_or(match mode {
        UpstreamMode::Exclusive => DEFAULT_EXCLUSIVE_CONNECTIONS,
        UpstreamMode::Pipeline => DEFAULT_PIPELINE_CONNECTIONS,
        UpstreamMode::Multiplex => DEFAULT_CONNECTIONS_PER_ENDPOINT,
    });
    let pipeline_depth = c.pipeline_depth.unwrap_or(DEFAULT_PIPELINE_DEPTH);
    if !(1..=MAX_PIPELINE_DEPTH).contains(&pipeline_depth) {
        sink.on(
            &c.name,
            format!("pipeline_depth must be between 1 and {MAX_PIPELINE_DEPTH}"),
        );
    }
    let connect_timeout = c
        .connect_timeout
        .map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.get());
    let tls_config = c
        .tls
        .as_ref()
        .map(|t| (t, crate::tls::resolve_cluster_paths(&t.value, base_dir)));
    let tls = match &tls_config {
        None => None,
        Some((spanned, config)) => {
            match crate::tls::build_cluster_tls(config, &protocol.upstream_alpn()) {
                Ok(tls) => Some(Arc::new(tls)),
                Err(e) => {
                    sink.on(*spanned, format!("tls: {e}"));
                    None
                }
            }
        }
    };
    // The files' stamps too: changed certificates make new pools on reload.
    let tls_identity = tls_config.as_ref().map(|(_, t)| {
        let files = [&t.ca, &t.cert, &t.key];
        let stamps: Vec<_> = files
            .iter()
            .map(|f| f.as_deref().map(crate::tls::file_stamp))
            .collect();
        format!("{t:?}{stamps:?}")
    });
    let mut breaker = breaker(sink, c);
    // What a connection pool depends on: when it is unchanged by a reload,
    // endpoints (pools, health, outlier state) and the breaker carry over.
    let fingerprint = format!(
        "{}|{mode:?}|{connections}|{connect_timeout:?}|{}|{}|{:?}|{tls_identity:?}",
        c.protocol.value, options.max_frame_bytes, options.extra, breaker.limits
    );
    let reuse = previous.filter(|p| p.parts.fingerprint == fingerprint);
    if let Some(p) = reuse {
        breaker = p.parts.pool.breaker.clone();
    }
    let placements = place_endpoints(sink, c);
    let mut endpoints = Vec::new();
    let mut drained = Vec::new();
    for (e, place) in c.endpoints.iter().zip(placements) {
        let ep = &e.value;
        if ep.weight == Some(0) {
            sink.on(
                e,
                "endpoint weight must be at least 1 (to take an endpoint out of traffic, use `drain: true`)",
            );
        }
        if let Some(addr) = socket_addr(sink, &ep.address, "endpoint address") {
            let fresh = Endpoint::new(addr, place.labels, ep.weight.unwrap_or(1))
                .with_priority(place.priority);
            // Draining is not part of an endpoint's identity: a drained
            // endpoint keeps its pool, health and outlier state.
            let kept = reuse.and_then(|p| {
                p.layout
                    .fixed
                    .iter()
                    .find(|old| {
                        old.address == fresh.address
                            && old.labels == fresh.labels
                            && old.weight == fresh.weight
                            && old.priority == fresh.priority
                    })
                    .cloned()
            });
            let endpoint = kept.unwrap_or_else(|| Arc::new(fresh));
            if place.drained {
                drained.push(endpoint.clone());
            }
            endpoints.push(endpoint);
        }
    }
    if !(1..=MAX_CONNECTIONS_PER_ENDPOINT).contains(&connections) {
        sink.on(
            &c.name,
            format!(
                "connections_per_endpoint must be between 1 and {MAX_CONNECTIONS_PER_ENDPOINT}"
            ),
        );
    }
    let mut subsets = Vec::new();
    for (name, selector) in &c.subsets {
        if name.is_empty() {
            sink.on(selector, "subset name must not be empty");
        }
        subsets.push((name.clone(), selector.value.clone()));
    }
    let layout = SetLayout {
        lb: c.lb,
        subsets,
        fixed: endpoints,
        drained,
    };
    let feed = c
        .discovery
        .as_ref()
        .and_then(|d| build_feed(sink, &c.name.value, d, registry, previous, base_dir));
    if feed.is_none() && c.discovery.is_none() && c.endpoints.is_empty() {
        sink.on(&c.name, "a cluster needs `endpoints` or `discovery`");
    }
    let discovered = kept_discovered(feed.as_ref(), previous, reuse.is_some());
    let hash_policy = hash_policy(sink, c, protocol.route_features().affinity_cookies);
    let outlier = c.outlier_detection.as_ref().map(|o| OutlierPolicy {
        consecutive_errors: o.consecutive_errors.unwrap_or(5).max(1),
        consecutive_gateway_errors: o.consecutive_gateway_errors.unwrap_or(5).max(1),
        base_ejection: o
            .base_ejection_time
            .map_or(Duration::from_secs(30), |d| d.get()),
        max_ejection_percent: o.max_ejection_percent.unwrap_or(10).min(100),
        interval: o.interval.map_or(Duration::from_secs(10), |d| d.get()),
    });
    if let Some(h) = &c.health_check {
        let hc = &h.value;
        if hc.timeout.is_some_and(|t| t.get().is_zero())
            || hc.interval.is_some_and(|t| t.get().is_zero())
        {
            sink.on(
                h,
                "health check interval and timeout must be greater than zero",
            );
        }
    }
    let panic_threshold = c.panic_threshold.unwrap_or(50.0);
    if !(0.0..=100.0).contains(&panic_threshold) {
        sink.on(&c.name, "panic_threshold is a percentage (0-100)");
    }
    let health_checker =
        c.health_check
            .as_ref()
            .and_then(|h| match probe_of(&h.value, codec.as_ref()) {
                Ok(probe) => Some(HealthChecker::new(&h.value, probe)),
                Err(e) => {
                    sink.on(h, e.to_string());
                    None
                }
            });
    let parts = ClusterParts {
        name: Arc::from(c.name.value.as_str()),
        protocol: c.protocol.value.clone(),
        pool: PoolSettings {
            mode,
            connections_per_endpoint: connections.clamp(1, MAX_CONNECTIONS_PER_ENDPOINT),
            pipeline_depth: pipeline_depth.clamp(1, MAX_PIPELINE_DEPTH),
            connect_timeout,
            breaker,
            tls,
            idle_timeout: c
                .idle_timeout
                .map_or(DEFAULT_UPSTREAM_IDLE_TIMEOUT, |d| d.get()),
        },
        fingerprint,
        health_checker,
        codec: codec?.codec,
        hash_policy,
        outlier,
        failover: FailoverPolicy {
            panic_threshold,
            overprovisioning: f64::from(c.overprovisioning_factor.unwrap_or(140)) / 100.0,
        },
    };
    let cluster = Cluster::new(parts, layout, discovered, feed);
    if let Some(list) = cluster.discovery.as_ref().and_then(|f| f.latest()) {
        cluster.apply_discovered(&list);
    }
    Some(cluster)
}

/// The probe of a `health_check`: a TCP connect for `kind: tcp`, else what
/// the cluster's protocol makes of it (a TCP connect when it has no probe
/// of its own). With no codec (its error is already reported) any probe
/// does.
fn probe_of(
    check: &HealthCheckConfig,
    codec: Option<&ClusterCodec>,
) -> Result<Arc<dyn Probe>, PluginError> {
    let tcp = || Arc::new(TcpProbe) as Arc<dyn Probe>;
    if check.kind == HealthCheckKind::Tcp {
        check.only_options(&[])?;
        return Ok(tcp());
    }
    let Some(codec) = codec else {
        return Ok(tcp());
    };
    match &codec.probe {
        Some(make) => Ok(make(check)?.unwrap_or_else(tcp)),
        None if check.kind == HealthCheckKind::Protocol => {
            check.only_options(&[])?;
            Ok(tcp())
        }
        None => Err(PluginError::Invalid(format!(
            "no `kind: {}` health check for this protocol (use `protocol` or `tcp`)",
            check.kind.name()
        ))),
    }
}

/// The cluster's hash policy; `cookies`: whether its protocol sets
/// affinity cookies ([`RouteFeatures::affinity_cookies`](crate::registry::RouteFeatures)).
fn hash_policy(sink: &mut ErrorSink, c: &ClusterConfig, cookies: bool) -> Vec<HashPolicy> {
    let hashing = matches!(c.lb, LbPolicy::RingHash | LbPolicy::Maglev);
    if hashing && c.hash.is_empty() {
        sink.on(
            &c.name,
            "`ring_hash` and `maglev` need a `hash` policy (key, cookie or source_ip)",
        );
    }
    if !hashing && !c.hash.is_empty() {
        sink.on(&c.hash[0], "`hash` needs `lb: ring_hash` or `lb: maglev`");
    }
    let mut out = Vec::new();
    for h in &c.hash {
        let v = &h.value;
        let set = [v.key.is_some(), v.cookie.is_some(), v.source_ip.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if set != 1 {
            sink.on(
                h,
                "each hash policy entry has exactly one of `key`, `cookie`, `source_ip`",
            );
            continue;
        }
        if let Some(k) = &v.key {
            out.push(HashPolicy::Key(k.clone()));
        } else if let Some(cookie) = &v.cookie {
            if !cookies {
                sink.on(
                    h,
                    format!(
                        "cookie hashing needs a cluster whose protocol sets cookies, not `{}`",
                        c.protocol.value
                    ),
                );
            }
            out.push(HashPolicy::Cookie {
                name: cookie.name.clone(),
                ttl: cookie.ttl.map(|t| t.get()),
                path: cookie.path.clone().unwrap_or_else(|| "/".into()),
            });
        } else if v.source_ip == Some(true) {
            out.push(HashPolicy::SourceIp);
        }
    }
    out
}

fn breaker(sink: &mut ErrorSink, c: &ClusterConfig) -> Arc<CircuitBreaker> {
    let cb = &c.circuit_breaker;
    let d = BreakerLimits::default();
    let limits = BreakerLimits {
        max_connections: cb.max_connections.unwrap_or(d.max_connections),
        max_pending: cb.max_pending.unwrap_or(d.max_pending),
        max_requests: cb.max_requests.unwrap_or(d.max_requests),
        max_retries: cb.max_retries.unwrap_or(d.max_retries),
        max_requests_per_connection: cb.max_requests_per_connection,
        retry_budget: c.retry_budget.as_ref().map(|b| {
            (
                b.percent.unwrap_or(20.0),
                b.min_retry_concurrency.unwrap_or(3),
            )
        }),
    };
    if limits.max_connections == 0 || limits.max_requests == 0 {
        sink.on(
            &c.name,
            "circuit_breaker: max_connections and max_requests must be at least 1",
        );
    }
    if limits.max_requests_per_connection == Some(0) {
        sink.on(
            &c.name,
            "circuit_breaker: max_requests_per_connection must be at least 1",
        );
    }
    Arc::new(CircuitBreaker::new(limits))
}

/// The protocol's own config section (`options:`), handed to its codec as
/// it is; `null` when absent.
pub(super) fn protocol_section(
    options: Option<&serde_saphyr::Spanned<serde_json::Value>>,
) -> serde_json::Value {
    options.map_or(serde_json::Value::Null, |o| o.value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{Outcome, now_ms};
    use crate::config::parse_str;

    /// Builds the first cluster of `clusters:\n{yaml}` with the `inert`
    /// protocol: the cluster, and the errors found.
    fn try_build(
        yaml: &str,
        previous: Option<&Cluster>,
    ) -> (Option<Cluster>, Result<(), crate::config::ConfigErrors>) {
        let text = format!("listeners: []\nclusters:\n{yaml}");
        let loaded = parse_str(&text, "t.yaml").unwrap();
        let registry = crate::inert_protocol::InertProtocol::registry();
        let mut sink = ErrorSink::new("t.yaml");
        let c = build_cluster(
            &mut sink,
            &loaded.config.clusters[0].value,
            &registry,
            previous,
            None,
        );
        (c, sink.finish())
    }

    fn build(yaml: &str, previous: Option<&Cluster>) -> Cluster {
        let (c, errors) = try_build(yaml, previous);
        errors.unwrap();
        c.unwrap()
    }

    /// The errors of building a `inert` cluster with `health_check: {check}`.
    fn health_check_errors(check: &str) -> String {
        let yaml = format!(
            "  - name: c\n    protocol: inert\n    health_check: {check}\n    endpoints: [ {{ address: \"127.0.0.1:1\" }} ]\n"
        );
        let (c, errors) = try_build(&yaml, None);
        match errors {
            Ok(()) => {
                assert!(c.unwrap().parts.health_checker.is_some());
                String::new()
            }
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_health_check_kind_or_field_the_protocol_does_not_know_is_a_config_error() {
        // A protocol without a probe of its own: `protocol` and `tcp` are
        // TCP connects, taking no probe fields.
        assert_eq!(health_check_errors("{ interval: 1s }"), "");
        assert_eq!(health_check_errors("{ kind: tcp }"), "");
        let e = health_check_errors("{ kind: http, path: /health }");
        assert!(
            e.contains("no `kind: http` health check for this protocol"),
            "{e}"
        );
        assert!(
            e.contains("t.yaml:5:"),
            "located at the health_check entry: {e}"
        );
        let e = health_check_errors("{ kind: tcp, path: /health }");
        assert!(e.contains("unknown field `path` for `kind: tcp`"), "{e}");
        let e = health_check_errors("{ method: ping }");
        assert!(
            e.contains("unknown field `method` for `kind: protocol`"),
            "{e}"
        );
    }

    fn zones(drain: &str) -> String {
        format!(
            r#"  - name: c
    protocol: inert
    outlier_detection: {{ consecutive_gateway_errors: 1, max_ejection_percent: 100 }}
    locality: {{ zones: [zone-a, zone-b]{drain} }}
    endpoints:
      - {{ address: "127.0.0.1:1", zone: zone-a }}
      - {{ address: "127.0.0.1:2", zone: zone-a }}
      - {{ address: "127.0.0.1:3", zone: zone-b }}
"#
        )
    }

    fn zone_of_picks(c: &Cluster) -> Vec<String> {
        let mut seen: Vec<String> = (0..100)
            .map(|_| c.pick(0, None, &[]).unwrap().zone().unwrap().to_string())
            .collect();
        seen.sort();
        seen.dedup();
        seen
    }

    #[test]
    fn zones_become_priorities_and_draining_by_reload_keeps_endpoint_state() {
        let first = build(&zones(""), None);
        let eps = &first.endpoints().all().to_vec();
        assert_eq!(
            eps.iter().map(|e| e.priority).collect::<Vec<_>>(),
            [0, 0, 1]
        );
        assert_eq!(zone_of_picks(&first), ["zone-a"]);
        // Some state on an endpoint of zone A: an ejection.
        let p = first.parts.outlier.clone().unwrap();
        eps[0].record_outcome(Outcome::GatewayError, &p, eps);
        assert_eq!(eps[0].health.times_ejected(), 1);

        let drained = build(&zones(", drain: [zone-a]"), Some(&first));
        assert_eq!(zone_of_picks(&drained), ["zone-b"]);
        for (old, new) in eps.iter().zip(&drained.endpoints().all().to_vec()) {
            assert!(Arc::ptr_eq(old, new), "{} was rebuilt", old.address);
        }
        assert!(drained.is_drained(&drained.endpoints().all().to_vec()[0]));
        assert!(!drained.is_drained(&drained.endpoints().all().to_vec()[2]));

        let back = build(&zones(""), Some(&drained));
        // Zone A is back, half healthy (its ejected endpoint is still out):
        // 70% stays in A, 30% spills to B.
        assert_eq!(zone_of_picks(&back), ["zone-a", "zone-b"]);
        let again = &back.endpoints().all().to_vec();
        assert!(Arc::ptr_eq(&eps[0], &again[0]));
        assert_eq!(again[0].health.times_ejected(), 1, "outlier state kept");
        assert!(again[0].health.is_ejected(now_ms()), "still ejected");
        assert!(Arc::ptr_eq(first.breaker(), back.breaker()));
    }

    #[test]
    fn drained_endpoints_leave_named_subsets_too() {
        let c = build(
            r#"  - name: c
    protocol: inert
    subsets: { v1: { version: v1 } }
    endpoints:
      - { address: "127.0.0.1:1", labels: { version: v1 }, drain: true }
      - { address: "127.0.0.1:2", labels: { version: v1 } }
      - { address: "127.0.0.1:3", labels: { version: v2 } }
"#,
            None,
        );
        let v1 = c.subset_index("v1").unwrap();
        assert_eq!(c.endpoints().subsets[v1].endpoints.len(), 2);
        for _ in 0..20 {
            assert_eq!(c.pick(v1, None, &[]).unwrap().address.port(), 2);
            assert_ne!(c.pick(0, None, &[]).unwrap().address.port(), 1);
        }
    }
}
