//! `generic_proxy` route configurations (Dubbo codec) as the routes of a
//! `dubbo` listener. Their routes are a unified matcher
//! (`xds.type.matcher.v3.Matcher`) whose actions are `generic_proxy`
//! `RouteAction`s; the tree is flattened into the proxy's first-match
//! route list: a `matcher_list` entry becomes one route per alternative of
//! its predicate (negations pushed down to single predicates, `or` spread
//! into alternatives), a `matcher_tree` one route per key (longest prefix
//! first), a nested matcher's routes carry their parent's conditions and
//! are followed by the parent's next entries (as the unified matcher goes
//! on when a nested matcher finds nothing), `on_no_match` a route with the
//! parent's conditions alone. Inputs: `ServiceMatchInput`,
//! `HostMatchInput` and `PathMatchInput` are the Dubbo interface,
//! `MethodMatchInput` the method, `PropertyMatchInput` an attachment.

use envoy_types::pb::envoy::extensions::filters::network::generic_proxy::action::v3::{
    RouteAction, route_action,
};
use envoy_types::pb::envoy::extensions::filters::network::generic_proxy::matcher::v3::PropertyMatchInput;
use envoy_types::pb::envoy::extensions::filters::network::generic_proxy::v3::RouteConfiguration;
use envoy_types::pb::envoy::r#type::matcher::v3::StringMatcher;
use envoy_types::pb::xds::core::v3::TypedExtensionConfig;
use envoy_types::pb::xds::r#type::matcher::v3::{Matcher, matcher};
use prost::Message;
use serde_json::{Value, json};

use super::common::{backoff, route_timeout, string_condition};
use super::rpc_routes::{single, weighted};
use super::uses::Uses;
use crate::xds::leftover::refuse_rest;

const INPUTS: &str =
    "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.matcher.v3.";
const ROUTE_ACTION: &str =
    "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.action.v3.RouteAction";

/// The routes of a `generic_proxy` route configuration.
pub fn generic_routes(rc: &RouteConfiguration, uses: &mut Uses) -> Result<Vec<Value>, String> {
    let what = format!("generic route configuration `{}`", rc.name);
    let mut flat = Flattener {
        routes: Vec::new(),
        uses,
        prefix: &rc.name,
    };
    // Virtual hosts by Envoy's precedence: exact hosts, then `*suffix`
    // (longest first), then `prefix*` (longest first), then `*`.
    let mut hosts: Vec<(u8, usize, Option<Value>, &Matcher, String)> = Vec::new();
    for vh in &rc.virtual_hosts {
        let what = format!("{what}, virtual host `{}`", vh.name);
        let Some(m) = &vh.routes else {
            return Err(format!("{what}: needs `routes`"));
        };
        for h in &vh.hosts {
            let (rank, cond) = if h == "*" {
                (3, None)
            } else if let Some(suffix) = h.strip_prefix('*') {
                (1, Some(json!({ "key": "interface", "suffix": suffix })))
            } else if let Some(prefix) = h.strip_suffix('*') {
                (2, Some(json!({ "key": "interface", "prefix": prefix })))
            } else {
                (0, Some(json!({ "key": "interface", "exact": h })))
            };
            hosts.push((rank, usize::MAX - h.len(), cond, m, what.clone()));
        }
    }
    hosts.sort_by_key(|(rank, len, ..)| (*rank, *len));
    for (_, _, cond, m, what) in hosts {
        flat.matcher(&what, m, cond.into_iter().collect())?;
    }
    if let Some(m) = &rc.routes {
        flat.matcher(&what, m, Vec::new())?;
    }
    Ok(flat.routes)
}

struct Flattener<'a> {
    routes: Vec<Value>,
    uses: &'a mut Uses,
    prefix: &'a str,
}

