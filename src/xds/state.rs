//! The ADS state machine, apart from the network: what the proxy holds
//! from the control plane, what it asks for, and its answer (ACK or NACK)
//! to every response. State-of-the-world: each response of a type carries
//! every resource of that type the proxy asked for.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::dubbo_proxy::v3::MultipleRouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::generic_proxy::v3::RouteConfiguration as GenericRouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::thrift_proxy::v3::RouteConfiguration as ThriftRouteConfiguration;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status;
use prost::Message;
use serde_json::Value;
use tracing::{info, warn};

use super::compose::{Composed, Resources, compose};
use super::eds::EdsHub;
use super::kind::Kind;
use super::status::{ResourceStatus, XdsStatus};
use super::translate::endpoint;

/// Applies a composed config to the running proxy (a reload); an error
/// is the config builder's message, with its line in the composed text.
pub trait Apply: Send + Sync {
    /// Swaps `composed` in, or says why not.
    fn apply(&self, composed: &Composed) -> impl Future<Output = Result<(), ApplyError>> + Send;
}

/// Why a composed config was not applied.
#[derive(Debug, Clone)]
pub struct ApplyError {
    /// The line of the composed text the error is at (0: none).
    pub line: usize,
    /// The message.
    pub message: String,
}

/// What the proxy holds and has asked for.
#[derive(Debug)]
pub struct XdsState {
    node: Node,
    /// The static config (JSON) the resources are merged into.
    base: Value,
    resources: Resources,
    /// The last version accepted, by type.
    accepted: HashMap<Kind, String>,
    /// The last nonce received, by type.
    nonces: HashMap<Kind, String>,
    /// The names asked for (RDS, EDS).
    names: HashMap<Kind, BTreeSet<String>>,
    /// Every resource held, with its version, for `/config_dump`.
    held: BTreeMap<(Kind, String), String>,
    /// The last response refused, by type: its fingerprint and the reason.
    refused: HashMap<Kind, (u64, String)>,
    hub: std::sync::Arc<EdsHub>,
    status: std::sync::Arc<XdsStatus>,
}

impl XdsState {
    /// Empty state for `node`.
    pub fn new(
        node: Node,
        base: Value,
        hub: std::sync::Arc<EdsHub>,
        status: std::sync::Arc<XdsStatus>,
    ) -> Self {
        Self {
            node,
            base,
            resources: Resources::default(),
            accepted: HashMap::new(),
            nonces: HashMap::new(),
            names: HashMap::new(),
            held: BTreeMap::new(),
            refused: HashMap::new(),
            hub,
            status,
        }
    }

    /// This proxy's node, as it introduces itself.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The static config changed: the resources held are merged into the
    /// new one and applied; a refusal keeps the old base.
    pub async fn rebase(&mut self, base: Value, apply: &impl Apply) -> Result<(), String> {
        compose_and_apply(&base, &self.resources, apply).await?;
        self.base = base;
        Ok(())
    }

    /// The requests that open (or reopen) a stream: every type, with the
    /// names and versions held (a control plane that still has those
    /// versions need not resend them).
    pub fn opening_requests(&self) -> Vec<DiscoveryRequest> {
        Kind::ALL
            .into_iter()
            .filter(|k| k.wildcard() || !self.names.get(k).is_none_or(BTreeSet::is_empty))
            .map(|k| self.request(k, String::new(), None))
            .collect()
    }

    fn request(&self, kind: Kind, nonce: String, error: Option<String>) -> DiscoveryRequest {
        DiscoveryRequest {
            version_info: self.accepted.get(&kind).cloned().unwrap_or_default(),
            node: Some(self.node.clone()),
            resource_names: if kind.wildcard() {
                Vec::new()
            } else {
                self.names
                    .get(&kind)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect()
            },
            type_url: kind.type_url().to_string(),
            response_nonce: nonce,
            error_detail: error.map(|message| Status {
                code: 3, // INVALID_ARGUMENT
                message,
                details: Vec::new(),
            }),
            ..Default::default()
        }
    }

