//! A CDS `Cluster` as one of the proxy's clusters: balancer, limits,
//! outlier detection, health checks, TLS, and where its endpoints come
//! from (written in the cluster, or EDS through the `xds` discovery
//! source). The protocol is added when the cluster is composed: Envoy
//! clusters carry none, the listeners that route to them do.

use envoy_types::pb::envoy::config::cluster::v3::{
    Cluster, OutlierDetection, circuit_breakers, cluster,
};
use envoy_types::pb::envoy::config::core::v3::{HealthCheck, health_check};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options,
};
use prost::Message;
use serde_json::{Value, json};

use super::common::duration;
use super::tls::cluster_tls;
use crate::xds::leftover::refuse_rest;

const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// A cluster, translated but for its protocol.
#[derive(Debug, Clone)]
pub struct XdsCluster {
    /// The cluster's config, without `protocol`.
    pub config: Value,
    /// The EDS resource name, when its endpoints come from EDS.
    pub eds_service: Option<String>,
    /// The HTTP version its endpoints speak, when the cluster says it
    /// (`http1`, `http2`, or `http` to follow the client's).
    pub http_version: Option<&'static str>,
}

/// Translates one cluster.
pub fn translate(c: &Cluster) -> Result<XdsCluster, String> {
    let what = format!("cluster `{}`", c.name);
    let mut rest = c.clone();
    rest.name.clear();
    rest.alt_stat_name.clear();
    rest.cluster_discovery_type = None;
    rest.eds_cluster_config = None;
    rest.load_assignment = None;
    rest.connect_timeout = None;
    rest.lb_policy = 0;
    rest.circuit_breakers = None;
    rest.max_requests_per_connection = None;
    rest.outlier_detection = None;
    rest.health_checks.clear();
    rest.transport_socket = None;
    rest.typed_extension_protocol_options.remove(HTTP_OPTIONS);
    rest.lb_subset_config = None;
    rest.dns_lookup_family = 0;
    rest.dns_refresh_rate = None;
    if let Some(l) = &mut rest.common_lb_config {
        l.healthy_panic_threshold = None;
        if *l == Default::default() {
            rest.common_lb_config = None;
        }
    }
    refuse_rest(&what, &rest)?;
    let mut out = serde_json::Map::new();
    out.insert("name".into(), json!(c.name));
    // ROUND_ROBIN 0, LEAST_REQUEST 1, RING_HASH 2, RANDOM 3, MAGLEV 5.
    let lb = match c.lb_policy {
        0 => "round_robin",
        1 => "least_request",
        2 => "ring_hash",
        3 => "random",
        5 => "maglev",
        n => return Err(format!("{what}: lb_policy {n} is not supported")),
    };
    out.insert("lb".into(), json!(lb));
    if let Some(t) = &c.connect_timeout {
        out.insert("connect_timeout".into(), json!(duration(t)));
    }
    // STATIC 0, STRICT_DNS 1, LOGICAL_DNS 2, EDS 3.
    let kind = match &c.cluster_discovery_type {
        None => 0,
        Some(cluster::ClusterDiscoveryType::Type(t)) => *t,
        Some(_) => return Err(format!("{what}: custom cluster types are not supported")),
    };
    let mut eds_service = None;
    match kind {
        0 => {
            let endpoints = static_endpoints(&what, c)?;
            out.insert("endpoints".into(), json!(endpoints));
        }
        1 | 2 => {
            out.insert("discovery".into(), dns(&what, c)?);
        }
        3 => {
            let eds = c.eds_cluster_config.clone().unwrap_or_default();
            if eds.eds_config.is_some() {
                super::common::control_plane_source(
                    &format!("{what}: `eds_config`"),
                    eds.eds_config.as_ref(),
                )?;
            }
            let service = if eds.service_name.is_empty() {
                c.name.clone()
            } else {
                eds.service_name.clone()
            };
            out.insert("discovery".into(), json!({ "xds": { "service": service } }));
            eds_service = Some(service);
        }
        n => return Err(format!("{what}: cluster type {n} is not supported")),
    }
    if let Some(b) = &c.circuit_breakers {
        out.insert("circuit_breaker".into(), breaker(&what, b, c)?);
    } else if let Some(n) = &c.max_requests_per_connection {
        out.insert(
            "circuit_breaker".into(),
            json!({ "max_requests_per_connection": n.value }),
        );
    }
    if let Some(o) = &c.outlier_detection {
        out.insert("outlier_detection".into(), outlier(&what, o)?);
    }
    match c.health_checks.as_slice() {
        [] => {}
        [h] => {
            out.insert("health_check".into(), health(&what, h)?);
        }
        _ => return Err(format!("{what}: one health check at most")),
    }
    if let Some(ts) = &c.transport_socket {
        out.insert("tls".into(), cluster_tls(&what, ts)?);
    }
    if let Some(p) = c
        .common_lb_config
        .as_ref()
        .and_then(|l| l.healthy_panic_threshold.as_ref())
    {
        out.insert("panic_threshold".into(), json!(p.value));
    }
    let http_version = http_options(&what, c, &mut out)?;
    Ok(XdsCluster {
        config: Value::Object(out),
        eds_service,
        http_version,
    })
}