impl Flattener<'_> {
    /// Adds the routes of `m`, each also needing `parent`'s conditions.
    fn matcher(&mut self, what: &str, m: &Matcher, parent: Vec<Value>) -> Result<(), String> {
        use matcher::MatcherType as T;
        match &m.matcher_type {
            Some(T::MatcherList(list)) => {
                for (i, fm) in list.matchers.iter().enumerate() {
                    let what = format!("{what}, matcher {i}");
                    let Some(p) = &fm.predicate else {
                        return Err(format!("{what}: needs a `predicate`"));
                    };
                    for alternative in dnf(&what, p, false)? {
                        let mut conditions = parent.clone();
                        conditions.extend(alternative);
                        self.on_match(&what, fm.on_match.as_ref(), conditions)?;
                    }
                }
            }
            Some(T::MatcherTree(tree)) => {
                use matcher::matcher_tree::TreeType;
                let key = input_key(what, tree.input.as_ref())?;
                let (op, map) = match &tree.tree_type {
                    Some(TreeType::ExactMatchMap(m)) => ("exact", m),
                    Some(TreeType::PrefixMatchMap(m)) => ("prefix", m),
                    _ => {
                        return Err(format!(
                            "{what}: only exact and prefix match maps are supported"
                        ));
                    }
                };
                let mut entries: Vec<_> = map.map.iter().collect();
                // The longest prefix wins; exact keys are ordered for a
                // stable config text.
                entries.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
                for (value, on_match) in entries {
                    let mut conditions = parent.clone();
                    conditions.push(json!({ "key": key, op: value }));
                    self.on_match(
                        &format!("{what}, key `{value}`"),
                        Some(on_match),
                        conditions,
                    )?;
                }
            }
            None => return Err(format!("{what}: needs `matcher_list` or `matcher_tree`")),
        }
        if let Some(fallback) = &m.on_no_match {
            self.on_match(&format!("{what}, on_no_match"), Some(fallback), parent)?;
        }
        Ok(())
    }

    fn on_match(
        &mut self,
        what: &str,
        on_match: Option<&matcher::OnMatch>,
        conditions: Vec<Value>,
    ) -> Result<(), String> {
        use matcher::on_match::OnMatch as O;
        let Some(on_match) = on_match else {
            return Err(format!("{what}: needs `on_match`"));
        };
        if on_match.keep_matching {
            return Err(format!("{what}: `keep_matching` is not supported"));
        }
        match &on_match.on_match {
            Some(O::Matcher(nested)) => self.matcher(what, nested, conditions),
            Some(O::Action(action)) => {
                let route = self.action(what, action)?;
                let name = format!("{}-{}", self.prefix, self.routes.len());
                self.routes
                    .push(json!({ "name": name, "match": conditions, "route": route }));
                Ok(())
            }
            None => Err(format!("{what}: needs an action or a matcher")),
        }
    }

    /// A `generic_proxy` `RouteAction` as the proxy's route action.
    fn action(&mut self, what: &str, action: &TypedExtensionConfig) -> Result<Value, String> {
        let any = action.typed_config.as_ref();
        if any.is_none_or(|a| a.type_url != ROUTE_ACTION) {
            return Err(format!(
                "{what}: the action must be a generic_proxy `RouteAction`"
            ));
        }
        let a = RouteAction::decode(any.map_or(&[][..], |a| a.value.as_slice()))
            .map_err(|e| format!("{what}: {e}"))?;
        let what = format!("{what}, route action");
        let mut rest = a.clone();
        rest.name.clear();
        rest.cluster_specifier = None;
        rest.timeout = None;
        if let Some(p) = &mut rest.retry_policy {
            p.num_retries = None;
            p.retry_back_off = None;
            if *p == Default::default() {
                rest.retry_policy = None;
            }
        }
        refuse_rest(&what, &rest)?;
        use route_action::ClusterSpecifier as C;
        let mut out = match &a.cluster_specifier {
            Some(C::Cluster(c)) => single(c, None, self.uses)?,
            Some(C::WeightedClusters(w)) => weighted(
                w.clusters.iter().map(|c| {
                    let weight = c.weight.as_ref().map_or(0, |w| w.value);
                    (c.name.as_str(), weight, c.metadata_match.as_ref())
                }),
                self.uses,
            )?,
            None => return Err(format!("{what}: needs a cluster")),
        };
        if let Some(t) = &a.timeout {
            out["timeout"] = route_timeout(t);
        }
        if let Some(p) = &a.retry_policy {
            // The generic proxy retries a request whose upstream failed to
            // connect or was reset; so does this translation.
            let mut retries = json!({
                "attempts": p.num_retries.as_ref().map_or(1, |n| n.value),
                "on": ["connect-failure", "reset"],
            });
            if let Some(b) = &p.retry_back_off {
                retries["backoff"] = backoff(b.base_interval.as_ref(), b.max_interval.as_ref());
            }
            out["retries"] = retries;
        }
        Ok(out)
    }
}

