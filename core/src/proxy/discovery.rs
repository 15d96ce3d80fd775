//! Applying what a feed publishes to a cluster, in place.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cluster::Cluster;
use crate::health_check::spawn_endpoint_checks;
use crate::metrics::{ClusterLabels, Metrics};

/// Lists longer than this are applied on a blocking thread.
const INLINE_APPLY_LIMIT: usize = 64;

/// Starts `cluster`'s discovery feed (once per feed) and a task that applies
/// each list it publishes to the cluster until the cluster is dropped or
/// `shutdown`; new endpoints get health checks. Does nothing for a cluster
/// without `discovery:`.
pub fn spawn_discovery(
    cluster: &Arc<Cluster>,
    shutdown: CancellationToken,
    metrics: &Arc<Metrics>,
) {
    let Some(feed) = cluster.discovery.clone() else {
        return;
    };
    feed.start(metrics, &shutdown);
    let mut lists = feed.subscribe();
    let retired = cluster.retired();
    let weak = Arc::downgrade(cluster);
    let metrics = metrics.clone();
    let gauge = metrics
        .discovered_endpoints
        .get_or_create(&ClusterLabels {
            cluster: cluster.parts.name.to_string(),
        })
        .clone();
    gauge.set(cluster.endpoints().discovered.len() as i64);
    tokio::spawn(async move {
        // Applying is idempotent: the first pass catches a list published
        // between the cluster's build and this task's start.
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = retired.cancelled() => return,
                    changed = lists.changed() => if changed.is_err() { return },
                }
            }
            first = false;
            let Some(list) = lists.borrow_and_update().clone() else {
                continue;
            };
            let Some(cluster) = weak.upgrade() else {
                return;
            };
            // A long list is applied off the request workers: rebuilding
            // the set and its balancers takes milliseconds at 10 000
            // endpoints. Lists published meanwhile are coalesced by the
            // watch channel: the next pass takes the newest.
            let change = if list.len() > INLINE_APPLY_LIMIT {
                let on = cluster.clone();
                match tokio::task::spawn_blocking(move || on.apply_discovered(&list)).await {
                    Ok(change) => change,
                    Err(e) => {
                        warn!(cluster = %cluster.parts.name, error = %e, "applying discovered endpoints failed");
                        continue;
                    }
                }
            } else {
                cluster.apply_discovered(&list)
            };
            if !change.changed {
                continue;
            }
            let discovered = cluster.endpoints().discovered.len();
            gauge.set(discovered as i64);
            info!(
                cluster = %cluster.parts.name,
                added = change.added.len(),
                removed = change.removed,
                endpoints = discovered,
                "discovered endpoints changed"
            );
            spawn_endpoint_checks(&cluster, &change.added, shutdown.clone(), &metrics);
        }
    });
}
