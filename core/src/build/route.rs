//! Building routes (conditions, actions, rewrites, header changes, filter
//! overrides) from config, reporting every problem with its position.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::cluster::Cluster;
use crate::config::load::ErrorSink;
use crate::config::{HeaderOpsConfig, RouteActionConfig, RouteConfig};
use crate::filter::{FilterChain, FilterContext};
use crate::metrics::Metrics;
use crate::mutation::Mutation;
use crate::registry::{Registry, RouteFeatures};
use crate::router::{
    Condition, ConditionError, MatchOp, Mirror, PathRewrite, Redirect, RetryOn, RetryPolicy,
    Rewrite, Route, RouteAction, Target,
};

use crate::snapshot::DEFAULT_ROUTE_TIMEOUT;

/// One listener filter as configured: its name and the built filter.
pub(super) struct ConfiguredFilter<'a> {
    pub name: &'a str,
    pub filter: Arc<dyn crate::filter::Filter>,
}

/// The metadata key HTTP paths are matched on.
const PATH_KEY: &str = ":path";

/// What building one listener's routes needs.
pub(super) struct RouteBuilder<'a, 'f> {
    pub sink: &'a mut ErrorSink,
    pub clusters: &'a HashMap<Arc<str>, Arc<Cluster>>,
    pub registry: &'a Registry,
    pub listener: &'a str,
    pub protocol: &'a str,
    pub cluster_protocols: Vec<&'static str>,
    pub features: RouteFeatures,
    pub filters: &'a [ConfiguredFilter<'f>],
    pub metrics: &'a Metrics,
    /// The route being built (for metric labels).
    pub route: String,
}

