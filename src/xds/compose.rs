//! The config the proxy runs: the static file plus every resource the
//! control plane sent, translated and merged by name, rendered as text
//! (JSON, which the YAML loader reads) with a map from its lines back to
//! the resources, so that an error the config builder finds names the
//! resource to NACK.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::dubbo_proxy::v3::MultipleRouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::generic_proxy::v3::RouteConfiguration as GenericRouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::thrift_proxy::v3::RouteConfiguration as ThriftRouteConfiguration;
use serde_json::{Value, json};

use super::kind::Kind;
use super::translate::{
    self, RouteSource, Uses, XdsCluster, XdsListener, generic_routes, http_routes, rpc_routes,
};

/// The control plane's resources the config is made of (EDS goes
/// straight to the clusters, not through the config).
#[derive(Debug, Default, Clone)]
pub struct Resources {
    /// LDS, by name.
    pub listeners: BTreeMap<String, Listener>,
    /// RDS, by name.
    pub routes: BTreeMap<String, RouteConfiguration>,
    /// CDS, by name.
    pub clusters: BTreeMap<String, Cluster>,
    /// TRDS, by name.
    pub thrift_routes: BTreeMap<String, ThriftRouteConfiguration>,
    /// DRDS, by name.
    pub dubbo_routes: BTreeMap<String, MultipleRouteConfiguration>,
    /// Generic RDS (`generic_proxy` routes), by name.
    pub generic_routes: BTreeMap<String, GenericRouteConfiguration>,
}

/// A resource the proxy cannot take, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Its type.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// What is wrong (names the field).
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

/// A composed config and where each resource sits in its text.
#[derive(Debug)]
pub struct Composed {
    /// The config text.
    pub text: String,
    /// The same config as JSON (for `/config_dump`).
    pub value: std::sync::Arc<Value>,
    /// `(first line, last line, kind, name)` of each resource (1-based).
    pub lines: Vec<(usize, usize, Kind, String)>,
    /// Listeners waiting for their route configuration (RDS, TRDS, DRDS,
    /// generic RDS).
    pub pending: Vec<String>,
    /// The names of each type asked for by name that the listeners (route
    /// configurations) and clusters (EDS) need.
    pub names: BTreeMap<Kind, BTreeSet<String>>,
}

impl Composed {
    /// The names each type asked for by name must now be subscribed to
    /// (every such type, so that names no longer needed are dropped).
    pub fn subscriptions(&self) -> Vec<(Kind, BTreeSet<String>)> {
        Kind::ALL
            .into_iter()
            .filter(|k| !k.wildcard())
            .map(|k| (k, self.names(k).clone()))
            .collect()
    }

    /// The names of `kind` needed.
    pub fn names(&self, kind: Kind) -> &BTreeSet<String> {
        static NONE: BTreeSet<String> = BTreeSet::new();
        self.names.get(&kind).unwrap_or(&NONE)
    }

    /// The resource whose text holds `line`.
    pub fn resource_at(&self, line: usize) -> Option<(Kind, &str)> {
        self.lines
            .iter()
            .find(|(from, to, _, _)| (*from..=*to).contains(&line))
            .map(|(_, _, k, n)| (*k, n.as_str()))
    }
}

