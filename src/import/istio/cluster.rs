//! One cluster per destination: endpoints from ServiceEntries, subsets
//! and policies from the host's DestinationRule.

use serde_json::{Value, json};

use super::*;

impl Importer {
    /// One cluster: endpoints from ServiceEntries (or DNS), subsets and
    /// policies from the host's DestinationRule.
    pub(super) fn cluster(&mut self, key: &ClusterKey, u: &Use) -> Value {
        let mut protocol = match u.protocol.as_str() {
            "http" => "http1",
            "tls_passthrough" => "tls_passthrough",
            other => other,
        }
        .to_string();
        let mut c = json!({ "name": key.name() });
        // Endpoints.
        let entry = self
            .entries
            .iter()
            .find(|(_, ns, e)| e.hosts.iter().any(|h| fqdn(h, ns) == key.host));
        match entry {
            Some((resource, _, e)) => {
                self.notes.resource = resource.clone();
                self.notes.other("spec", &e.other);
                self.notes.export_to(&e.export_to);
                self.notes.unsupported(
                    "spec.workloadSelector",
                    e.workload_selector.is_some(),
                    "Kubernetes-only: endpoints from workload pods",
                );
                self.notes.unsupported(
                    "spec.addresses",
                    !e.addresses.is_empty(),
                    "not carried: the proxy is addressed through its listeners",
                );
                for (i, p) in e.ports.iter().enumerate() {
                    self.notes.other(&format!("spec.ports[{i}]"), &p.other);
                }
                for (i, w) in e.endpoints.iter().enumerate() {
                    self.notes.other(&format!("spec.endpoints[{i}]"), &w.other);
                    self.notes.unsupported(
                        &format!("spec.endpoints[{i}].network"),
                        w.network.is_some(),
                        "not carried: one network",
                    );
                    self.notes.unsupported(
                        &format!("spec.endpoints[{i}].serviceAccount"),
                        w.service_account.is_some(),
                        "Kubernetes-only: workload identity",
                    );
                }
                let port = e.ports.iter().find(|p| p.number == key.port);
                if let Some(p) = port
                    && matches!(
                        p.protocol.as_deref(),
                        Some("HTTP2" | "GRPC" | "grpc" | "http2")
                    )
                    && protocol == "http1"
                {
                    protocol = "http2".into();
                }
                let resolution = e.resolution.as_deref().unwrap_or("NONE");
                let statics: Vec<Value> = e
                    .endpoints
                    .iter()
                    .filter(|w| w.address.parse::<std::net::IpAddr>().is_ok())
                    .map(|w| {
                        let target = port
                            .and_then(|p| w.ports.get(&p.name).copied().or(p.target_port))
                            .unwrap_or(key.port);
                        let mut ep = json!({ "address": format!("{}:{target}", w.address), "labels": w.labels, "weight": w.weight.unwrap_or(1) });
                        if let Some(zone) = w.locality.as_deref().and_then(|l| l.split('/').nth(1)) {
                            ep["zone"] = json!(zone);
                        }
                        ep
                    })
                    .collect();
                if !statics.is_empty() {
                    c["endpoints"] = json!(statics);
                } else if resolution == "DNS" || resolution == "DNS_ROUND_ROBIN" {
                    let name = e
                        .endpoints
                        .first()
                        .map_or(key.host.clone(), |w| w.address.clone());
                    c["discovery"] = json!({ "dns": { "name": name, "port": key.port } });
                } else {
                    self.notes.add("spec.endpoints", format!("no endpoint with an IP address and resolution `{resolution}`: `{}` has none", key.name()));
                    c["endpoints"] = json!([]);
                }
            }
            None => {
                // A Kubernetes service: its DNS name.
                c["discovery"] = json!({ "dns": { "name": key.host, "port": key.port } });
            }
        }
        // Subsets and policies.
        if let Some((resource, rule)) = self.rules.get(&key.host) {
            self.notes.resource = resource.clone();
            let mut subsets = serde_json::Map::new();
            for (i, s) in rule.subsets.iter().enumerate() {
                self.notes.other(&format!("spec.subsets[{i}]"), &s.other);
                self.notes.unsupported(
                    &format!("spec.subsets[{i}].trafficPolicy"),
                    s.traffic_policy.is_some(),
                    "not carried: subsets share the cluster's policy",
                );
                subsets.insert(s.name.clone(), json!(s.labels));
            }
            if !subsets.is_empty() {
                c["subsets"] = Value::Object(subsets);
            }
            self.notes.other("spec", &rule.other);
            if let Some(p) = &rule.traffic_policy {
                policy(&mut self.notes, p, &mut c, &mut protocol);
            }
        }
        c["protocol"] = json!(protocol);
        c
    }
}