impl RouteBuilder<'_, '_> {
    pub fn build_routes(&mut self, routes: &[Spanned<RouteConfig>]) -> Vec<Route> {
        routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| self.build_route(&r.value, i))
            .collect()
    }

    /// Case-insensitive keys (HTTP header names) are stored and matched
    /// lower-case.
    fn key(&self, key: &str) -> String {
        if self.features.case_insensitive_keys {
            key.to_ascii_lowercase()
        } else {
            key.to_string()
        }
    }

    fn build_route(&mut self, r: &RouteConfig, index: usize) -> Option<Route> {
        let name = r.name.clone().unwrap_or_else(|| format!("route-{index}"));
        self.route = name.clone();
        let mut ok = true;
        let mut conditions = Vec::new();
        for m in &r.conditions {
            match self.condition(m) {
                Some(c) => conditions.push(c),
                None => ok = false,
            }
        }
        let a = &r.route.value;
        let action = self.action(&r.route);
        let timeout = a.timeout.map_or(DEFAULT_ROUTE_TIMEOUT, |d| d.get());
        if timeout.is_zero() {
            self.sink.on(&r.route, "timeout must be greater than zero");
        }
        let rewrite = self.rewrite(&r.route, &conditions);
        let request_mutation = self.mutation(r.request_headers.as_ref());
        let response_mutation = self.mutation(r.response_headers.as_ref());
        let filters = self.filter_overrides(r, &name);
        let retry = self.retry(&r.route);
        let mirror = self.mirror(&r.route);
        let upgrades = self.upgrades(&r.route);
        Some(Route {
            name: Arc::from(name),
            conditions,
            action: action.filter(|_| ok)?,
            timeout,
            rewrite,
            request_mutation,
            response_mutation,
            filters,
            retry,
            mirror,
            upgrades,
        })
    }

    /// `upgrades:`: only WebSocket is relayed (an upgrade to `h2c` through
    /// a proxy would let a client talk HTTP/2 to the upstream unrouted).
    fn upgrades(&mut self, action: &Spanned<RouteActionConfig>) -> Vec<Arc<str>> {
        let Some(list) = &action.value.upgrades else {
            return Vec::new();
        };
        if !self.features.upgrades {
            let why = unsupported(self.registry, "upgrades", self.protocol, |f| f.upgrades);
            self.sink.on(list, why);
            return Vec::new();
        }
        let mut out = Vec::new();
        for name in &list.value {
            let lower = name.to_ascii_lowercase();
            if lower != "websocket" {
                self.sink.on(
                    list,
                    format!("upgrade `{name}` is not relayed; only `websocket` is"),
                );
            } else if !out.iter().any(|u: &Arc<str>| **u == *lower) {
                out.push(Arc::from(lower));
            }
        }
        out
    }

    fn retry(&mut self, action: &Spanned<RouteActionConfig>) -> Option<RetryPolicy> {
        let r = &action.value.retries.as_ref()?;
        let on = match &r.value.on {
            None => RetryOn::default_set(),
            Some(names) => match RetryOn::parse(names) {
                Ok(on) => on,
                Err(e) => {
                    self.sink.on(r, e.to_string());
                    return None;
                }
            },
        };
        let backoff = r.value.backoff.clone();
        let base = backoff
            .as_ref()
            .and_then(|b| b.base)
            .map_or(Duration::from_millis(25), |d| d.get());
        let max = backoff
            .as_ref()
            .and_then(|b| b.max)
            .map_or(base.max(Duration::from_millis(250)), |d| d.get());
        if max < base {
            self.sink
                .on(r, "retries.backoff.max must not be below backoff.base");
        }
        let per_try_timeout = r.value.per_try_timeout.map(|d| d.get());
        if per_try_timeout.is_some_and(|d| d.is_zero()) {
            self.sink
                .on(r, "retries.per_try_timeout must be greater than zero");
        }
        Some(RetryPolicy {
            attempts: r.value.attempts.unwrap_or(1),
            per_try_timeout,
            on,
            backoff_base: base,
            backoff_max: max,
        })
    }

    fn mirror(&mut self, action: &Spanned<RouteActionConfig>) -> Option<Mirror> {
        let m = action.value.mirror.as_ref()?;
        let percent = m.value.percent.unwrap_or(100.0);
        if !(0.0..=100.0).contains(&percent) {
            self.sink.on(m, "mirror.percent is a percentage (0-100)");
        }
        let target = self.target(&m.value.cluster, m.value.subset.as_ref())?;
        Some(Mirror { target, percent })
    }

    fn condition(&mut self, m: &Spanned<crate::config::MatchConfig>) -> Option<Condition> {
        let mc = &m.value;
        // The one condition builder (filters use it too); only the error's
        // place in the file is the route's own.
        let lower = self.features.case_insensitive_keys;
        let compiled = mc.compile(|k| {
            if lower {
                k.to_ascii_lowercase()
            } else {
                k.to_string()
            }
        });
        match compiled {
            Ok(c) => Some(c),
            Err(e @ ConditionError::Regex { .. }) => {
                match &mc.regex {
                    Some(r) => self.sink.on(r, e.to_string()),
                    None => self.sink.on(m, e.to_string()),
                }
                None
            }
            Err(e) => {
                self.sink.on(m, e.to_string());
                None
            }
        }
    }

    fn action(&mut self, action: &Spanned<RouteActionConfig>) -> Option<RouteAction> {
        let a = &action.value;
        let chosen = [
            a.cluster.is_some(),
            a.weighted.is_some(),
            a.redirect.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if chosen != 1 {
            self.sink.on(
                action,
                "a route needs exactly one of `cluster`, `weighted` or `redirect`",
            );
            return None;
        }
        if let Some(r) = &a.redirect {
            if !self.features.redirects {
                let why = unsupported(self.registry, "redirect", self.protocol, |f| f.redirects);
                self.sink.on(action, why);
                return None;
            }
            let code = r.code.unwrap_or(301);
            if ![301, 302, 303, 307, 308].contains(&code) {
                self.sink.on(
                    action,
                    format!("redirect code {code} is not one of 301, 302, 303, 307, 308"),
                );
            }
            return Some(RouteAction::Redirect(Redirect {
                scheme: r.scheme.clone(),
                host: r.host.clone(),
                port: r.port,
                path: r.path.clone(),
                code,
            }));
        }
        if let Some(cluster) = &a.cluster {
            return self
                .target(cluster, a.subset.as_ref())
                .map(RouteAction::Single);
        }
        let weighted = a.weighted.as_ref()?;
        if a.subset.is_some() {
            self.sink
                .on(action, "`subset` goes inside each `weighted` entry");
        }
        if weighted.is_empty() {
            self.sink.on(action, "`weighted` needs at least one entry");
            return None;
        }
        let mut targets = Vec::new();
        let mut total: u32 = 0;
        let mut ok = true;
        for w in weighted {
            total = total.saturating_add(w.value.weight);
            match self.target(&w.value.cluster, w.value.subset.as_ref()) {
                Some(t) if w.value.weight > 0 => targets.push((t, total)),
                Some(_) => {}
                None => ok = false,
            }
        }
        if total == 0 {
            self.sink.on(
                action,
                "weights of `weighted` add up to 0: nothing would be routed",
            );
            return None;
        }
        ok.then_some(RouteAction::Weighted { targets, total })
    }

    fn target(
        &mut self,
        cluster: &Spanned<String>,
        subset: Option<&Spanned<String>>,
    ) -> Option<Target> {
        let Some(c) = self.clusters.get(cluster.value.as_str()) else {
            self.sink
                .on(cluster, format!("unknown cluster `{}`", cluster.value));
            return None;
        };
        if !self.cluster_protocols.contains(&c.parts.protocol.as_str()) {
            self.sink.on(
                cluster,
                format!(
                    "cluster `{}` speaks `{}` but this listener speaks `{}`",
                    c.parts.name, c.parts.protocol, self.protocol
                ),
            );
            return None;
        }
        let subset = match subset {
            None => 0,
            Some(s) => match c.subset_index(&s.value) {
                Some(i) if !s.value.is_empty() => i,
                _ => {
                    self.sink.on(
                        s,
                        format!("cluster `{}` has no subset `{}`", c.parts.name, s.value),
                    );
                    return None;
                }
            },
        };
        Some(Target {
            cluster: c.clone(),
            subset,
            metrics: self
                .metrics
                .target(self.listener, &self.route, &c.parts.name, self.protocol),
        })
    }

    fn rewrite(
        &mut self,
        action: &Spanned<RouteActionConfig>,
        conditions: &[Condition],
    ) -> Option<Rewrite> {
        let rw = action.value.rewrite.as_ref()?;
        if !self.features.rewrites {
            let why = unsupported(self.registry, "rewrite", self.protocol, |f| f.rewrites);
            self.sink.on(action, why);
            return None;
        }
        let path = match (&rw.prefix, &rw.regex) {
            (Some(_), Some(_)) => {
                self.sink
                    .on(action, "`rewrite` takes `prefix` or `regex`, not both");
                None
            }
            (Some(replacement), None) => {
                let matched = conditions.iter().find_map(|c| match &c.op {
                    MatchOp::Prefix(p) if c.key == PATH_KEY && !c.invert => Some(p.clone()),
                    _ => None,
                });
                match matched {
                    Some(matched) => Some(PathRewrite::Prefix {
                        matched,
                        replacement: replacement.clone(),
                    }),
                    None => {
                        self.sink.on(
                            action,
                            "`rewrite.prefix` needs a `:path` prefix condition on the route",
                        );
                        None
                    }
                }
            }
            (None, Some(re)) => match regex::Regex::new(&re.pattern) {
                Ok(regex) => Some(PathRewrite::Regex {
                    regex,
                    substitution: re.substitution.clone(),
                }),
                Err(e) => {
                    let why = e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    self.sink
                        .on(action, format!("bad rewrite regex `{}`: {why}", re.pattern));
                    None
                }
            },
            (None, None) => None,
        };
        Some(Rewrite {
            path,
            host: rw.host.clone(),
        })
    }

    fn mutation(&self, ops: Option<&HeaderOpsConfig>) -> Mutation {
        let mut m = Mutation::new();
        if let Some(ops) = ops {
            for k in &ops.remove {
                m.remove(self.key(k));
            }
            for (k, v) in &ops.set {
                m.set(self.key(k), v.as_str());
            }
        }
        m
    }

    fn filter_overrides(&mut self, r: &RouteConfig, route: &str) -> Option<FilterChain> {
        if r.filters.is_empty() {
            return None;
        }
        for (name, value) in &r.filters {
            if !self.filters.iter().any(|f| f.name == name) {
                self.sink.on(
                    value,
                    format!(
                        "route `{route}` overrides filter `{name}`, which listener `{}` does not have",
                        self.listener
                    ),
                );
            }
        }
        let context = FilterContext {
            listener: self.listener,
            protocol: self.protocol,
            route: Some(route),
        };
        let mut chain = Vec::new();
        for f in self.filters {
            match r.filters.get(f.name) {
                None => chain.push(f.filter.clone()),
                Some(v) if v.value == serde_json::Value::Bool(false) => {}
                Some(v) => {
                    let Some(factory) = self.registry.filter(f.name) else {
                        continue;
                    };
                    match factory.build(&v.value, &context) {
                        Ok(filter) => chain.push(filter),
                        Err(e) => self
                            .sink
                            .on(v, format!("filter `{}` on route `{route}`: {e}", f.name)),
                    }
                }
            }
        }
        Some(FilterChain::new(chain))
    }
}

/// The error for a route feature the listener's protocol does not claim,
/// naming the protocols that do: "`redirect` needs a listener of a
/// protocol that has it (http), not `dubbo`".
pub(super) fn unsupported(
    registry: &Registry,
    feature: &str,
    protocol: &str,
    has: impl Fn(RouteFeatures) -> bool,
) -> String {
    let mut with: Vec<&str> = registry
        .protocol_names()
        .into_iter()
        .filter(|n| {
            registry
                .protocol(n)
                .is_some_and(|p| has(p.route_features()))
        })
        .collect();
    with.sort_unstable();
    let with = if with.is_empty() {
        "none registered".to_string()
    } else {
        with.join(", ")
    };
    format!("`{feature}` needs a listener of a protocol that has it ({with}), not `{protocol}`")
}
