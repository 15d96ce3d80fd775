//! Routes, their actions and the table that picks the first match.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::metadata::MetadataView;

use super::condition::Condition;

/// Where a request goes: a cluster and, optionally, one of its subsets.
#[derive(Debug, Clone)]
pub struct Target {
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// Index into the cluster's subsets (0 is the whole cluster).
    pub subset: usize,
}

/// What a matching route does.
#[derive(Debug, Clone)]
pub enum RouteAction {
    /// One target.
    Single(Target),
    /// A weighted split: `(target, cumulative weight)`, ascending; `total` is the last cumulative weight.
    Weighted {
        /// Targets with cumulative upper bounds.
        targets: Vec<(Target, u32)>,
        /// Sum of weights (> 0).
        total: u32,
    },
}

impl RouteAction {
    /// Picks the target for one request.
    pub fn pick(&self) -> &Target {
        match self {
            RouteAction::Single(t) => t,
            RouteAction::Weighted { targets, total } => {
                let roll = fastrand::u32(0..*total);
                let idx = targets.partition_point(|(_, upper)| *upper <= roll);
                &targets[idx.min(targets.len() - 1)].0
            }
        }
    }
}

/// One route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Name for logs and explanations.
    pub name: Arc<str>,
    /// Conditions that must all hold.
    pub conditions: Vec<Condition>,
    /// The action.
    pub action: RouteAction,
    /// How long to wait for the upstream's answer.
    pub timeout: Duration,
}

impl Route {
    /// Whether every condition holds.
    pub fn matches(&self, view: &impl MetadataView) -> bool {
        self.conditions.iter().all(|c| c.matches(view))
    }
}

/// A listener's routes in order.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// The routes; the first match wins.
    pub routes: Vec<Route>,
}

impl RouteTable {
    /// The first route whose conditions all hold.
    pub fn find(&self, view: &impl MetadataView) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(view))
    }
}
