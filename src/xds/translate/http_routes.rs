//! An HTTP connection manager's `RouteConfiguration` (RDS or inline) as the
//! virtual hosts of an `http` listener.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::route::v3::{
    RedirectAction, RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
    query_parameter_matcher, redirect_action, route, route_action, route_match,
};
use serde_json::{Value, json};

use super::common::{self, duration, header_condition, header_ops, string_condition};
use super::uses::{ClusterUse, Uses};
use crate::xds::leftover::refuse_rest;

/// The virtual hosts of a route configuration, and the clusters they use.
pub fn virtual_hosts(rc: &RouteConfiguration, uses: &mut Uses) -> Result<Vec<Value>, String> {
    let what = format!("route configuration `{}`", rc.name);
    let mut rest = rc.clone();
    rest.name.clear();
    rest.virtual_hosts.clear();
    rest.validate_clusters = None;
    let (top_req, top_req_rm) = (
        std::mem::take(&mut rest.request_headers_to_add),
        std::mem::take(&mut rest.request_headers_to_remove),
    );
    let (top_resp, top_resp_rm) = (
        std::mem::take(&mut rest.response_headers_to_add),
        std::mem::take(&mut rest.response_headers_to_remove),
    );
    refuse_rest(&what, &rest)?;
    let mut out = Vec::new();
    for vh in &rc.virtual_hosts {
        let what = format!("{what}, virtual host `{}`", vh.name);
        let mut rest = vh.clone();
        rest.name.clear();
        rest.domains.clear();
        rest.routes.clear();
        rest.request_headers_to_add.clear();
        rest.request_headers_to_remove.clear();
        rest.response_headers_to_add.clear();
        rest.response_headers_to_remove.clear();
        refuse_rest(&what, &rest)?;
        for d in &vh.domains {
            let ok =
                d == "*" || !d[1..].contains('*') && (!d.starts_with('*') || d.starts_with("*."));
            if !ok {
                return Err(format!(
                    "{what}: domain `{d}`: only exact names, `*.suffix` and `*` are supported"
                ));
            }
        }
        let routes = vh
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let inherited = Inherited {
                    request_add: [&top_req[..], &vh.request_headers_to_add[..]].concat(),
                    request_remove: [&top_req_rm[..], &vh.request_headers_to_remove[..]].concat(),
                    response_add: [&top_resp[..], &vh.response_headers_to_add[..]].concat(),
                    response_remove: [&top_resp_rm[..], &vh.response_headers_to_remove[..]]
                        .concat(),
                };
                route_of(&what, vh, r, i, &inherited, uses)
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(json!({ "name": vh.name, "hosts": vh.domains, "routes": routes }));
    }
    Ok(out)
}

/// Header mutations of the route configuration and virtual host, applied
/// before the route's own.
struct Inherited {
    request_add: Vec<envoy_types::pb::envoy::config::core::v3::HeaderValueOption>,
    request_remove: Vec<String>,
    response_add: Vec<envoy_types::pb::envoy::config::core::v3::HeaderValueOption>,
    response_remove: Vec<String>,
}

