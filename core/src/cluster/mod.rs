//! Clusters: endpoints with labels, subsets selected by labels, and a load
//! balancer per subset.

pub mod balancer;
pub mod endpoint;

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use balancer::Balancer;
pub use endpoint::{ActiveGuard, Endpoint};

use crate::codec::UpstreamMode;
use crate::config::LbPolicy;

/// A named group of endpoints: the whole cluster or a label-selected part.
#[derive(Debug)]
pub struct Subset {
    /// The subset name (`""` for the whole cluster).
    pub name: String,
    /// The endpoints whose labels match.
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Picks among them.
    pub balancer: Balancer,
}

/// Settings for the upstream connections of every endpoint of a cluster.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// How requests share connections.
    pub mode: UpstreamMode,
    /// Connections per endpoint: shared ones (multiplex, pipeline) or the
    /// most open at once (exclusive).
    pub connections_per_endpoint: usize,
    /// Connect timeout.
    pub connect_timeout: Duration,
}

/// A cluster built from config.
pub struct Cluster {
    /// Unique name.
    pub name: Arc<str>,
    /// Protocol name.
    pub protocol: String,
    /// Index 0 is the whole cluster; then the named subsets.
    pub subsets: Vec<Subset>,
    /// Upstream pool settings.
    pub pool: PoolSettings,
    /// The protocol's cluster-side codec, type-erased (`Arc<C>` inside);
    /// the engine downcasts it to the listener's codec type.
    pub codec: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("subsets", &self.subsets)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Index of the subset named `name`.
    pub fn subset_index(&self, name: &str) -> Option<usize> {
        self.subsets.iter().position(|s| s.name == name)
    }

    /// Picks an endpoint of subset `subset` for one request.
    pub fn pick(&self, subset: usize) -> Option<&Arc<Endpoint>> {
        let s = self.subsets.get(subset)?;
        s.balancer.pick(&s.endpoints)
    }
}

/// Builds a subset's balancer for `policy`.
pub fn balancer_for(policy: LbPolicy, endpoints: &[Arc<Endpoint>]) -> Balancer {
    Balancer::new(policy, endpoints)
}
