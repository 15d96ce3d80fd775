//! An EDS `ClusterLoadAssignment` as a list of discovered endpoints:
//! localities' priorities become endpoint priorities (failover order),
//! `envoy.lb` metadata becomes labels (for subsets), the locality's zone
//! and region become the `zone` and `region` labels, and endpoints a
//! control plane marks unhealthy or draining are left out.

use std::net::SocketAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use metaproxy_core::discovery::DiscoveredEndpoint;

use super::common::{labels, socket};
use crate::xds::leftover::refuse_rest;

/// HealthStatus values that take an endpoint out: UNHEALTHY 2, DRAINING 3,
/// TIMEOUT 4 (UNKNOWN 0, HEALTHY 1 and DEGRADED 5 serve).
const OUT: [i32; 3] = [2, 3, 4];

/// The endpoints of one load assignment.
pub fn endpoints(
    what: &str,
    la: &ClusterLoadAssignment,
) -> Result<Vec<DiscoveredEndpoint>, String> {
    let what = format!("{what}: load assignment `{}`", la.cluster_name);
    let mut rest = la.clone();
    rest.cluster_name.clear();
    rest.endpoints.clear();
    if let Some(p) = &mut rest.policy {
        // The overprovisioning factor is the cluster's; the rest is refused.
        p.overprovisioning_factor = None;
        if *p == Default::default() {
            rest.policy = None;
        }
    }
    refuse_rest(&what, &rest)?;
    let mut out = Vec::new();
    for l in &la.endpoints {
        let mut rest = l.clone();
        rest.locality = None;
        rest.lb_endpoints.clear();
        rest.load_balancing_weight = None;
        rest.priority = 0;
        rest.metadata = None;
        refuse_rest(&format!("{what}: locality"), &rest)?;
        let mut locality = labels(&what, l.metadata.as_ref())?;
        if let Some(loc) = &l.locality {
            if !loc.zone.is_empty() {
                locality.insert("zone".into(), loc.zone.clone());
            }
            if !loc.region.is_empty() {
                locality.insert("region".into(), loc.region.clone());
            }
            if !loc.sub_zone.is_empty() {
                locality.insert("sub_zone".into(), loc.sub_zone.clone());
            }
        }
        for e in &l.lb_endpoints {
            let mut rest = e.clone();
            rest.health_status = 0;
            rest.metadata = None;
            rest.load_balancing_weight = None;
            rest.host_identifier = None;
            refuse_rest(&format!("{what}: endpoint"), &rest)?;
            if OUT.contains(&e.health_status) {
                continue;
            }
            let Some(lb_endpoint::HostIdentifier::Endpoint(ep)) = &e.host_identifier else {
                return Err(format!("{what}: named endpoints are not supported"));
            };
            let mut ep_rest = ep.clone();
            ep_rest.address = None;
            ep_rest.hostname.clear();
            refuse_rest(&format!("{what}: endpoint"), &ep_rest)?;
            let address: SocketAddr = socket(&what, ep.address.as_ref())?
                .parse()
                .map_err(|e| format!("{what}: {e}"))?;
            let mut all = locality.clone();
            all.extend(labels(&what, e.metadata.as_ref())?);
            out.push(DiscoveredEndpoint {
                address,
                labels: Arc::new(all),
                weight: e
                    .load_balancing_weight
                    .as_ref()
                    .map_or(1, |w| w.value.max(1)),
                priority: l.priority,
            });
        }
    }
    Ok(out)
}