/// A DestinationRule's traffic policy on cluster `c` (`protocol` may
/// become `http2`).
fn policy(notes: &mut Notes, p: &TrafficPolicy, c: &mut Value, protocol: &mut String) {
    let path = "spec.trafficPolicy";
    notes.other(path, &p.other);
    if let Some(lb) = &p.load_balancer {
        notes.other(&format!("{path}.loadBalancer"), &lb.other);
        match lb.simple.as_deref() {
            None => {}
            Some("ROUND_ROBIN" | "UNSPECIFIED") => c["lb"] = json!("round_robin"),
            Some("LEAST_REQUEST" | "LEAST_CONN") => c["lb"] = json!("least_request"),
            Some("RANDOM") => c["lb"] = json!("random"),
            Some(other) => notes.add(
                format!("{path}.loadBalancer.simple"),
                format!("`{other}` is not carried"),
            ),
        }
        if let Some(h) = &lb.consistent_hash {
            notes.other(&format!("{path}.loadBalancer.consistentHash"), &h.other);
            c["lb"] = json!(if h.maglev.is_some() {
                "maglev"
            } else {
                "ring_hash"
            });
            let mut hash = Vec::new();
            if let Some(name) = &h.http_header_name {
                hash.push(json!({ "key": name.to_ascii_lowercase() }));
            }
            if let Some(cookie) = &h.http_cookie {
                notes.other(
                    &format!("{path}.loadBalancer.consistentHash.httpCookie"),
                    &cookie.other,
                );
                let mut x = json!({ "name": cookie.name });
                if let Some(t) = &cookie.ttl {
                    x["ttl"] = json!(t);
                }
                if let Some(path) = &cookie.path {
                    x["path"] = json!(path);
                }
                hash.push(json!({ "cookie": x }));
            }
            if h.use_source_ip == Some(true) {
                hash.push(json!({ "source_ip": true }));
            }
            if let Some(q) = &h.http_query_parameter_name {
                hash.push(json!({ "key": format!("query.{q}") }));
            }
            if hash.is_empty() {
                hash.push(json!({ "source_ip": true }));
            }
            c["hash"] = json!(hash);
        }
    }
    let mut breaker = serde_json::Map::new();
    if let Some(pool) = &p.connection_pool {
        notes.other(&format!("{path}.connectionPool"), &pool.other);
        if let Some(tcp) = &pool.tcp {
            notes.other(&format!("{path}.connectionPool.tcp"), &tcp.other);
            put(&mut breaker, "max_connections", tcp.max_connections);
            if let Some(t) = &tcp.connect_timeout {
                c["connect_timeout"] = json!(t);
            }
        }
        if let Some(http) = &pool.http {
            notes.other(&format!("{path}.connectionPool.http"), &http.other);
            for (key, v) in [
                ("max_pending", http.http1_max_pending_requests),
                ("max_requests", http.http2_max_requests),
                ("max_retries", http.max_retries),
            ] {
                if let Some(v) = v {
                    breaker.insert(key.into(), json!(v));
                }
            }
            put(
                &mut breaker,
                "max_requests_per_connection",
                http.max_requests_per_connection,
            );
            if let Some(t) = &http.idle_timeout {
                c["idle_timeout"] = json!(t);
            }
            if http.h2_upgrade_policy.as_deref() == Some("UPGRADE") && protocol == "http1" {
                *protocol = "http2".into();
            }
        }
    }
    if !breaker.is_empty() {
        c["circuit_breaker"] = Value::Object(breaker);
    }
    if let Some(o) = &p.outlier_detection {
        notes.other(&format!("{path}.outlierDetection"), &o.other);
        let mut x = serde_json::Map::new();
        put(
            &mut x,
            "consecutive_errors",
            o.consecutive5xx_errors.or(o.consecutive_errors),
        );
        put(
            &mut x,
            "consecutive_gateway_errors",
            o.consecutive_gateway_errors,
        );
        put(&mut x, "interval", o.interval.as_ref());
        put(&mut x, "base_ejection_time", o.base_ejection_time.as_ref());
        put(&mut x, "max_ejection_percent", o.max_ejection_percent);
        c["outlier_detection"] = Value::Object(x);
    }
    if let Some(t) = &p.tls {
        notes.other(&format!("{path}.tls"), &t.other);
        notes.unsupported(
            &format!("{path}.tls.credentialName"),
            t.credential_name.is_some(),
            "Kubernetes-only: a Secret; give the files",
        );
        match t.mode.as_deref().unwrap_or("DISABLE") {
            "DISABLE" => {}
            "SIMPLE" | "MUTUAL" => {
                let mut x = serde_json::Map::new();
                put(&mut x, "ca", t.ca_certificates.as_ref());
                put(&mut x, "cert", t.client_certificate.as_ref());
                put(&mut x, "key", t.private_key.as_ref());
                put(&mut x, "sni", t.sni.as_ref());
                if t.insecure_skip_verify == Some(true) || t.ca_certificates.is_none() {
                    x.insert("verify".into(), json!(false));
                }
                c["tls"] = Value::Object(x);
            }
            other => notes.add(
                format!("{path}.tls.mode"),
                format!(
                    "`{other}` is not carried (ISTIO_MUTUAL needs Istio's workload identities)"
                ),
            ),
        }
    }
}