fn route_of(
    vh_what: &str,
    vh: &VirtualHost,
    r: &Route,
    index: usize,
    inherited: &Inherited,
    uses: &mut Uses,
) -> Result<Value, String> {
    let name = if r.name.is_empty() {
        format!("{}-{index}", vh.name)
    } else {
        r.name.clone()
    };
    let what = format!("{vh_what}, route `{name}`");
    let mut rest = r.clone();
    rest.name.clear();
    rest.r#match = None;
    rest.action = None;
    rest.request_headers_to_add.clear();
    rest.request_headers_to_remove.clear();
    rest.response_headers_to_add.clear();
    rest.response_headers_to_remove.clear();
    rest.metadata = None;
    refuse_rest(&what, &rest)?;
    let conditions = match_conditions(&what, r.r#match.as_ref())?;
    let action = match &r.action {
        Some(route::Action::Route(a)) => route_action(&what, a, uses)?,
        Some(route::Action::Redirect(rd)) => json!({ "redirect": redirect(&what, rd)? }),
        _ => {
            return Err(format!(
                "{what}: only `route` and `redirect` actions are supported"
            ));
        }
    };
    let mut out = json!({ "name": name, "match": conditions, "route": action });
    let request = [&inherited.request_add[..], &r.request_headers_to_add[..]].concat();
    let request_rm = [
        &inherited.request_remove[..],
        &r.request_headers_to_remove[..],
    ]
    .concat();
    if let Some(ops) = header_ops(&what, &request, &request_rm, true)? {
        out["request_headers"] = ops;
    }
    let response = [&inherited.response_add[..], &r.response_headers_to_add[..]].concat();
    let response_rm = [
        &inherited.response_remove[..],
        &r.response_headers_to_remove[..],
    ]
    .concat();
    if let Some(ops) = header_ops(&what, &response, &response_rm, true)? {
        out["response_headers"] = ops;
    }
    Ok(out)
}

/// The route's conditions: path (`:path` for prefixes, so that a prefix
/// rewrite finds it; `:path_only` for whole paths and regexes, as Envoy
/// matches the path without its query), headers, query parameters, gRPC.
fn match_conditions(what: &str, m: Option<&RouteMatch>) -> Result<Vec<Value>, String> {
    let Some(m) = m else {
        return Err(format!("{what}: a route needs a `match`"));
    };
    let mut rest = m.clone();
    rest.path_specifier = None;
    rest.headers.clear();
    rest.query_parameters.clear();
    rest.grpc = None;
    if m.case_sensitive.as_ref().is_some_and(|c| c.value) {
        rest.case_sensitive = None;
    }
    refuse_rest(&format!("{what}: match"), &rest)?;
    let mut out = Vec::new();
    match &m.path_specifier {
        Some(route_match::PathSpecifier::Prefix(p)) if p.is_empty() || p == "/" => {}
        Some(route_match::PathSpecifier::Prefix(p)) => {
            out.push(json!({ "key": ":path", "prefix": p }));
        }
        Some(route_match::PathSpecifier::Path(p)) => {
            out.push(json!({ "key": ":path_only", "exact": p }));
        }
        Some(route_match::PathSpecifier::SafeRegex(r)) => {
            out.push(json!({ "key": ":path_only", "regex": r.regex }));
        }
        _ => {
            return Err(format!(
                "{what}: only `prefix`, `path` and `safe_regex` paths are supported"
            ));
        }
    }
    for h in &m.headers {
        let key = h.name.to_ascii_lowercase();
        out.push(header_condition(what, &key, h)?);
    }
    for q in &m.query_parameters {
        let key = format!("query.{}", q.name);
        use query_parameter_matcher::QueryParameterMatchSpecifier as Q;
        out.push(match &q.query_parameter_match_specifier {
            None | Some(Q::PresentMatch(true)) => json!({ "key": key, "present": true }),
            Some(Q::PresentMatch(false)) => json!({ "key": key, "present": false }),
            Some(Q::StringMatch(s)) => string_condition(what, &key, s)?,
        });
    }
    if m.grpc.is_some() {
        out.push(json!({ "key": "content-type", "prefix": "application/grpc" }));
    }
    Ok(out)
}

fn route_action(what: &str, a: &RouteAction, uses: &mut Uses) -> Result<Value, String> {
    let mut rest = a.clone();
    rest.cluster_specifier = None;
    rest.metadata_match = None;
    rest.timeout = None;
    rest.retry_policy = None;
    rest.request_mirror_policies.clear();
    rest.hash_policy.clear();
    rest.prefix_rewrite.clear();
    rest.regex_rewrite = None;
    rest.host_rewrite_specifier = None;
    rest.upgrade_configs.clear();
    refuse_rest(what, &rest)?;
    let hash = hash_policy(what, &a.hash_policy)?;
    let mut out = serde_json::Map::new();
    match &a.cluster_specifier {
        Some(route_action::ClusterSpecifier::Cluster(c)) => {
            let subset = uses.add(ClusterUse::new(c, a.metadata_match.as_ref(), hash.clone())?);
            out.insert("cluster".into(), json!(c));
            if let Some(s) = subset {
                out.insert("subset".into(), json!(s));
            }
        }
        Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
            let mut weighted = Vec::new();
            for c in &w.clusters {
                let cw_what = format!("{what}, weighted cluster `{}`", c.name);
                let mut rest = c.clone();
                rest.name.clear();
                rest.weight = None;
                rest.metadata_match = None;
                refuse_rest(&cw_what, &rest)?;
                // Envoy merges the cluster's own selector over the route's.
                let labels = merge_labels(
                    &cw_what,
                    a.metadata_match.as_ref(),
                    c.metadata_match.as_ref(),
                )?;
                let subset = uses.add(ClusterUse::with_labels(&c.name, labels, hash.clone()));
                let mut entry = json!({ "cluster": c.name, "weight": c.weight.as_ref().map_or(0, |w| w.value) });
                if let Some(s) = subset {
                    entry["subset"] = json!(s);
                }
                weighted.push(entry);
            }
            out.insert("weighted".into(), json!(weighted));
        }
        _ => {
            return Err(format!(
                "{what}: only `cluster` and `weighted_clusters` are supported"
            ));
        }
    }
    if let Some(t) = &a.timeout {
        out.insert("timeout".into(), common::route_timeout(t));
    }
    if let Some(p) = &a.retry_policy {
        out.insert("retries".into(), retries(what, p)?);
    }
    match a.request_mirror_policies.as_slice() {
        [] => {}
        [m] => {
            let mut rest = m.clone();
            rest.cluster.clear();
            rest.runtime_fraction = None;
            refuse_rest(&format!("{what}: mirror"), &rest)?;
            uses.add(ClusterUse::with_labels(&m.cluster, BTreeMap::new(), None));
            let percent = m
                .runtime_fraction
                .as_ref()
                .and_then(|f| f.default_value.as_ref())
                .map_or(100.0, |f| {
                    let denominator = match f.denominator {
                        1 => 10_000.0,
                        2 => 1_000_000.0,
                        _ => 100.0,
                    };
                    f64::from(f.numerator) * 100.0 / denominator
                });
            out.insert(
                "mirror".into(),
                json!({ "cluster": m.cluster, "percent": percent }),
            );
        }
        _ => {
            return Err(format!(
                "{what}: one `request_mirror_policies` entry at most"
            ));
        }
    }
    let mut rewrite = serde_json::Map::new();
    if !a.prefix_rewrite.is_empty() {
        rewrite.insert("prefix".into(), json!(a.prefix_rewrite));
    }
    if let Some(r) = &a.regex_rewrite {
        let pattern = r
            .pattern
            .as_ref()
            .map(|p| p.regex.clone())
            .unwrap_or_default();
        rewrite.insert(
            "regex".into(),
            json!({ "pattern": pattern, "substitution": r.substitution }),
        );
    }
    match &a.host_rewrite_specifier {
        None => {}
        Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(h)) => {
            rewrite.insert("host".into(), json!(h));
        }
        Some(_) => {
            return Err(format!(
                "{what}: only `host_rewrite_literal` host rewrites are supported"
            ));
        }
    }
    if !rewrite.is_empty() {
        out.insert("rewrite".into(), Value::Object(rewrite));
    }
    let mut upgrades = Vec::new();
    for u in &a.upgrade_configs {
        if u.connect_config.is_some() {
            return Err(format!("{what}: CONNECT upgrades are not supported"));
        }
        if u.enabled.as_ref().is_none_or(|e| e.value) {
            upgrades.push(u.upgrade_type.to_ascii_lowercase());
        }
    }
    if !upgrades.is_empty() {
        out.insert("upgrades".into(), json!(upgrades));
    }
    Ok(Value::Object(out))
}