/// Merges `res` into the static config `base` (its JSON form).
pub fn compose(base: &Value, res: &Resources) -> Result<Composed, Refusal> {
    let taken = |key: &str| -> BTreeSet<String> {
        base.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
            .collect()
    };
    let (static_listeners, static_clusters) = (taken("listeners"), taken("clusters"));
    let mut uses = Uses::default();
    let mut listeners = Vec::new();
    let mut pending = Vec::new();
    let mut names: BTreeMap<Kind, BTreeSet<String>> = BTreeMap::new();
    for (name, l) in &res.listeners {
        let refuse = |message: String| Refusal {
            kind: Kind::Listener,
            name: name.clone(),
            message,
        };
        if static_listeners.contains(name) {
            return Err(refuse(format!(
                "listener `{name}` is also in the static config"
            )));
        }
        let XdsListener {
            mut config,
            protocol,
            routes,
        } = translate::listener(l).map_err(refuse)?;
        uses.for_protocol(protocol);
        let uses = &mut uses;
        let (key, routes) = match routes {
            RouteSource::Rds(rds) => (
                "virtual_hosts",
                discovered(Kind::Route, &rds, res.routes.get(&rds), &mut names, |rc| {
                    http_routes::virtual_hosts(rc, uses)
                })?,
            ),
            RouteSource::Trds(trds) => (
                "routes",
                discovered(
                    Kind::ThriftRoute,
                    &trds,
                    res.thrift_routes.get(&trds),
                    &mut names,
                    |rc| rpc_routes::thrift_routes(rc, uses),
                )?,
            ),
            RouteSource::Drds(drds) => (
                "routes",
                discovered(
                    Kind::DubboRoute,
                    &drds,
                    res.dubbo_routes.get(&drds),
                    &mut names,
                    |m| rpc_routes::dubbo_routes(&m.route_config, uses),
                )?,
            ),
            RouteSource::GenericRds(rds) => (
                "routes",
                discovered(
                    Kind::GenericRoute,
                    &rds,
                    res.generic_routes.get(&rds),
                    &mut names,
                    |rc| generic_routes::generic_routes(rc, uses),
                )?,
            ),
            RouteSource::Http(rc) => (
                "virtual_hosts",
                Some(http_routes::virtual_hosts(&rc, uses).map_err(refuse)?),
            ),
            RouteSource::Generic(rc) => (
                "routes",
                Some(generic_routes::generic_routes(&rc, uses).map_err(refuse)?),
            ),
            RouteSource::Thrift(rc) => (
                "routes",
                Some(rpc_routes::thrift_routes(&rc, uses).map_err(refuse)?),
            ),
            RouteSource::Dubbo(list) => (
                "routes",
                Some(rpc_routes::dubbo_routes(&list, uses).map_err(refuse)?),
            ),
        };
        let Some(routes) = routes else {
            pending.push(name.clone());
            continue;
        };
        config[key] = json!(routes);
        listeners.push((name.clone(), config));
    }
    let mut clusters = Vec::new();
    let mut eds_names = BTreeSet::new();
    for (name, needs) in &uses.by_cluster {
        if static_clusters.contains(name) {
            if res.clusters.contains_key(name) {
                return Err(Refusal {
                    kind: Kind::Cluster,
                    name: name.clone(),
                    message: format!("cluster `{name}` is also in the static config"),
                });
            }
            continue;
        }
        let refuse = |message: String| Refusal {
            kind: Kind::Cluster,
            name: name.clone(),
            message,
        };
        let [protocol] = needs.protocols.as_slice() else {
            return Err(refuse(format!(
                "cluster `{name}` is routed to by listeners of different protocols ({})",
                needs.protocols.join(", ")
            )));
        };
        if needs.hash_conflict {
            return Err(Refusal {
                kind: Kind::Route,
                name: name.clone(),
                message: format!("routes to cluster `{name}` give different hash policies"),
            });
        }
        let mut config = match res.clusters.get(name) {
            Some(c) => {
                let XdsCluster {
                    config,
                    eds_service,
                    http_version,
                } = translate::cluster(c).map_err(refuse)?;
                let mut config = config;
                config["protocol"] = json!(match protocol.as_str() {
                    "http" => http_version.unwrap_or("http1"),
                    other => other,
                });
                eds_names.extend(eds_service);
                config
            }
            // Not sent (yet): a cluster with no endpoint, so its routes
            // answer "no healthy upstream" as Envoy answers an unknown
            // cluster, until CDS names it.
            None => json!({
                "name": name,
                "protocol": if protocol == "http" { "http1" } else { protocol.as_str() },
                "discovery": { "xds": { "service": name } },
            }),
        };
        if !needs.subsets.is_empty() {
            config["subsets"] = json!(needs.subsets);
        }
        let hashing = matches!(config["lb"].as_str(), Some("ring_hash" | "maglev"));
        if hashing {
            config["hash"] = match &needs.hash {
                Some(h) => json!(h),
                None => json!([{ "source_ip": true }]),
            };
        }
        clusters.push((name.clone(), config));
    }
    names.insert(Kind::Endpoint, eds_names);
    Ok(render(base, listeners, clusters, pending, names))
}

/// The config text: the static keys, then the static and xDS listeners and
/// clusters, one resource after another, their lines recorded.
fn render(
    base: &Value,
    listeners: Vec<(String, Value)>,
    clusters: Vec<(String, Value)>,
    pending: Vec<String>,
    names: BTreeMap<Kind, BTreeSet<String>>,
) -> Composed {
    let mut value = base.clone();
    for (key, own) in [("listeners", &listeners), ("clusters", &clusters)] {
        let mut list = value
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        list.extend(own.iter().map(|(_, v)| v.clone()));
        value[key] = Value::Array(list);
    }
    let mut text = String::from("{\n");
    let mut lines = Vec::new();
    let mut line = 2;
    let put = |text: &mut String, line: &mut usize, piece: &str| {
        text.push_str(piece);
        *line += piece.matches('\n').count();
    };
    if let Some(obj) = base.as_object() {
        for (k, v) in obj {
            if k == "listeners" || k == "clusters" {
                continue;
            }
            let piece = format!("{}: {},\n", json!(k), v);
            put(&mut text, &mut line, &piece);
        }
    }
    for (key, own, kind) in [
        ("listeners", listeners, Kind::Listener),
        ("clusters", clusters, Kind::Cluster),
    ] {
        put(&mut text, &mut line, &format!("{}: [\n", json!(key)));
        for v in base
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            put(&mut text, &mut line, &format!("{v},\n"));
        }
        for (name, v) in own {
            let piece = serde_json::to_string_pretty(&v).unwrap_or_default();
            let from = line;
            put(&mut text, &mut line, &format!("{piece},\n"));
            lines.push((from, line - 1, kind, name));
        }
        put(&mut text, &mut line, "],\n");
    }
    // JSON allows no trailing commas; YAML's flow style does not either.
    let text = text.replace(",\n]", "\n]");
    let text = format!("{}\n}}\n", text.trim_end().trim_end_matches(','));
    Composed {
        text,
        value: std::sync::Arc::new(value),
        lines,
        pending,
        names,
    }
}

/// A listener's routes from the resource of `kind` it names: translated,
/// or `None` while the control plane has not sent it; the name is recorded
/// as needed either way.
fn discovered<R>(
    kind: Kind,
    name: &str,
    found: Option<&R>,
    names: &mut BTreeMap<Kind, BTreeSet<String>>,
    translate: impl FnOnce(&R) -> Result<Vec<Value>, String>,
) -> Result<Option<Vec<Value>>, Refusal> {
    names.entry(kind).or_default().insert(name.to_string());
    found.map(translate).transpose().map_err(|message| Refusal {
        kind,
        name: name.to_string(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_control_plane_leaves_the_static_config() {
        let base =
            json!({ "admin": { "address": "127.0.0.1:0" }, "listeners": [ { "name": "s" } ] });
        let c = compose(&base, &Resources::default()).unwrap();
        let back: Value = serde_json::from_str(&c.text).unwrap();
        assert_eq!(back["listeners"][0]["name"], "s");
        assert_eq!(back["clusters"], json!([]));
        assert_eq!(back["admin"]["address"], "127.0.0.1:0");
    }
}
