//! Incremental xDS (`transport: delta_grpc`): one
//! `DeltaAggregatedResources` stream on which the control plane sends only
//! what changed (resources added or updated, names removed). The proxy
//! keeps every resource it accepted, per type, applies each change to a
//! copy, and hands the whole set to the same state machine as the
//! state-of-the-world transport; the answer is an ACK (the copy becomes
//! what is held) or a NACK with the reason (the copy is dropped). The
//! names to follow (route configurations, load assignments) are sent as
//! subscribe and unsubscribe lists as they change; a new stream resumes
//! with the versions held (`initial_resource_versions`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::Any;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{info, warn};

use super::Xds;
use super::client::ads_client;
use super::kind::Kind;
use super::settings::XdsSettings;

/// What the proxy holds across delta streams: every accepted resource by
/// type and name, with its version.
#[derive(Debug, Default)]
pub struct Held {
    resources: HashMap<Kind, BTreeMap<String, (String, Any)>>,
}

/// One delta stream, from connect to its end.
pub async fn stream_once(xds: &Xds, settings: &XdsSettings, held: &mut Held) -> Result<(), String> {
    let mut client = ads_client(settings).await?;
    let (tx, rx) = mpsc::channel::<DeltaDiscoveryRequest>(64);
    let node = xds.state.lock().await.node().clone();
    let mut stream = Stream {
        node,
        subscribed: HashMap::new(),
    };
    for r in xds.state.lock().await.opening_requests() {
        if let Some(first) = stream.opening(&r, held) {
            let _ = tx.send(first).await;
        }
    }
    let mut inbound = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .map_err(|s| format!("stream refused: {}", s.message()))?
        .into_inner();
    xds.status.connected(true, None);
    info!(server = %settings.server, node = %settings.node_id, "xDS delta stream open");
    loop {
        let resp = match inbound.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(s) => return Err(format!("stream failed: {}", s.message())),
        };
        for r in stream.take(xds, held, resp).await {
            if tx.send(r).await.is_err() {
                return Err("stream closed while answering".into());
            }
        }
    }
}

/// The state of one stream: what it has subscribed to.
struct Stream {
    node: Node,
    /// The names subscribed to, by type (the wildcard types: none).
    subscribed: HashMap<Kind, BTreeSet<String>>,
}

impl Stream {
    /// The first request of a type on a new stream, from the
    /// state-of-the-world request the state machine opens with.
    fn opening(&mut self, r: &DiscoveryRequest, held: &Held) -> Option<DeltaDiscoveryRequest> {
        let kind = Kind::of(&r.type_url)?;
        let names: BTreeSet<String> = r.resource_names.iter().cloned().collect();
        let initial = held
            .resources
            .get(&kind)
            .into_iter()
            .flatten()
            .filter(|(name, _)| kind.wildcard() || names.contains(*name))
            .map(|(name, (version, _))| (name.clone(), version.clone()))
            .collect();
        self.subscribed.insert(kind, names.clone());
        Some(DeltaDiscoveryRequest {
            node: Some(self.node.clone()),
            type_url: r.type_url.clone(),
            // A first request with no names subscribes to every resource
            // of a wildcard type (LDS, CDS).
            resource_names_subscribe: names.into_iter().collect(),
            initial_resource_versions: initial,
            ..Default::default()
        })
    }

    /// Takes one response: its ACK or NACK, then subscription changes.
    async fn take(
        &mut self,
        xds: &Xds,
        held: &mut Held,
        resp: DeltaDiscoveryResponse,
    ) -> Vec<DeltaDiscoveryRequest> {
        let Some(kind) = Kind::of(&resp.type_url) else {
            warn!(type_url = %resp.type_url, "xDS delta response of a type never asked for; ignored");
            return Vec::new();
        };
        // The type's resources once this change is applied.
        let mut next = held.resources.get(&kind).cloned().unwrap_or_default();
        for r in &resp.resources {
            // A resource without its body is a heartbeat (TTL): kept.
            if let Some(any) = &r.resource {
                next.insert(r.name.clone(), (r.version.clone(), any.clone()));
            }
        }
        for name in &resp.removed_resources {
            next.remove(name);
        }
        let whole = DiscoveryResponse {
            version_info: if resp.system_version_info.is_empty() {
                resp.nonce.clone()
            } else {
                resp.system_version_info.clone()
            },
            resources: next.values().map(|(_, any)| any.clone()).collect(),
            type_url: resp.type_url.clone(),
            nonce: resp.nonce.clone(),
            ..Default::default()
        };
        let answers = {
            let mut state = xds.state.lock().await;
            state.handle(whole, xds).await
        };
        let mut out = Vec::new();
        for a in answers {
            let Some(k) = Kind::of(&a.type_url) else {
                continue;
            };
            if k == kind && a.response_nonce == resp.nonce {
                // The ACK or NACK of this response.
                if a.error_detail.is_none() {
                    held.resources.insert(kind, next.clone());
                }
                out.push(DeltaDiscoveryRequest {
                    node: Some(self.node.clone()),
                    type_url: a.type_url,
                    response_nonce: resp.nonce.clone(),
                    error_detail: a.error_detail,
                    ..Default::default()
                });
            } else if let Some(change) = self.resubscribe(k, &a, held) {
                out.push(change);
            }
        }
        out
    }

    /// The subscribe and unsubscribe lists that bring type `k` to the
    /// names of `a`; resources no longer followed are let go.
    fn resubscribe(
        &mut self,
        k: Kind,
        a: &DiscoveryRequest,
        held: &mut Held,
    ) -> Option<DeltaDiscoveryRequest> {
        let wanted: BTreeSet<String> = a.resource_names.iter().cloned().collect();
        let had = self.subscribed.entry(k).or_default();
        let subscribe: Vec<String> = wanted.difference(had).cloned().collect();
        let unsubscribe: Vec<String> = had.difference(&wanted).cloned().collect();
        if subscribe.is_empty() && unsubscribe.is_empty() {
            return None;
        }
        *had = wanted;
        if let Some(resources) = held.resources.get_mut(&k) {
            for name in &unsubscribe {
                resources.remove(name);
            }
        }
        Some(DeltaDiscoveryRequest {
            node: Some(self.node.clone()),
            type_url: a.type_url.clone(),
            resource_names_subscribe: subscribe,
            resource_names_unsubscribe: unsubscribe,
            ..Default::default()
        })
    }
}