/// The endpoints of a `STATIC` cluster's load assignment.
fn static_endpoints(what: &str, c: &Cluster) -> Result<Vec<Value>, String> {
    let Some(la) = &c.load_assignment else {
        return Ok(Vec::new());
    };
    let found = super::endpoint::endpoints(what, la)?;
    Ok(found
        .into_iter()
        .map(|e| {
            json!({
                "address": e.address.to_string(),
                "labels": *e.labels,
                "weight": e.weight,
                "priority": e.priority,
            })
        })
        .collect())
}

/// A `STRICT_DNS` / `LOGICAL_DNS` cluster: one host name and port, watched
/// by the `dns` discovery source.
fn dns(what: &str, c: &Cluster) -> Result<Value, String> {
    use envoy_types::pb::envoy::config::core::v3::{address, socket_address};
    use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint;
    let la = c.load_assignment.clone().unwrap_or_default();
    let mut hosts = Vec::new();
    for l in &la.endpoints {
        for e in &l.lb_endpoints {
            if let Some(lb_endpoint::HostIdentifier::Endpoint(ep)) = &e.host_identifier
                && let Some(address::Address::SocketAddress(s)) =
                    ep.address.as_ref().and_then(|a| a.address.as_ref())
                && let Some(socket_address::PortSpecifier::PortValue(port)) = s.port_specifier
            {
                hosts.push((s.address.clone(), port));
            }
        }
    }
    let [(name, port)] = hosts.as_slice() else {
        return Err(format!("{what}: a DNS cluster needs exactly one host name"));
    };
    let mut d = json!({ "name": name, "port": port });
    if let Some(r) = &c.dns_refresh_rate {
        d["refresh"] = json!(duration(r));
    }
    Ok(json!({ "dns": d }))
}

fn breaker(
    what: &str,
    b: &envoy_types::pb::envoy::config::cluster::v3::CircuitBreakers,
    c: &Cluster,
) -> Result<Value, String> {
    let what = format!("{what}: circuit_breakers");
    let mut rest = b.clone();
    rest.thresholds.clear();
    refuse_rest(&what, &rest)?;
    let mut out = serde_json::Map::new();
    for t in &b.thresholds {
        // RoutingPriority DEFAULT 0 (HIGH 1 has no counterpart).
        if t.priority != 0 {
            return Err(format!(
                "{what}: only DEFAULT priority thresholds are supported"
            ));
        }
        let mut rest: circuit_breakers::Thresholds = *t;
        rest.max_connections = None;
        rest.max_pending_requests = None;
        rest.max_requests = None;
        rest.max_retries = None;
        rest.track_remaining = false;
        refuse_rest(&what, &rest)?;
        for (key, v) in [
            ("max_connections", &t.max_connections),
            ("max_pending", &t.max_pending_requests),
            ("max_requests", &t.max_requests),
            ("max_retries", &t.max_retries),
        ] {
            if let Some(v) = v {
                out.insert(key.into(), json!(v.value));
            }
        }
    }
    if let Some(n) = &c.max_requests_per_connection {
        out.insert("max_requests_per_connection".into(), json!(n.value));
    }
    Ok(Value::Object(out))
}

fn outlier(what: &str, o: &OutlierDetection) -> Result<Value, String> {
    let what = format!("{what}: outlier_detection");
    let mut rest = o.clone();
    rest.consecutive_5xx = None;
    rest.consecutive_gateway_failure = None;
    rest.interval = None;
    rest.base_ejection_time = None;
    rest.max_ejection_percent = None;
    refuse_rest(&what, &rest)?;
    let mut out = serde_json::Map::new();
    if let Some(n) = &o.consecutive_5xx {
        out.insert("consecutive_errors".into(), json!(n.value));
    }
    if let Some(n) = &o.consecutive_gateway_failure {
        out.insert("consecutive_gateway_errors".into(), json!(n.value));
    }
    if let Some(t) = &o.interval {
        out.insert("interval".into(), json!(duration(t)));
    }
    if let Some(t) = &o.base_ejection_time {
        out.insert("base_ejection_time".into(), json!(duration(t)));
    }
    if let Some(n) = &o.max_ejection_percent {
        out.insert("max_ejection_percent".into(), json!(n.value));
    }
    Ok(Value::Object(out))
}

