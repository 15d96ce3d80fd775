//! An index over one route list. The key most routes test with a plain
//! `exact` condition is chosen when the list is built; those routes are
//! grouped by the value they want. A request then tries only the routes
//! its own value can match, plus the routes that do not test the key that
//! way, in config order: the first match is the one a full scan finds.

use std::collections::HashMap;

use crate::metadata::MetadataView;

use super::condition::{Condition, MatchOp};
use super::route::Route;
use rustc_hash::FxBuildHasher;

/// An index is built when at least this many routes test one key with a
/// plain `exact` condition; shorter lists are scanned.
pub const MIN_INDEXED_ROUTES: usize = 8;

/// Route positions grouped by the value one key must equal.
#[derive(Debug, Clone)]
pub(crate) struct RouteIndex {
    /// The metadata key the routes are grouped by.
    key: String,
    /// Value → positions of the routes that need the key to equal it, ascending.
    by_value: HashMap<String, Vec<u32>, FxBuildHasher>,
    /// Positions of the routes without such a condition, ascending.
    unindexed: Vec<u32>,
}

/// The value a condition needs its key to equal, if it is a plain `exact`.
/// [`Condition::matches`] reads one value per key ([`MetadataView::lookup`])
/// and compares it byte for byte, so the route can only match a request
/// whose value is this one.
fn exact_value(c: &Condition) -> Option<&str> {
    match &c.op {
        MatchOp::Exact(v) if !c.invert => Some(v),
        _ => None,
    }
}

/// The first plain `exact` value `route` wants for `key`.
fn wanted<'r>(route: &'r Route, key: &str) -> Option<&'r str> {
    route
        .conditions
        .iter()
        .filter(|c| c.key == key)
        .find_map(exact_value)
}

impl RouteIndex {
    /// Indexes `routes` by the key most of them test with `exact` (ties:
    /// the smallest key), or `None` when too few do.
    pub fn build(routes: &[Route]) -> Option<RouteIndex> {
        u32::try_from(routes.len()).ok()?;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for r in routes {
            for (i, c) in r.conditions.iter().enumerate() {
                let first_on_key = !r.conditions[..i]
                    .iter()
                    .any(|p| p.key == c.key && exact_value(p).is_some());
                if exact_value(c).is_some() && first_on_key {
                    *counts.entry(c.key.as_str()).or_default() += 1;
                }
            }
        }
        let (key, count) = counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))?;
        if count < MIN_INDEXED_ROUTES {
            return None;
        }
        let mut by_value: HashMap<String, Vec<u32>, FxBuildHasher> = HashMap::default();
        let mut unindexed = Vec::new();
        for (pos, r) in (0u32..).zip(routes) {
            match wanted(r, key) {
                Some(v) => by_value.entry(v.to_string()).or_default().push(pos),
                None => unindexed.push(pos),
            }
        }
        Some(RouteIndex {
            key: key.to_string(),
            by_value,
            unindexed,
        })
    }

    /// The first of `routes` (the list this index was built from) whose
    /// conditions all hold: the candidates for the request's value and the
    /// unindexed routes, merged in position order, every condition checked.
    pub fn find<'r>(&self, routes: &'r [Route], view: &impl MetadataView) -> Option<&'r Route> {
        let candidates = view
            .lookup(&self.key)
            .and_then(|v| self.by_value.get(v))
            .map_or(&[][..], Vec::as_slice);
        let others = self.unindexed.as_slice();
        let (mut i, mut j) = (0, 0);
        loop {
            let pos = match (candidates.get(i), others.get(j)) {
                (Some(&a), Some(&b)) if a < b => {
                    i += 1;
                    a
                }
                (_, Some(&b)) => {
                    j += 1;
                    b
                }
                (Some(&a), None) => {
                    i += 1;
                    a
                }
                (None, None) => return None,
            };
            let route = &routes[pos as usize];
            if route.matches(view) {
                return Some(route);
            }
        }
    }

    /// The key routes are grouped by.
    pub fn key(&self) -> &str {
        &self.key
    }
}
