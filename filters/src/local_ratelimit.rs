//! `local_ratelimit`: token buckets kept in this proxy process.
//!
//! A request takes a token from the bucket of the first entry of `buckets`
//! whose conditions all hold, else from the default bucket (the top-level
//! `tokens_per_second`/`burst`; without them, unmatched requests are not
//! limited). An entry (or the default) with `per_key` keeps one bucket per
//! distinct value of that metadata key, at most `max_keys` of them (see
//! [`crate::keyed`] for what happens beyond). Over the limit the request is
//! answered with `OverLimit` (HTTP 429 with `retry-after`).
//!
//! ```yaml
//! filters:
//!   - local_ratelimit:
//!       tokens_per_second: 1000
//!       burst: 2000
//!       buckets:
//!         - name: batch
//!           match: [ { key: batchJob, exact: "true" } ]
//!           tokens_per_second: 10
//!         - name: per-user
//!           match: [ { key: x-user-id, present: true } ]
//!           tokens_per_second: 5
//!           burst: 10
//!           per_key: x-user-id
//!           max_keys: 10000
//! ```
//!
//! Bucket state survives a config reload: the factory remembers (weakly)
//! the buckets of every limit it built, keyed by listener, route override,
//! the limit's position and name and its settings (rate, burst, `per_key`,
//! `max_keys`); a rebuild with the same key takes over the live buckets of
//! the filter it replaces instead of starting full. A limit whose settings
//! changed starts with fresh buckets. The buckets are dropped with the last
//! filter using them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use metaproxy_core::PluginError;
use metaproxy_core::filter::{Filter, FilterAction, FilterContext, FilterFactory, RequestContext};
use metaproxy_core::metadata::MetadataView;
use metaproxy_core::{ErrorKind, Origin, ProxyError};
use serde::Deserialize;

use crate::bucket::{Bucket, Rate, now_nanos, retry_after_secs};
use crate::conditions::{Conditions, metadata_key};
use crate::keyed::KeyedBuckets;
use metaproxy_core::config::MatchConfig;

/// Per-key buckets kept when `max_keys` is not given.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    tokens_per_second: Option<f64>,
    #[serde(default)]
    burst: Option<u64>,
    #[serde(default)]
    per_key: Option<String>,
    #[serde(default)]
    max_keys: Option<usize>,
    #[serde(default)]
    buckets: Vec<BucketConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BucketConfig {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "match")]
    conditions: Vec<MatchConfig>,
    tokens_per_second: f64,
    #[serde(default)]
    burst: Option<u64>,
    #[serde(default)]
    per_key: Option<String>,
    #[serde(default)]
    max_keys: Option<usize>,
}

/// Where a limit keeps its tokens.
#[derive(Debug)]
enum Store {
    Shared(Bucket),
    PerKey {
        key: String,
        buckets: KeyedBuckets,
        /// Requests without the key share this one.
        missing: Bucket,
    },
}

/// One bucket definition.
#[derive(Debug)]
struct Limit {
    name: String,
    rate: Rate,
    /// Shared with the filter this one replaced on a reload, if its settings were the same.
    store: Arc<Store>,
}

/// The buckets of the limits built so far, by [`carry_key`], held weakly:
/// an entry lives as long as some filter (an old snapshot's or the current
/// one's) uses its buckets.
type Carried = Mutex<HashMap<String, Weak<Store>>>;

/// What must be equal for a rebuilt limit to keep the buckets of the old one.
fn carry_key(
    context: &FilterContext<'_>,
    position: &str,
    name: &str,
    rate: &Rate,
    per_key: Option<&str>,
    max_keys: Option<usize>,
) -> String {
    // Debug output quotes and escapes strings, so fields cannot run into each other.
    format!(
        "{:?} {:?} {position:?} {name:?} {rate:?} {per_key:?} {max_keys:?}",
        context.listener, context.route
    )
}

