//! Istio's and Aeraki's resources as a metaproxy config: Gateways become
//! listeners, VirtualServices their virtual hosts and routes (mesh ones an
//! outbound listener), DestinationRules the clusters' subsets and
//! policies, ServiceEntries the clusters' endpoints, Aeraki MetaRouters the
//! routes of Dubbo and Thrift listeners. docs/istio-import.md has the
//! mapping, field by field.

mod cluster;
mod gateway;
mod http_route;
mod meta_router;
mod virtual_service;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::crd::*;
use super::notes::Notes;

/// The outbound listener mesh VirtualServices share (Istio's outbound
/// capture port).
pub(crate) const MESH_LISTENER: &str = "mesh-outbound";
const MESH_ADDRESS: &str = "127.0.0.1:15001";

/// One resource read from a file.
pub(crate) struct Doc {
    /// `file:line Kind namespace/name`, for notes.
    pub resource: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub spec: Value,
}

/// A cluster a route sends to: host and port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ClusterKey {
    host: String,
    port: u32,
}

impl ClusterKey {
    fn name(&self) -> String {
        format!("outbound|{}||{}", self.port, self.host)
    }
}

/// What routes need of a cluster.
#[derive(Debug, Default)]
struct Use {
    /// The protocol of the listeners that route to it.
    protocol: String,
}

/// The whole import.
#[derive(Default)]
pub(crate) struct Importer {
    pub(crate) notes: Notes,
    listeners: BTreeMap<String, Value>,
    uses: BTreeMap<ClusterKey, Use>,
    entries: Vec<(String, String, ServiceEntrySpec)>,
    rules: BTreeMap<String, (String, DestinationRuleSpec)>,
    /// Gateway `namespace/name` → its listeners (name, protocol, hosts).
    gateways: BTreeMap<String, Vec<(String, String)>>,
}

/// Istio's name for a host in `namespace`: a short name is the service of
/// that namespace.
fn fqdn(host: &str, namespace: &str) -> String {
    if host.contains('.') || host == "*" {
        host.to_string()
    } else {
        format!("{host}.{namespace}.svc.cluster.local")
    }
}

impl Importer {
    /// Reads one resource; unknown kinds are noted.
    pub(crate) fn take(&mut self, doc: Doc) {
        self.notes.resource = doc.resource.clone();
        let spec = doc.spec.clone();
        macro_rules! parse {
            ($t:ty) => {
                match serde_json::from_value::<$t>(spec) {
                    Ok(s) => s,
                    Err(e) => {
                        self.notes.add("spec", format!("not read: {e}"));
                        return;
                    }
                }
            };
        }
        match doc.kind.as_str() {
            "Gateway" => {
                let s = parse!(GatewaySpec);
                self.gateway(&doc, s);
            }
            "VirtualService" => {
                let s = parse!(VirtualServiceSpec);
                self.virtual_service(&doc, s);
            }
            "DestinationRule" => {
                let s = parse!(DestinationRuleSpec);
                self.notes.export_to(&s.export_to);
                self.notes.unsupported(
                    "spec.workloadSelector",
                    s.workload_selector.is_some(),
                    "Kubernetes-only: which workloads the rule applies to",
                );
                let host = fqdn(&s.host, &doc.namespace);
                self.rules.insert(host, (doc.resource.clone(), s));
            }
            "ServiceEntry" => {
                let s = parse!(ServiceEntrySpec);
                self.entries
                    .push((doc.resource.clone(), doc.namespace.clone(), s));
            }
            "MetaRouter" => {
                let s = parse!(MetaRouterSpec);
                self.meta_router(&doc, s);
            }
            other => self.notes.add("kind", format!("`{other}` is not imported")),
        }
    }

    /// The config (the listeners, and a cluster for every destination) and
    /// every note.
    pub(crate) fn finish(mut self) -> (Value, Vec<super::notes::Note>) {
        let mut clusters = Vec::new();
        let uses = std::mem::take(&mut self.uses);
        for (key, u) in &uses {
            clusters.push(self.cluster(key, u));
        }
        let mut seen_rules: Vec<String> = uses.keys().map(|k| k.host.clone()).collect();
        seen_rules.dedup();
        for (host, (resource, _)) in &self.rules {
            if !seen_rules.contains(host) {
                self.notes.resource = resource.clone();
                self.notes.add(
                    "spec.host",
                    format!("no route sends to `{host}`: no cluster made"),
                );
            }
        }
        let config = json!({
            "listeners": self.listeners.into_values().collect::<Vec<_>>(),
            "clusters": clusters,
        });
        (config, self.notes.list)
    }
}

/// A percentage's value (100 when not given), its unknown fields noted.
fn percent(notes: &mut Notes, path: &str, p: Option<&Percent>) -> f64 {
    if let Some(p) = p {
        notes.other(path, &p.other);
    }
    p.and_then(|p| p.value).unwrap_or(100.0)
}

/// The proxy's protocol of an Aeraki MetaProtocol port name
/// (`tcp-metaprotocol-dubbo-hessian2-…`, `tcp-metaprotocol-thrift-…`).
fn meta_protocol(port_name: &str) -> Option<&'static str> {
    let rest = port_name.strip_prefix("tcp-metaprotocol-")?;
    if rest.starts_with("dubbo") {
        Some("dubbo")
    } else if rest.starts_with("thrift") {
        Some("thrift")
    } else {
        None
    }
}

fn push(listener: &mut Value, key: &str, v: Value) {
    match listener.get_mut(key).and_then(Value::as_array_mut) {
        Some(a) => a.push(v),
        None => listener[key] = json!([v]),
    }
}

fn has_filter(listener: &Value, name: &str) -> bool {
    listener["filters"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x.get(name).is_some()))
}

/// Sets `key` in `map` when `value` is given.
fn put<T: serde::Serialize>(map: &mut serde_json::Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        map.insert(key.into(), json!(v));
    }
}
