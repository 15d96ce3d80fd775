//! Routes and their actions.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::filter::FilterChain;
use crate::metadata::MetadataView;
use crate::metrics::TargetMetrics;
use crate::mutation::Mutation;

use super::retry::RetryPolicy;

use super::condition::Condition;

/// Where a request goes: a cluster and, optionally, one of its subsets.
#[derive(Debug, Clone)]
pub struct Target {
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// Index into the cluster's subsets (0 is the whole cluster).
    pub subset: usize,
    /// Metric handles for requests sent here.
    pub metrics: TargetMetrics,
}

impl Target {
    /// Feeds one try's outcome (if it says something about `endpoint`) to
    /// the cluster's outlier detection; an ejection is counted.
    pub fn record(
        &self,
        endpoint: &crate::cluster::Endpoint,
        outcome: Option<crate::cluster::Outcome>,
    ) {
        let cluster = &self.cluster;
        if let (Some(outlier), Some(outcome)) = (&cluster.parts.outlier, outcome)
            && endpoint.record_outcome(outcome, outlier, cluster.endpoints().all())
        {
            self.metrics.ejections.inc();
        }
    }
}

/// A route's shadow traffic.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// Where copies go.
    pub target: Target,
    /// Share of requests copied, 0-100.
    pub percent: f64,
}

impl Mirror {
    /// Whether this request is copied.
    pub fn sample(&self) -> bool {
        self.percent >= 100.0 || fastrand::f64() * 100.0 < self.percent
    }
}

/// An HTTP redirect the proxy answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// New scheme.
    pub scheme: Option<String>,
    /// New host.
    pub host: Option<String>,
    /// New port.
    pub port: Option<u16>,
    /// New path.
    pub path: Option<String>,
    /// Status code.
    pub code: u16,
}

/// How an HTTP path is rewritten.
#[derive(Debug, Clone)]
pub enum PathRewrite {
    /// Replace `matched` (the route's `:path` prefix) with `replacement`.
    Prefix {
        /// The prefix the route matched on.
        matched: String,
        /// What replaces it.
        replacement: String,
    },
    /// Replace every match of `regex` with `substitution`.
    Regex {
        /// The pattern.
        regex: regex::Regex,
        /// The substitution.
        substitution: String,
    },
}

impl PathRewrite {
    /// The rewritten path (the query, if any, is kept as it is).
    pub fn apply(&self, path_and_query: &str) -> String {
        let (path, query) = match path_and_query.find('?') {
            Some(i) => path_and_query.split_at(i),
            None => (path_and_query, ""),
        };
        let new_path = match self {
            PathRewrite::Prefix {
                matched,
                replacement,
            } => match path.strip_prefix(matched.as_str()) {
                Some(rest) => {
                    let rest = match rest.strip_prefix('/') {
                        Some(r) if replacement.ends_with('/') => r,
                        _ => rest,
                    };
                    let joined = format!("{replacement}{rest}");
                    if joined.starts_with('/') {
                        joined
                    } else {
                        format!("/{joined}")
                    }
                }
                None => path.to_string(),
            },
            PathRewrite::Regex {
                regex,
                substitution,
            } => regex.replace_all(path, substitution.as_str()).into_owned(),
        };
        format!("{new_path}{query}")
    }
}

/// Request changes a route applies before forwarding (HTTP).
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    /// Path rewrite.
    pub path: Option<PathRewrite>,
    /// New `:authority`.
    pub host: Option<String>,
}

/// What a matching route does.
#[derive(Debug, Clone)]
pub enum RouteAction {
    /// Answer with a redirect (HTTP).
    Redirect(Redirect),
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
    /// Picks the target for one request (`None` for a redirect).
    pub fn pick(&self) -> Option<&Target> {
        match self {
            RouteAction::Redirect(_) => None,
            RouteAction::Single(t) => Some(t),
            RouteAction::Weighted { targets, total } => {
                let roll = fastrand::u32(0..*total);
                let idx = targets.partition_point(|(_, upper)| *upper <= roll);
                targets
                    .get(idx.min(targets.len().saturating_sub(1)))
                    .map(|t| &t.0)
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
    /// HTTP path/host rewrite.
    pub rewrite: Option<Rewrite>,
    /// Changes to the request's headers (attachments, THeader headers).
    pub request_mutation: Mutation,
    /// Changes to the response's headers.
    pub response_mutation: Mutation,
    /// This route's filter chain when it overrides the listener's.
    pub filters: Option<FilterChain>,
    /// Retry policy.
    pub retry: Option<RetryPolicy>,
    /// Shadow traffic.
    pub mirror: Option<Mirror>,
    /// Connection upgrades relayed (`websocket`), lower-case; empty: none.
    pub upgrades: Vec<Arc<str>>,
}

impl Route {
    /// Whether every condition holds.
    pub fn matches(&self, view: &impl MetadataView) -> bool {
        self.conditions.iter().all(|c| c.matches(view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rewrites_keep_the_query() {
        let p = PathRewrite::Prefix {
            matched: "/product".into(),
            replacement: "/".into(),
        };
        assert_eq!(p.apply("/product/42?x=1"), "/42?x=1");
        assert_eq!(p.apply("/product"), "/");
        assert_eq!(p.apply("/other"), "/other");
        let r = PathRewrite::Regex {
            regex: regex::Regex::new("^/v1/(.*)$").unwrap(),
            substitution: "/api/$1".into(),
        };
        assert_eq!(r.apply("/v1/users?id=3"), "/api/users?id=3");
    }
}