impl Limit {
    #[allow(clippy::too_many_arguments)]
    fn build(
        carried: &Carried,
        position: &str,
        name: String,
        tokens_per_second: f64,
        burst: Option<u64>,
        per_key: Option<&str>,
        max_keys: Option<usize>,
        context: &FilterContext<'_>,
    ) -> Result<Self, PluginError> {
        // Default burst: one second's worth of tokens.
        let burst = burst.unwrap_or_else(|| tokens_per_second.ceil().max(1.0) as u64);
        let rate = Rate::new(tokens_per_second, burst)
            .map_err(|e| PluginError::invalid_option(&name, e))?;
        let fresh = match (per_key, max_keys) {
            (None, Some(_)) => {
                return Err(PluginError::invalid_option(
                    name,
                    "`max_keys` needs `per_key`",
                ));
            }
            (None, None) => Store::Shared(Bucket::new()),
            (Some(key), max) => {
                let max = max.unwrap_or(DEFAULT_MAX_KEYS);
                if max == 0 {
                    return Err(PluginError::invalid_option(
                        name,
                        "`max_keys` must be at least 1",
                    ));
                }
                Store::PerKey {
                    key: metadata_key(key, context),
                    buckets: KeyedBuckets::new(max),
                    missing: Bucket::new(),
                }
            }
        };
        let key = carry_key(context, position, &name, &rate, per_key, max_keys);
        // A poisoned map only means a build panicked mid-insert; the map is still valid.
        let mut map = carried.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, w| w.strong_count() > 0);
        let store = match map.get(&key).and_then(Weak::upgrade) {
            Some(live) => live,
            None => {
                let store = Arc::new(fresh);
                map.insert(key, Arc::downgrade(&store));
                store
            }
        };
        Ok(Self { name, rate, store })
    }

    fn check(&self, request: &RequestContext) -> Result<(), ProxyError> {
        let now = now_nanos();
        let taken = match &*self.store {
            Store::Shared(b) => b.take(&self.rate, now),
            Store::PerKey {
                key,
                buckets,
                missing,
            } => match request.lookup(key) {
                Some(value) => buckets.get(value, now).take(&self.rate, now),
                None => missing.take(&self.rate, now),
            },
        };
        taken.map_err(|wait| {
            ProxyError::new(
                ErrorKind::OverLimit,
                Origin::Internal,
                format!("local rate limit `{}` exceeded", self.name),
            )
            .with_reply_status(429)
            .with_reply_metadata("retry-after", retry_after_secs(wait).to_string())
        })
    }
}

/// The filter.
#[derive(Debug)]
pub struct LocalRateLimit {
    rules: Vec<(Conditions, Limit)>,
    default: Option<Limit>,
}

#[async_trait]
impl Filter for LocalRateLimit {
    fn name(&self) -> &'static str {
        "local_ratelimit"
    }

    async fn on_request(&self, request: &mut RequestContext) -> FilterAction {
        let limit = self
            .rules
            .iter()
            .find(|(c, _)| c.matches(&*request))
            .map(|(_, l)| l)
            .or(self.default.as_ref());
        match limit.map(|l| l.check(request)) {
            Some(Err(e)) => FilterAction::Reply(e),
            _ => FilterAction::Continue,
        }
    }
}

/// Builds [`LocalRateLimit`] from config. Keep one factory for the life of
/// the proxy (the registry does): it hands a rebuilt limit with unchanged
/// settings the buckets of the one it replaces, so a reload does not refill them.
#[derive(Debug, Default)]
pub struct LocalRateLimitFactory {
    carried: Carried,
}

