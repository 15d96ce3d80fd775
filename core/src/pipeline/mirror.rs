//! Shadow traffic: a copy of a request sent to the mirror cluster in the
//! background, its answer read and dropped. The copy goes only for a
//! request the live cluster's breaker admitted (the caller's order), only
//! when the mirror cluster's own breaker has room, within the route's
//! timeout; it never affects the live answer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use crate::cluster::{Cluster, Endpoint, Resource};
use crate::error::ProxyError;
use crate::router::Mirror;

/// Spawns one copy to `mirror`'s cluster. `copy(cluster, endpoint)` sends
/// it the engine's way and ends once the answer was read; it is given up
/// after `limit`, and its failure is only logged.
pub fn spawn_mirror<F, Fut>(mirror: &Mirror, limit: Duration, copy: F)
where
    F: FnOnce(Arc<Cluster>, Arc<Endpoint>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), ProxyError>> + Send + 'static,
{
    let target = mirror.target.clone();
    tokio::spawn(async move {
        let cluster = target.cluster.clone();
        let Some(_permit) = cluster.breaker().try_acquire(Resource::Request) else {
            debug!(cluster = %cluster.parts.name, "mirror cluster full: copy not sent");
            return;
        };
        let Ok(endpoint) = super::pick_endpoint(&cluster, &target, None, &[]) else {
            debug!(cluster = %cluster.parts.name, "mirror cluster has no endpoint: copy not sent");
            return;
        };
        let _active = endpoint.start_request();
        let name = cluster.parts.name.clone();
        match tokio::time::timeout(limit, copy(cluster, endpoint)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let e = e.context(format!("mirror to `{name}`"));
                debug!(error = %e.chain(), "mirrored request failed");
            }
            Err(_) => debug!(cluster = %name, "mirrored request cut at the route timeout"),
        }
    });
}
