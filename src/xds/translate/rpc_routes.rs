//! `thrift_proxy` and `dubbo_proxy` route configurations as the routes of
//! a `thrift` or `dubbo` listener.

use envoy_types::pb::envoy::extensions::filters::network::dubbo_proxy::v3 as dubbo;
use envoy_types::pb::envoy::extensions::filters::network::thrift_proxy::v3 as thrift;
use serde_json::{Value, json};

use super::common::{header_condition, string_condition};
use super::uses::{ClusterUse, Uses};
use crate::xds::leftover::refuse_rest;

/// The routes of a Thrift route configuration.
pub fn thrift_routes(
    rc: &thrift::RouteConfiguration,
    uses: &mut Uses,
) -> Result<Vec<Value>, String> {
    let what = format!("thrift route configuration `{}`", rc.name);
    let mut out = Vec::new();
    for (i, r) in rc.routes.iter().enumerate() {
        let what = format!("{what}, route {i}");
        let m = r.r#match.clone().unwrap_or_default();
        let mut conditions = Vec::new();
        use thrift::route_match::MatchSpecifier as M;
        let (key, value) = match &m.match_specifier {
            Some(M::MethodName(n)) => ("method", n.clone()),
            Some(M::ServiceName(s)) => ("service", s.trim_end_matches(':').to_string()),
            None => return Err(format!("{what}: needs `method_name` or `service_name`")),
        };
        if !value.is_empty() || m.invert {
            let mut c = if value.is_empty() {
                json!({ "key": key, "present": true })
            } else {
                json!({ "key": key, "exact": value })
            };
            if m.invert {
                c["invert"] = json!(true);
            }
            conditions.push(c);
        }
        for h in &m.headers {
            conditions.push(header_condition(&what, &h.name, h)?);
        }
        let a = r
            .route
            .clone()
            .ok_or_else(|| format!("{what}: needs a `route`"))?;
        let mut rest = a.clone();
        rest.metadata_match = None;
        rest.cluster_specifier = None;
        refuse_rest(&what, &rest)?;
        use thrift::route_action::ClusterSpecifier as C;
        let action = match &a.cluster_specifier {
            Some(C::Cluster(c)) => single(c, a.metadata_match.as_ref(), uses)?,
            Some(C::WeightedClusters(w)) => weighted(
                w.clusters.iter().map(|c| {
                    let weight = c.weight.as_ref().map_or(0, |w| w.value);
                    (c.name.as_str(), weight, c.metadata_match.as_ref())
                }),
                uses,
            )?,
            _ => {
                return Err(format!(
                    "{what}: only `cluster` and `weighted_clusters` are supported"
                ));
            }
        };
        out.push(
            json!({ "name": format!("{}-{i}", rc.name), "match": conditions, "route": action }),
        );
    }
    Ok(out)
}

/// The routes of Dubbo route configurations (each for one interface).
pub fn dubbo_routes(
    list: &[dubbo::RouteConfiguration],
    uses: &mut Uses,
) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for rc in list {
        let what = format!("dubbo route configuration `{}`", rc.name);
        let mut scope = Vec::new();
        if !rc.interface.is_empty() && rc.interface != "*" {
            scope.push(json!({ "key": "interface", "exact": rc.interface }));
        }
        if !rc.group.is_empty() {
            scope.push(json!({ "key": "group", "exact": rc.group }));
        }
        if !rc.version.is_empty() {
            scope.push(json!({ "key": "version", "exact": rc.version }));
        }
        for (i, r) in rc.routes.iter().enumerate() {
            let what = format!("{what}, route {i}");
            let mut conditions = scope.clone();
            let m = r.r#match.clone().unwrap_or_default();
            if let Some(method) = &m.method {
                if !method.params_match.is_empty() {
                    return Err(format!("{what}: `params_match` is not supported"));
                }
                if let Some(name) = &method.name {
                    conditions.push(string_condition(&what, "method", name)?);
                }
            }
            for h in &m.headers {
                conditions.push(header_condition(&what, &h.name, h)?);
            }
            let a = r
                .route
                .clone()
                .ok_or_else(|| format!("{what}: needs a `route`"))?;
            use dubbo::route_action::ClusterSpecifier as C;
            let action = match &a.cluster_specifier {
                Some(C::Cluster(c)) => single(c, a.metadata_match.as_ref(), uses)?,
                Some(C::WeightedClusters(w)) => weighted(
                    w.clusters.iter().map(|c| {
                        let weight = c.weight.as_ref().map_or(0, |w| w.value);
                        (c.name.as_str(), weight, c.metadata_match.as_ref())
                    }),
                    uses,
                )?,
                None => return Err(format!("{what}: needs a cluster")),
            };
            out.push(
                json!({ "name": format!("{}-{i}", rc.name), "match": conditions, "route": action }),
            );
        }
    }
    Ok(out)
}

/// One cluster (a subset of it when `metadata_match` selects one).
pub(super) fn single(
    cluster: &str,
    metadata_match: Option<&envoy_types::pb::envoy::config::core::v3::Metadata>,
    uses: &mut Uses,
) -> Result<Value, String> {
    let mut a = json!({ "cluster": cluster });
    if let Some(s) = uses.add(ClusterUse::new(cluster, metadata_match, None)?) {
        a["subset"] = json!(s);
    }
    Ok(a)
}

/// A weighted split over `(cluster, weight, selector)` branches.
pub(super) fn weighted<'a>(
    branches: impl Iterator<
        Item = (
            &'a str,
            u32,
            Option<&'a envoy_types::pb::envoy::config::core::v3::Metadata>,
        ),
    >,
    uses: &mut Uses,
) -> Result<Value, String> {
    let mut list = Vec::new();
    for (cluster, weight, metadata_match) in branches {
        let mut a = json!({ "cluster": cluster, "weight": weight });
        if let Some(s) = uses.add(ClusterUse::new(cluster, metadata_match, None)?) {
            a["subset"] = json!(s);
        }
        list.push(a);
    }
    Ok(json!({ "weighted": list }))
}