impl LocalRateLimitFactory {
    /// A factory that has built nothing yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl FilterFactory for LocalRateLimitFactory {
    fn name(&self) -> &'static str {
        "local_ratelimit"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        context: &FilterContext<'_>,
    ) -> Result<Arc<dyn Filter>, PluginError> {
        let config = Config::deserialize(config)?;
        let default = match config.tokens_per_second {
            Some(tps) => Some(Limit::build(
                &self.carried,
                "default",
                "default".into(),
                tps,
                config.burst,
                config.per_key.as_deref(),
                config.max_keys,
                context,
            )?),
            None if config.burst.is_some() || config.per_key.is_some() => {
                return Err(
                    "`burst` and `per_key` at the top level need `tokens_per_second`".into(),
                );
            }
            None => None,
        };
        let mut rules = Vec::new();
        for (i, b) in config.buckets.into_iter().enumerate() {
            let name = b.name.unwrap_or_else(|| format!("bucket-{i}"));
            let conditions = Conditions::compile(&b.conditions, context)
                .map_err(|e| PluginError::invalid_option(&name, e))?;
            let limit = Limit::build(
                &self.carried,
                &i.to_string(),
                name,
                b.tokens_per_second,
                b.burst,
                b.per_key.as_deref(),
                b.max_keys,
                context,
            )?;
            rules.push((conditions, limit));
        }
        if default.is_none() && rules.is_empty() {
            return Err("needs `tokens_per_second` or at least one entry in `buckets`".into());
        }
        Ok(Arc::new(LocalRateLimit { rules, default }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaproxy_core::Metadata;
    use metaproxy_core::message::MessageKind;

    const CTX: FilterContext<'static> = FilterContext {
        listener: "test",
        protocol: "dubbo",
        route: None,
    };

    fn build(config: serde_json::Value) -> Arc<dyn Filter> {
        LocalRateLimitFactory::new().build(&config, &CTX).unwrap()
    }

    fn request(pairs: &[(&str, &str)]) -> RequestContext {
        let md: Metadata = pairs.iter().copied().collect();
        let conn: Metadata = [("source.ip", "127.0.0.1")].into_iter().collect();
        RequestContext::new("dubbo", MessageKind::Request, md, Arc::new(conn))
    }

    async fn allowed(f: &Arc<dyn Filter>, pairs: &[(&str, &str)], n: usize) -> usize {
        let mut ok = 0;
        for _ in 0..n {
            match f.on_request(&mut request(pairs)).await {
                FilterAction::Continue => ok += 1,
                FilterAction::Reply(e) => {
                    assert_eq!(e.kind, ErrorKind::OverLimit);
                    assert_eq!(e.reply_status, Some(429));
                    assert_eq!(e.reply_metadata[0].0, "retry-after");
                    let secs: u64 = e.reply_metadata[0].1.parse().unwrap();
                    assert!(secs >= 1, "{secs}");
                }
                FilterAction::Respond(r) => panic!("unexpected {r:?}"),
            }
        }
        ok
    }

    #[tokio::test]
    async fn default_bucket_allows_the_burst() {
        let f = build(serde_json::json!({"tokens_per_second": 0.001, "burst": 3}));
        assert_eq!(allowed(&f, &[], 10).await, 3);
    }

    #[tokio::test]
    async fn first_matching_bucket_wins_and_others_are_independent() {
        let f = build(serde_json::json!({
            "tokens_per_second": 0.001, "burst": 5,
            "buckets": [
                {"name": "batch", "match": [{"key": "batchJob", "exact": "true"}],
                 "tokens_per_second": 0.001, "burst": 2},
                {"name": "also-batch", "match": [{"key": "batchJob", "present": true}],
                 "tokens_per_second": 0.001, "burst": 100}
            ]
        }));
        assert_eq!(allowed(&f, &[("batchJob", "true")], 10).await, 2);
        assert_eq!(allowed(&f, &[("batchJob", "no")], 10).await, 10);
        assert_eq!(allowed(&f, &[], 10).await, 5);
    }

    #[tokio::test]
    async fn per_key_buckets_and_the_missing_key_bucket() {
        let f = build(serde_json::json!({
            "buckets": [{"name": "user", "tokens_per_second": 0.001, "burst": 2,
                         "per_key": "x-user-id", "max_keys": 100}]
        }));
        assert_eq!(allowed(&f, &[("x-user-id", "a")], 5).await, 2);
        assert_eq!(allowed(&f, &[("x-user-id", "b")], 5).await, 2);
        assert_eq!(allowed(&f, &[("x-user-id", "a")], 5).await, 0);
        assert_eq!(
            allowed(&f, &[], 5).await,
            2,
            "requests without the key share one bucket"
        );
    }

    #[tokio::test]
    async fn only_matching_requests_are_limited_without_a_default() {
        let f = build(serde_json::json!({
            "buckets": [{"match": [{"key": "method", "exact": "slow"}], "tokens_per_second": 0.001, "burst": 1}]
        }));
        assert_eq!(allowed(&f, &[("method", "slow")], 3).await, 1);
        assert_eq!(allowed(&f, &[("method", "fast")], 50).await, 50);
    }

    #[tokio::test]
    async fn refills_over_time() {
        let f = build(serde_json::json!({"tokens_per_second": 50, "burst": 1}));
        assert_eq!(allowed(&f, &[], 1).await, 1);
        let start = std::time::Instant::now();
        let deadline = start + std::time::Duration::from_secs(5);
        while allowed(&f, &[], 1).await == 0 {
            assert!(std::time::Instant::now() < deadline, "never refilled");
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        // One token every 20 ms: the next one cannot come much sooner.
        assert!(
            start.elapsed() >= std::time::Duration::from_millis(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn a_rebuild_with_the_same_settings_keeps_the_buckets() {
        // One factory for the proxy's life, as the registry keeps it; a
        // reload builds the filter again from the same config while the
        // old one still serves.
        let factory = LocalRateLimitFactory::new();
        let config = serde_json::json!({
            "tokens_per_second": 0.001, "burst": 3,
            "buckets": [{"name": "user", "tokens_per_second": 0.001, "burst": 2,
                         "per_key": "x-user-id", "match": [{"key": "x-user-id", "present": true}]}]
        });
        let old = factory.build(&config, &CTX).unwrap();
        assert_eq!(allowed(&old, &[], 5).await, 3);
        assert_eq!(allowed(&old, &[("x-user-id", "a")], 5).await, 2);
        let reloaded = factory.build(&config, &CTX).unwrap();
        assert_eq!(
            allowed(&reloaded, &[], 5).await,
            0,
            "no fresh burst by reloading"
        );
        assert_eq!(allowed(&reloaded, &[("x-user-id", "a")], 5).await, 0);
        assert_eq!(allowed(&reloaded, &[("x-user-id", "b")], 5).await, 2);
        // Still after the old snapshot is gone.
        drop(old);
        let again = factory.build(&config, &CTX).unwrap();
        drop(reloaded);
        assert_eq!(allowed(&again, &[], 5).await, 0);

        // Changed settings start full; so does another listener or route.
        let changed = factory
            .build(
                &serde_json::json!({"tokens_per_second": 0.001, "burst": 4}),
                &CTX,
            )
            .unwrap();
        assert_eq!(allowed(&changed, &[], 9).await, 4);
        let other = FilterContext {
            listener: "other",
            ..CTX
        };
        assert_eq!(
            allowed(&factory.build(&config, &other).unwrap(), &[], 9).await,
            3
        );
        let route = FilterContext {
            route: Some("r"),
            ..CTX
        };
        assert_eq!(
            allowed(&factory.build(&config, &route).unwrap(), &[], 9).await,
            3
        );

        // Once no filter uses them, the buckets are forgotten.
        drop((again, changed));
        let fresh = factory.build(&config, &CTX).unwrap();
        assert_eq!(allowed(&fresh, &[], 9).await, 3);
    }

    #[test]
    fn config_errors() {
        for (config, want) in [
            (serde_json::json!({}), "needs `tokens_per_second`"),
            (serde_json::json!({"tokens_per_second": 0}), "positive"),
            (
                serde_json::json!({"tokens_per_second": 1, "burts": 2}),
                "unknown field",
            ),
            (serde_json::json!({"burst": 2}), "need `tokens_per_second`"),
            (
                serde_json::json!({"tokens_per_second": 1, "max_keys": 2}),
                "needs `per_key`",
            ),
            (
                serde_json::json!({"buckets": [{"name": "b", "tokens_per_second": 1, "match": [{"key": "k"}]}]}),
                "`b`: condition on `k` needs exactly one",
            ),
        ] {
            let Err(err) = LocalRateLimitFactory::new().build(&config, &CTX) else {
                panic!("{config} must be refused");
            };
            assert!(err.to_string().contains(want), "{config}: {err}");
        }
    }
}