fn health(what: &str, h: &HealthCheck) -> Result<Value, String> {
    let what = format!("{what}: health check");
    let mut rest = h.clone();
    rest.timeout = None;
    rest.interval = None;
    rest.unhealthy_threshold = None;
    rest.healthy_threshold = None;
    rest.health_checker = None;
    refuse_rest(&what, &rest)?;
    let mut out = serde_json::Map::new();
    if let Some(t) = &h.timeout {
        out.insert("timeout".into(), json!(duration(t)));
    }
    if let Some(t) = &h.interval {
        out.insert("interval".into(), json!(duration(t)));
    }
    if let Some(n) = &h.unhealthy_threshold {
        out.insert("unhealthy_threshold".into(), json!(n.value));
    }
    if let Some(n) = &h.healthy_threshold {
        out.insert("healthy_threshold".into(), json!(n.value));
    }
    match &h.health_checker {
        Some(health_check::HealthChecker::HttpHealthCheck(x)) => {
            let mut rest = x.clone();
            rest.path.clear();
            rest.expected_statuses.clear();
            refuse_rest(&format!("{what}: http"), &rest)?;
            out.insert("kind".into(), json!("http"));
            out.insert(
                "path".into(),
                json!(if x.path.is_empty() { "/" } else { &x.path }),
            );
            if !x.expected_statuses.is_empty() {
                let mut statuses = Vec::new();
                for r in &x.expected_statuses {
                    if r.end <= r.start || r.end - r.start > 200 {
                        return Err(format!(
                            "{what}: expected status range {}..{} is not supported",
                            r.start, r.end
                        ));
                    }
                    statuses.extend(r.start..r.end);
                }
                out.insert("expected_statuses".into(), json!(statuses));
            }
        }
        Some(health_check::HealthChecker::TcpHealthCheck(x)) => {
            refuse_rest(&format!("{what}: tcp"), x)?;
            out.insert("kind".into(), json!("tcp"));
        }
        Some(health_check::HealthChecker::GrpcHealthCheck(x)) => {
            let mut rest = x.clone();
            rest.service_name.clear();
            refuse_rest(&format!("{what}: grpc"), &rest)?;
            out.insert("kind".into(), json!("grpc"));
            if !x.service_name.is_empty() {
                out.insert("service".into(), json!(x.service_name));
            }
        }
        _ => {
            return Err(format!(
                "{what}: only http, tcp and grpc health checks are supported"
            ));
        }
    }
    Ok(Value::Object(out))
}

/// The upstream HTTP protocol options: the HTTP version and idle timeout.
fn http_options(
    what: &str,
    c: &Cluster,
    out: &mut serde_json::Map<String, Value>,
) -> Result<Option<&'static str>, String> {
    let Some(any) = c.typed_extension_protocol_options.get(HTTP_OPTIONS) else {
        return Ok(None);
    };
    let what = format!("{what}: {HTTP_OPTIONS}");
    let o =
        HttpProtocolOptions::decode(any.value.as_slice()).map_err(|e| format!("{what}: {e}"))?;
    let mut rest = o.clone();
    rest.upstream_protocol_options = None;
    if let Some(common) = &mut rest.common_http_protocol_options {
        common.idle_timeout = None;
        common.max_requests_per_connection = None;
        if *common == Default::default() {
            rest.common_http_protocol_options = None;
        }
    }
    refuse_rest(&what, &rest)?;
    if let Some(common) = &o.common_http_protocol_options {
        if let Some(t) = &common.idle_timeout {
            out.insert("idle_timeout".into(), json!(duration(t)));
        }
        if let Some(n) = &common.max_requests_per_connection {
            let cb = out.entry("circuit_breaker").or_insert_with(|| json!({}));
            cb["max_requests_per_connection"] = json!(n.value);
        }
    }
    use http_protocol_options::UpstreamProtocolOptions as U;
    use http_protocol_options::explicit_http_config::ProtocolConfig as P;
    Ok(match &o.upstream_protocol_options {
        None => None,
        Some(U::ExplicitHttpConfig(e)) => match &e.protocol_config {
            Some(P::Http2ProtocolOptions(_)) => Some("http2"),
            Some(P::HttpProtocolOptions(_)) | None => Some("http1"),
            Some(_) => return Err(format!("{what}: HTTP/3 is not supported")),
        },
        Some(U::UseDownstreamProtocolConfig(_)) => Some("http"),
        Some(_) => return Err(format!("{what}: `auto_config` is not supported")),
    })
}
