//! VirtualServices: virtual hosts on the gateways' listeners (or the mesh
//! listener), TLS routes by SNI, and the destinations they send to.

use serde_json::{Value, json};

use super::*;

impl Importer {
    pub(super) fn virtual_service(&mut self, doc: &Doc, s: VirtualServiceSpec) {
        self.notes.export_to(&s.export_to);
        self.notes
            .unsupported("spec.tcp", !s.tcp.is_empty(), "TCP routes are not imported");
        self.notes.other("spec", &s.other);
        // A Kubernetes service answers to its short names too
        // (`reviews`, `reviews.default`, ...), as in Istio's sidecars.
        let mut hosts: Vec<String> = Vec::new();
        for h in &s.hosts {
            let full = fqdn(h, &doc.namespace);
            if let Some(short) = full.strip_suffix(".svc.cluster.local") {
                let mut parts: Vec<&str> = short.split('.').collect();
                parts.push("svc");
                for n in 1..=parts.len() {
                    hosts.push(parts[..n].join("."));
                }
            }
            hosts.push(full);
        }
        hosts.dedup();
        // The listeners the routes go on: the gateways', or the mesh's.
        let mut targets: Vec<(String, String)> = Vec::new();
        let mesh = s.gateways.is_empty() || s.gateways.iter().any(|g| g == "mesh");
        for g in s.gateways.iter().filter(|g| *g != "mesh") {
            let key = if g.contains('/') {
                g.clone()
            } else {
                format!("{}/{g}", doc.namespace)
            };
            match self.gateways.get(&key) {
                Some(l) => targets.extend(l.iter().cloned()),
                None => self.notes.add(
                    "spec.gateways",
                    format!("gateway `{key}` is not among the files (give it before its VirtualServices)"),
                ),
            }
        }
        if mesh {
            self.listeners.entry(MESH_LISTENER.into()).or_insert_with(
                || json!({ "name": MESH_LISTENER, "address": MESH_ADDRESS, "protocol": "http" }),
            );
            targets.push((MESH_LISTENER.into(), "http".into()));
        }
        let mut routes = Vec::new();
        let mut faults = false;
        for (i, r) in s.http.iter().enumerate() {
            let path = format!("spec.http[{i}]");
            let (mut rs, fault) = self.http_route(&path, &doc.name, i, r, &doc.namespace);
            faults |= fault;
            routes.append(&mut rs);
        }
        let mut sni_routes = Vec::new();
        for (i, r) in s.tls.iter().enumerate() {
            let path = format!("spec.tls[{i}]");
            sni_routes.extend(self.tls_route(&path, &doc.name, i, r, &doc.namespace));
        }
        for (listener, protocol) in targets {
            let Some(l) = self.listeners.get_mut(&listener) else {
                continue;
            };
            match protocol.as_str() {
                "http" if !routes.is_empty() => {
                    let vh = json!({ "name": doc.name, "hosts": hosts, "routes": routes });
                    push(l, "virtual_hosts", vh);
                    // Routes with a fault override the listener's fault
                    // filter, which itself never fires (0%).
                    if faults && !has_filter(l, "fault") {
                        let inert = json!({ "abort": { "http_status": 503, "percentage": 0 } });
                        push(l, "filters", json!({ "fault": inert }));
                    }
                }
                "tls_passthrough" => {
                    for r in &sni_routes {
                        push(l, "routes", r.clone());
                    }
                }
                _ => {}
            }
        }
    }

    /// SNI routes of a TLS passthrough listener.
    pub(super) fn tls_route(
        &mut self,
        path: &str,
        vs: &str,
        index: usize,
        r: &TlsRoute,
        namespace: &str,
    ) -> Vec<Value> {
        self.notes.other(path, &r.other);
        let dests: Vec<Value> = r
            .route
            .iter()
            .enumerate()
            .map(|(j, d)| {
                let (cluster, subset) = self.destination(
                    &format!("{path}.route[{j}].destination"),
                    &d.destination,
                    namespace,
                    "tls_passthrough",
                );
                let mut t = json!({ "cluster": cluster, "weight": d.weight.unwrap_or(100) });
                if let Some(s) = subset {
                    t["subset"] = json!(s);
                }
                t
            })
            .collect();
        let action = match dests.as_slice() {
            [one] => json!({ "cluster": one["cluster"], "subset": one.get("subset") }),
            _ => json!({ "weighted": dests }),
        };
        let mut out = Vec::new();
        for (k, m) in r.matches.iter().enumerate() {
            self.notes.other(&format!("{path}.match[{k}]"), &m.other);
            for (s, host) in m.sni_hosts.iter().enumerate() {
                let c = match host.strip_prefix('*') {
                    Some(suffix) => json!({ "key": "sni", "suffix": suffix }),
                    None => json!({ "key": "sni", "exact": host }),
                };
                let mut action = action.clone();
                if action.get("subset").is_some_and(Value::is_null) {
                    action.as_object_mut().map(|a| a.remove("subset"));
                }
                out.push(json!({ "name": format!("{vs}-tls-{index}-{k}-{s}"), "match": [c], "route": action }));
            }
        }
        out
    }

    /// A route's `mirror` (with its `mirrorPercentage`), when it has one.
    pub(super) fn mirror(
        &mut self,
        path: &str,
        mirror: Option<&Destination>,
        percentage: Option<&Percent>,
        namespace: &str,
        protocol: &str,
    ) -> Option<Value> {
        let m = mirror?;
        let (cluster, subset) = self.destination(&format!("{path}.mirror"), m, namespace, protocol);
        let pct = percent(
            &mut self.notes,
            &format!("{path}.mirrorPercentage"),
            percentage,
        );
        let mut x = json!({ "cluster": cluster, "percent": pct });
        if let Some(s) = subset {
            x["subset"] = json!(s);
        }
        Some(x)
    }

    /// The cluster (and subset) of a destination, recorded for later.
    pub(super) fn destination(
        &mut self,
        path: &str,
        d: &Destination,
        namespace: &str,
        protocol: &str,
    ) -> (String, Option<String>) {
        self.notes.other(path, &d.other);
        if let Some(p) = &d.port {
            self.notes.other(&format!("{path}.port"), &p.other);
        }
        let host = fqdn(&d.host, namespace);
        let port = match d.port.as_ref().and_then(|p| p.number) {
            Some(p) => p,
            None => match self.single_port(&host) {
                Some(p) => p,
                None => {
                    self.notes.add(
                        format!("{path}.port"),
                        "no port given and none known for the host: port 80",
                    );
                    80
                }
            },
        };
        let key = ClusterKey { host, port };
        let name = key.name();
        let u = self.uses.entry(key).or_default();
        if u.protocol.is_empty() {
            u.protocol = protocol.to_string();
        }
        (name, d.subset.clone())
    }

    pub(super) fn single_port(&self, host: &str) -> Option<u32> {
        let ports: Vec<u32> = self
            .entries
            .iter()
            .filter(|(_, ns, s)| s.hosts.iter().any(|h| fqdn(h, ns) == host))
            .flat_map(|(_, _, s)| s.ports.iter().map(|p| p.number))
            .collect();
        match ports.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}
