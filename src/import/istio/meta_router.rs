//! Aeraki MetaRouters: routes of the Dubbo and Thrift listeners.

use serde_json::{Value, json};

use super::*;

impl Importer {
    pub(super) fn meta_router(&mut self, doc: &Doc, s: MetaRouterSpec) {
        self.notes.export_to(&s.export_to);
        self.notes.other("spec", &s.other);
        for host in &s.hosts {
            let host = fqdn(host, &doc.namespace);
            // The MetaProtocol ports of the host's ServiceEntry say the
            // protocol: `tcp-metaprotocol-<codec>-...`.
            let ports: Vec<(u32, String)> = self
                .entries
                .iter()
                .filter(|(_, ns, e)| e.hosts.iter().any(|h| fqdn(h, ns) == host))
                .flat_map(|(_, _, e)| e.ports.clone())
                .filter_map(|p| meta_protocol(&p.name).map(|proto| (p.number, proto.to_string())))
                .collect();
            if ports.is_empty() {
                self.notes.add("spec.hosts", format!("no ServiceEntry port `tcp-metaprotocol-dubbo-…` or `…-thrift-…` for `{host}` among the files"));
                continue;
            }
            for (port, protocol) in ports {
                let mut routes = Vec::new();
                for (i, r) in s.routes.iter().enumerate() {
                    let path = format!("spec.routes[{i}]");
                    self.notes.other(&path, &r.other);
                    let mut conditions = Vec::new();
                    if let Some(m) = &r.matches {
                        self.notes.other(&format!("{path}.match"), &m.other);
                        for (k, sm) in &m.attributes {
                            conditions.extend(self.string_match(
                                &format!("{path}.match.attributes.{k}"),
                                k,
                                sm,
                                false,
                            ));
                        }
                    }
                    let dests: Vec<Value> = r
                        .route
                        .iter()
                        .enumerate()
                        .map(|(j, d)| {
                            self.notes.other(&format!("{path}.route[{j}]"), &d.other);
                            let mut dest = d.destination.clone();
                            if dest.port.is_none() {
                                dest.port = Some(PortSelector { number: Some(port), other: Other::new() });
                            }
                            let (cluster, subset) = self.destination(&format!("{path}.route[{j}].destination"), &dest, &doc.namespace, &protocol);
                            let mut t = json!({ "cluster": cluster, "weight": d.weight.unwrap_or(if r.route.len() == 1 { 100 } else { 0 }) });
                            if let Some(s) = subset {
                                t["subset"] = json!(s);
                            }
                            t
                        })
                        .collect();
                    let mut action = match dests.as_slice() {
                        [] => continue,
                        [one] => {
                            let mut a = json!({ "cluster": one["cluster"] });
                            if let Some(s) = one.get("subset") {
                                a["subset"] = s.clone();
                            }
                            a
                        }
                        _ => json!({ "weighted": dests }),
                    };
                    let mirror = self.mirror(
                        &path,
                        r.mirror.as_ref(),
                        r.mirror_percentage.as_ref(),
                        &doc.namespace,
                        &protocol,
                    );
                    if let Some(x) = mirror {
                        action["mirror"] = x;
                    }
                    let mut route = json!({ "name": r.name.clone().unwrap_or_else(|| format!("{}-{i}", doc.name)), "match": conditions, "route": action });
                    let set = |list: &[KeyValue]| -> Value {
                        json!({ "set": list.iter().map(|kv| (kv.key.clone(), json!(kv.value))).collect::<serde_json::Map<_, _>>() })
                    };
                    for (k, kv) in r.request_mutation.iter().enumerate() {
                        self.notes
                            .other(&format!("{path}.requestMutation[{k}]"), &kv.other);
                    }
                    for (k, kv) in r.response_mutation.iter().enumerate() {
                        self.notes
                            .other(&format!("{path}.responseMutation[{k}]"), &kv.other);
                    }
                    if !r.request_mutation.is_empty() {
                        route["request_headers"] = set(&r.request_mutation);
                    }
                    if !r.response_mutation.is_empty() {
                        route["response_headers"] = set(&r.response_mutation);
                    }
                    routes.push(route);
                }
                let name = format!("{}-{port}", doc.name);
                self.listeners.insert(
                    name.clone(),
                    json!({ "name": name, "address": format!("0.0.0.0:{port}"), "protocol": protocol, "routes": routes }),
                );
            }
        }
    }
}
