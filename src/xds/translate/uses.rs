//! What listeners' routes need of clusters: Envoy keeps label selectors
//! (`metadata_match`) and hash policies on routes, the proxy keeps named
//! subsets and the hash policy on the cluster. Routes record here what
//! they need; the cluster translator adds it to each cluster.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::Metadata;
use serde_json::Value;

use super::common;

/// One route's use of a cluster.
#[derive(Debug)]
pub struct ClusterUse {
    cluster: String,
    labels: BTreeMap<String, String>,
    hash: Option<Vec<Value>>,
}

impl ClusterUse {
    /// A use with the route's `metadata_match` selector.
    pub fn new(
        cluster: &str,
        metadata_match: Option<&Metadata>,
        hash: Option<Vec<Value>>,
    ) -> Result<Self, String> {
        let labels = common::labels(&format!("route to `{cluster}`"), metadata_match)?;
        Ok(Self::with_labels(cluster, labels, hash))
    }

    /// A use with a selector already read.
    pub fn with_labels(
        cluster: &str,
        labels: BTreeMap<String, String>,
        hash: Option<Vec<Value>>,
    ) -> Self {
        Self {
            cluster: cluster.to_string(),
            labels,
            hash,
        }
    }
}

/// What one cluster must have for the routes that use it.
#[derive(Debug, Default, Clone)]
pub struct Needs {
    /// The protocol of the listeners that route to it.
    pub protocols: Vec<String>,
    /// Subsets by name.
    pub subsets: BTreeMap<String, BTreeMap<String, String>>,
    /// The hash policy, when a route gives one.
    pub hash: Option<Vec<Value>>,
    /// A route gave a different hash policy than another.
    pub hash_conflict: bool,
}

/// The uses of every cluster, gathered over the listeners being translated.
#[derive(Debug, Default)]
pub struct Uses {
    /// The protocol of the listener whose routes are being read.
    pub protocol: String,
    /// Needs by cluster name.
    pub by_cluster: BTreeMap<String, Needs>,
}

impl Uses {
    /// Uses by the routes of a listener of `protocol`.
    pub fn for_protocol(&mut self, protocol: &str) {
        self.protocol = protocol.to_string();
    }

    /// Records one use; returns the name of the subset it needs, if any.
    pub fn add(&mut self, u: ClusterUse) -> Option<String> {
        let needs = self.by_cluster.entry(u.cluster).or_default();
        if !needs.protocols.contains(&self.protocol) {
            needs.protocols.push(self.protocol.clone());
        }
        if let Some(h) = u.hash {
            match &needs.hash {
                Some(old) if *old != h => needs.hash_conflict = true,
                _ => needs.hash = Some(h),
            }
        }
        if u.labels.is_empty() {
            return None;
        }
        let name = u
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        needs.subsets.insert(name.clone(), u.labels);
        Some(name)
    }
}