/// A predicate as alternatives (any of them), each a list of conditions
/// (all of them); `negate` pushes a `not` down (De Morgan).
fn dnf(
    what: &str,
    p: &matcher::matcher_list::Predicate,
    negate: bool,
) -> Result<Vec<Vec<Value>>, String> {
    use matcher::matcher_list::predicate::MatchType as P;
    /// Alternatives of both lists: each of `a` with each of `b`.
    fn and(a: Vec<Vec<Value>>, b: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
        a.iter()
            .flat_map(|x| {
                b.iter().map(move |y| {
                    let mut both = x.clone();
                    both.extend(y.iter().cloned());
                    both
                })
            })
            .collect()
    }
    let all = |list: &matcher::matcher_list::predicate::PredicateList| -> Result<_, String> {
        let mut out = vec![Vec::new()];
        for p in &list.predicate {
            out = and(out, dnf(what, p, negate)?);
        }
        Ok(out)
    };
    let any = |list: &matcher::matcher_list::predicate::PredicateList| -> Result<_, String> {
        let mut out = Vec::new();
        for p in &list.predicate {
            out.extend(dnf(what, p, negate)?);
        }
        Ok(out)
    };
    let out = match &p.match_type {
        Some(P::SinglePredicate(s)) => {
            let mut c = single_predicate(what, s)?;
            if negate {
                c["invert"] = json!(true);
            }
            vec![vec![c]]
        }
        Some(P::AndMatcher(list)) if !negate => all(list)?,
        Some(P::AndMatcher(list)) => any(list)?,
        Some(P::OrMatcher(list)) if !negate => any(list)?,
        Some(P::OrMatcher(list)) => all(list)?,
        Some(P::NotMatcher(inner)) => dnf(what, inner, !negate)?,
        None => return Err(format!("{what}: an empty predicate")),
    };
    if out.len() > 64 {
        return Err(format!(
            "{what}: the predicate spreads into more than 64 routes"
        ));
    }
    Ok(out)
}

/// One input compared with one string matcher.
fn single_predicate(
    what: &str,
    s: &matcher::matcher_list::predicate::SinglePredicate,
) -> Result<Value, String> {
    use matcher::matcher_list::predicate::single_predicate::Matcher as M;
    let key = input_key(what, s.input.as_ref())?;
    let Some(M::ValueMatch(m)) = &s.matcher else {
        return Err(format!(
            "{what}: only `value_match` predicates are supported"
        ));
    };
    // xds.type.matcher.v3.StringMatcher and Envoy's StringMatcher are the
    // same message on the wire (field for field), so one reader serves.
    let m =
        StringMatcher::decode(m.encode_to_vec().as_slice()).map_err(|e| format!("{what}: {e}"))?;
    string_condition(what, &key, &m)
}

/// The metadata key an input reads.
fn input_key(what: &str, input: Option<&TypedExtensionConfig>) -> Result<String, String> {
    let Some(any) = input.and_then(|i| i.typed_config.as_ref()) else {
        return Err(format!("{what}: needs an `input`"));
    };
    let Some(name) = any.type_url.strip_prefix(INPUTS) else {
        return Err(format!("{what}: input `{}` is not supported", any.type_url));
    };
    Ok(match name {
        "ServiceMatchInput" | "HostMatchInput" | "PathMatchInput" => "interface".into(),
        "MethodMatchInput" => "method".into(),
        "PropertyMatchInput" => {
            let p = PropertyMatchInput::decode(any.value.as_slice())
                .map_err(|e| format!("{what}: {e}"))?;
            if p.property_name.is_empty() {
                return Err(format!("{what}: `property_name` is empty"));
            }
            p.property_name
        }
        other => return Err(format!("{what}: input `{other}` is not supported")),
    })
}