/// A route's hash policy, put on the clusters it sends to (the proxy's
/// hash policy is a cluster's).
fn hash_policy(
    what: &str,
    list: &[route_action::HashPolicy],
) -> Result<Option<Vec<Value>>, String> {
    use route_action::hash_policy::PolicySpecifier as P;
    if list.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for h in list {
        out.push(match &h.policy_specifier {
            Some(P::Header(x)) if x.regex_rewrite.is_none() => {
                json!({ "key": x.header_name.to_ascii_lowercase() })
            }
            Some(P::Cookie(c)) if c.attributes.is_empty() => {
                let mut cookie = json!({ "name": c.name });
                if let Some(t) = &c.ttl {
                    cookie["ttl"] = json!(duration(t));
                }
                if !c.path.is_empty() {
                    cookie["path"] = json!(c.path);
                }
                json!({ "cookie": cookie })
            }
            Some(P::ConnectionProperties(p)) if p.source_ip => json!({ "source_ip": true }),
            Some(P::QueryParameter(q)) => json!({ "key": format!("query.{}", q.name) }),
            _ => return Err(format!("{what}: unsupported hash policy")),
        });
    }
    Ok(Some(out))
}

/// Envoy's retry policy as the proxy's `retries`.
fn retries(what: &str, p: &RetryPolicy) -> Result<Value, String> {
    let mut rest = p.clone();
    rest.retry_on.clear();
    rest.num_retries = None;
    rest.per_try_timeout = None;
    rest.retry_back_off = None;
    refuse_rest(&format!("{what}: retry policy"), &rest)?;
    let mut on = Vec::new();
    for c in p
        .retry_on
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        let ours: &[&str] = match c {
            "5xx" => &["server-error", "unavailable"],
            "gateway-error" | "unavailable" => &["unavailable"],
            "connect-failure" => &["connect-failure"],
            "reset" | "refused-stream" | "reset-before-request" => &["reset"],
            "deadline-exceeded" => &["timeout"],
            other => {
                return Err(format!(
                    "{what}: retry condition `{other}` is not supported"
                ));
            }
        };
        for o in ours {
            if !on.contains(o) {
                on.push(*o);
            }
        }
    }
    let mut out = json!({
        "attempts": p.num_retries.as_ref().map_or(1, |n| n.value),
        "on": on,
    });
    if let Some(t) = &p.per_try_timeout {
        out["per_try_timeout"] = json!(duration(t));
    }
    if let Some(b) = &p.retry_back_off {
        out["backoff"] = common::backoff(b.base_interval.as_ref(), b.max_interval.as_ref());
    }
    Ok(out)
}

