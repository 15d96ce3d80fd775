//! The circuit breaker's admission of a request and the endpoint pick,
//! with the errors every protocol renders as its own local reply.

use std::sync::Arc;

use crate::cluster::{Cluster, Endpoint, Permit, Resource};
use crate::error::{ErrorKind, Origin, ProxyError};
use crate::router::Target;

/// Takes the cluster's request permit for one request, or refuses it
/// with an over-limit error (counted as an overflow of `target`).
pub fn admit(target: &Target) -> Result<Permit, ProxyError> {
    let cluster = &target.cluster;
    cluster
        .breaker()
        .try_acquire(Resource::Request)
        .ok_or_else(|| {
            target.metrics.overflows.inc();
            ProxyError::new(
                ErrorKind::OverLimit,
                Origin::Internal,
                format!(
                    "cluster `{}` has too many requests in flight",
                    cluster.parts.name
                ),
            )
        })
}

/// Picks an endpoint of `target`'s subset, avoiding `exclude` when it can;
/// no endpoint is a "no healthy upstream" error naming the subset.
pub fn pick_endpoint(
    cluster: &Cluster,
    target: &Target,
    hash: Option<u64>,
    exclude: &[&Endpoint],
) -> Result<Arc<Endpoint>, ProxyError> {
    cluster.pick(target.subset, hash, exclude).ok_or_else(|| {
        let subset = cluster.subset_name(target.subset);
        ProxyError::new(
            ErrorKind::NoHealthyUpstream,
            Origin::Internal,
            if subset.is_empty() {
                format!("cluster `{}` has no endpoint", cluster.parts.name)
            } else {
                format!(
                    "subset `{subset}` of cluster `{}` has no endpoint",
                    cluster.parts.name
                )
            },
        )
    })
}