    /// A response that could not even be read as a `DiscoveryResponse`
    /// (REST: JSON that is not one): counted as refused, and the request
    /// that says so (the last accepted version, `why` as the error).
    pub fn refuse_unreadable(
        &mut self,
        kind: Kind,
        version: &str,
        why: String,
    ) -> DiscoveryRequest {
        warn!(r#type = kind.short(), version, error = %why, "xDS update rejected (NACK)");
        self.status.updated(kind, false, version, Some(&why));
        self.request(kind, String::new(), Some(why))
    }

    /// Takes one response: applies it or refuses it, and returns the
    /// requests to send (its ACK or NACK, then new subscriptions).
    pub async fn handle(
        &mut self,
        resp: DiscoveryResponse,
        apply: &impl Apply,
    ) -> Vec<DiscoveryRequest> {
        let Some(kind) = Kind::of(&resp.type_url) else {
            warn!(type_url = %resp.type_url, "xDS response of a type never asked for; ignored");
            return Vec::new();
        };
        self.nonces.insert(kind, resp.nonce.clone());
        // A control plane may send a refused response again at once (go-
        // control-plane does on every NACK): the same answer, paced, not
        // worked out and logged again.
        let print = fingerprint(&resp);
        if let Some((seen, why)) = self.refused.get(&kind)
            && *seen == print
        {
            let why = why.clone();
            tokio::time::sleep(REFUSED_AGAIN_PAUSE).await;
            return vec![self.request(kind, resp.nonce.clone(), Some(why))];
        }
        let outcome = match kind {
            Kind::Endpoint => self.take_endpoints(&resp),
            _ => self.take_config(kind, &resp, apply).await,
        };
        let out = self.answer(kind, &resp, print, outcome);
        self.publish_status();
        out
    }

    /// Takes several responses that arrived together. LDS, RDS and CDS
    /// responses of different types are applied as one config (one
    /// build instead of one per type: a control plane sends a large update
    /// as a CDS, then an RDS response); if that config is refused, they are
    /// taken one by one, so each answer names its own fault.
    pub async fn handle_all(
        &mut self,
        resps: Vec<DiscoveryResponse>,
        apply: &impl Apply,
    ) -> Vec<DiscoveryRequest> {
        let kinds: Vec<Option<Kind>> = resps.iter().map(|r| Kind::of(&r.type_url)).collect();
        let config_only = kinds.iter().all(|k| k.is_some_and(|k| k != Kind::Endpoint));
        let distinct = kinds.iter().collect::<std::collections::HashSet<_>>().len() == kinds.len();
        let fresh = resps.iter().zip(&kinds).all(|(r, k)| {
            k.is_some_and(|k| {
                self.refused
                    .get(&k)
                    .is_none_or(|(seen, _)| *seen != fingerprint(r))
            })
        });
        if resps.len() > 1 && config_only && distinct && fresh {
            let mut next = self.resources.clone();
            let decoded = resps
                .iter()
                .zip(&kinds)
                .try_for_each(|(r, k)| decode_into(k.expect("config kinds"), r, &mut next));
            if decoded.is_ok()
                && let Ok(composed) = compose_and_apply(&self.base, &next, apply).await
            {
                let mut out = Vec::new();
                for (r, k) in resps.iter().zip(&kinds) {
                    let kind = k.expect("config kinds");
                    self.nonces.insert(kind, r.nonce.clone());
                    self.hold(kind, r, &next);
                    out.extend(self.answer(kind, r, fingerprint(r), Ok(composed.subscriptions())));
                }
                self.resources = next;
                self.publish_status();
                return out;
            }
        }
        let mut out = Vec::new();
        for r in resps {
            out.extend(self.handle(r, apply).await);
        }
        out
    }

    /// The ACK or NACK of one response, and new subscriptions it brings.
    fn answer(
        &mut self,
        kind: Kind,
        resp: &DiscoveryResponse,
        print: u64,
        outcome: Result<Vec<(Kind, BTreeSet<String>)>, String>,
    ) -> Vec<DiscoveryRequest> {
        let mut out = Vec::new();
        match outcome {
            Ok(new_names) => {
                self.refused.remove(&kind);
                self.accepted.insert(kind, resp.version_info.clone());
                self.status.updated(kind, true, &resp.version_info, None);
                info!(r#type = kind.short(), version = %resp.version_info, resources = resp.resources.len(), "xDS update accepted");
                out.push(self.request(kind, resp.nonce.clone(), None));
                for (k, names) in new_names {
                    // A first request with no names would be a wildcard
                    // subscription (state-of-the-world's legacy rule).
                    let before = self.names.get(&k);
                    if before == Some(&names) || (before.is_none() && names.is_empty()) {
                        continue;
                    }
                    self.names.insert(k, names);
                    let nonce = self.nonces.get(&k).cloned().unwrap_or_default();
                    out.push(self.request(k, nonce, None));
                }
            }
            Err(why) => {
                warn!(r#type = kind.short(), version = %resp.version_info, error = %why, "xDS update rejected (NACK)");
                self.status
                    .updated(kind, false, &resp.version_info, Some(&why));
                self.refused.insert(kind, (print, why.clone()));
                out.push(self.request(kind, resp.nonce.clone(), Some(why)));
            }
        }
        out
    }

    fn publish_status(&self) {
        self.status.set_resources(
            self.held
                .iter()
                .map(|((k, name), version)| ResourceStatus {
                    kind: *k,
                    name: name.clone(),
                    version: version.clone(),
                })
                .collect(),
        );
    }

    /// Records the resources of `kind` now held (from `next`), at the
    /// response's version.
    fn hold(&mut self, kind: Kind, resp: &DiscoveryResponse, next: &Resources) {
        let names: Vec<String> = match kind {
            Kind::Listener => next.listeners.keys().cloned().collect(),
            Kind::Route => next.routes.keys().cloned().collect(),
            Kind::ThriftRoute => next.thrift_routes.keys().cloned().collect(),
            Kind::DubboRoute => next.dubbo_routes.keys().cloned().collect(),
            Kind::GenericRoute => next.generic_routes.keys().cloned().collect(),
            Kind::Cluster | Kind::Endpoint => next.clusters.keys().cloned().collect(),
        };
        self.held.retain(|(k, _), _| *k != kind);
        for n in names {
            self.held.insert((kind, n), resp.version_info.clone());
        }
    }

    /// EDS: every load assignment translated, then published to its
    /// clusters (no reload).
    fn take_endpoints(
        &mut self,
        resp: &DiscoveryResponse,
    ) -> Result<Vec<(Kind, BTreeSet<String>)>, String> {
        let list: Vec<ClusterLoadAssignment> = decode_all(&resp.resources)?;
        let mut found = Vec::new();
        for la in &list {
            let eps = endpoint::endpoints("EDS", la)?;
            found.push((la.cluster_name.clone(), eps));
        }
        self.held.retain(|(k, _), _| *k != Kind::Endpoint);
        for (name, eps) in found {
            self.held
                .insert((Kind::Endpoint, name.clone()), resp.version_info.clone());
            self.hub.publish(&name, eps);
        }
        Ok(Vec::new())
    }

    /// LDS, RDS, CDS, TRDS, DRDS: the resources replace those of their type, the config
    /// is composed and applied; on any refusal nothing changes.
    async fn take_config(
        &mut self,
        kind: Kind,
        resp: &DiscoveryResponse,
        apply: &impl Apply,
    ) -> Result<Vec<(Kind, BTreeSet<String>)>, String> {
        let mut next = self.resources.clone();
        decode_into(kind, resp, &mut next)?;
        let composed = compose_and_apply(&self.base, &next, apply).await?;
        self.hold(kind, resp, &next);
        self.resources = next;
        Ok(composed.subscriptions())
    }
}

/// Replaces the resources of `kind` in `next` with the response's.
fn decode_into(kind: Kind, resp: &DiscoveryResponse, next: &mut Resources) -> Result<(), String> {
    match kind {
        Kind::Listener => {
            next.listeners = by_name(decode_all::<Listener>(&resp.resources)?, |l| &l.name)
        }
        Kind::Route => {
            next.routes = by_name(decode_all::<RouteConfiguration>(&resp.resources)?, |r| {
                &r.name
            })
        }
        Kind::Cluster => {
            next.clusters = by_name(decode_all::<Cluster>(&resp.resources)?, |c| &c.name)
        }
        Kind::ThriftRoute => {
            next.thrift_routes = by_name(
                decode_all::<ThriftRouteConfiguration>(&resp.resources)?,
                |r| &r.name,
            )
        }
        Kind::GenericRoute => {
            next.generic_routes = by_name(
                decode_all::<GenericRouteConfiguration>(&resp.resources)?,
                |r| &r.name,
            )
        }
        Kind::DubboRoute => {
            next.dubbo_routes = by_name(
                decode_all::<MultipleRouteConfiguration>(&resp.resources)?,
                |r| &r.name,
            )
        }
        Kind::Endpoint => unreachable!("EDS is taken apart"),
    }
    Ok(())
}

/// Composes `resources` into `base` and applies the result; a refusal or
/// build error names the resource.
async fn compose_and_apply(
    base: &Value,
    resources: &Resources,
    apply: &impl Apply,
) -> Result<Composed, String> {
    let composed =
        metaproxy_core::proxy::cpu_bound(|| compose(base, resources)).map_err(|r| r.message)?;
    if !composed.pending.is_empty() {
        info!(listeners = ?composed.pending, "xDS listeners wait for their route configuration");
    }
    apply
        .apply(&composed)
        .await
        .map_err(|e| match composed.resource_at(e.line) {
            Some((k, name)) => format!("{} `{name}`: {}", noun(k), e.message),
            None => e.message,
        })?;
    Ok(composed)
}

/// How long the answer to a refused response sent again waits.
const REFUSED_AGAIN_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// A response's version and resources, hashed.
fn fingerprint(resp: &DiscoveryResponse) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    resp.version_info.hash(&mut h);
    for r in &resp.resources {
        r.type_url.hash(&mut h);
        r.value.hash(&mut h);
    }
    h.finish()
}

fn noun(k: Kind) -> &'static str {
    match k {
        Kind::Listener => "listener",
        Kind::Route => "route configuration",
        Kind::Cluster => "cluster",
        Kind::Endpoint => "load assignment",
        Kind::ThriftRoute => "thrift route configuration",
        Kind::DubboRoute => "dubbo route configuration",
        Kind::GenericRoute => "generic route configuration",
    }
}

fn decode_all<M: Message + Default>(list: &[Any]) -> Result<Vec<M>, String> {
    list.iter()
        .map(|a| {
            M::decode(a.value.as_slice())
                .map_err(|e| format!("resource of type `{}`: {e}", a.type_url))
        })
        .collect()
}

fn by_name<M>(list: Vec<M>, name: impl Fn(&M) -> &String) -> BTreeMap<String, M> {
    list.into_iter().map(|m| (name(&m).clone(), m)).collect()
}