fn redirect(what: &str, r: &RedirectAction) -> Result<Value, String> {
    use redirect_action::{PathRewriteSpecifier as Path, SchemeRewriteSpecifier as Scheme};
    if r.strip_query {
        return Err(format!("{what}: `strip_query` redirects are not supported"));
    }
    let code = match redirect_action::RedirectResponseCode::try_from(r.response_code) {
        Ok(redirect_action::RedirectResponseCode::MovedPermanently) => 301,
        Ok(redirect_action::RedirectResponseCode::Found) => 302,
        Ok(redirect_action::RedirectResponseCode::SeeOther) => 303,
        Ok(redirect_action::RedirectResponseCode::TemporaryRedirect) => 307,
        Ok(redirect_action::RedirectResponseCode::PermanentRedirect) => 308,
        Err(_) => return Err(format!("{what}: unknown redirect code {}", r.response_code)),
    };
    let mut out = json!({ "code": code });
    match &r.scheme_rewrite_specifier {
        None | Some(Scheme::HttpsRedirect(false)) => {}
        Some(Scheme::HttpsRedirect(true)) => out["scheme"] = json!("https"),
        Some(Scheme::SchemeRedirect(s)) => out["scheme"] = json!(s),
    }
    if !r.host_redirect.is_empty() {
        out["host"] = json!(r.host_redirect);
    }
    if r.port_redirect != 0 {
        out["port"] = json!(r.port_redirect);
    }
    match &r.path_rewrite_specifier {
        None => {}
        Some(Path::PathRedirect(p)) => out["path"] = json!(p),
        Some(_) => {
            return Err(format!(
                "{what}: only `path_redirect` rewrites of a redirect are supported"
            ));
        }
    }
    Ok(out)
}

/// A route's label selector merged with a weighted cluster's (the latter
/// wins on a key both name).
fn merge_labels(
    what: &str,
    route: Option<&envoy_types::pb::envoy::config::core::v3::Metadata>,
    cluster: Option<&envoy_types::pb::envoy::config::core::v3::Metadata>,
) -> Result<BTreeMap<String, String>, String> {
    let mut labels = common::labels(what, route)?;
    labels.extend(common::labels(what, cluster)?);
    Ok(labels)
}
