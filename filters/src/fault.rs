//! `fault`: inject delays and aborts, by percentage, into requests selected
//! by metadata conditions (for testing how clients cope).
//!
//! The first entry of `rules` whose conditions all hold applies; the
//! top-level `delay`/`abort`, if given, apply to requests no rule matched.
//! A rule's delay (if drawn) runs first, then its abort (if drawn).
//!
//! ```yaml
//! filters:
//!   - fault:
//!       rules:
//!         - name: chaos
//!           match: [ { key: x-chaos, exact: "on" } ]
//!           delay: { fixed: 200ms, percentage: 50 }
//!           abort: { error: no_healthy_upstream, http_status: 503, percentage: 10 }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use metaproxy_core::PluginError;
use metaproxy_core::config::ConfigDuration;
use metaproxy_core::filter::{Filter, FilterAction, FilterContext, FilterFactory, RequestContext};
use metaproxy_core::{ErrorKind, Origin, ProxyError};
use serde::Deserialize;

use crate::conditions::Conditions;
use metaproxy_core::config::MatchConfig;

/// Error kinds as written in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KindConfig {
    RouteNotFound,
    ClusterNotFound,
    NoHealthyUpstream,
    ConnectFailure,
    OverLimit,
    Timeout,
    UpstreamReset,
    BadRequest,
    PermissionDenied,
    Internal,
}

impl From<KindConfig> for ErrorKind {
    fn from(k: KindConfig) -> Self {
        match k {
            KindConfig::RouteNotFound => ErrorKind::RouteNotFound,
            KindConfig::ClusterNotFound => ErrorKind::ClusterNotFound,
            KindConfig::NoHealthyUpstream => ErrorKind::NoHealthyUpstream,
            KindConfig::ConnectFailure => ErrorKind::ConnectFailure,
            KindConfig::OverLimit => ErrorKind::OverLimit,
            KindConfig::Timeout => ErrorKind::Timeout,
            KindConfig::UpstreamReset => ErrorKind::UpstreamReset,
            KindConfig::BadRequest => ErrorKind::BadRequest,
            KindConfig::PermissionDenied => ErrorKind::PermissionDenied,
            KindConfig::Internal => ErrorKind::Internal,
        }
    }
}

/// The error kind non-HTTP protocols answer with when only `http_status` is given.
fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        400 => ErrorKind::BadRequest,
        401 | 403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::RouteNotFound,
        408 | 504 => ErrorKind::Timeout,
        429 => ErrorKind::OverLimit,
        502 => ErrorKind::UpstreamReset,
        503 => ErrorKind::NoHealthyUpstream,
        _ => ErrorKind::Internal,
    }
}

fn default_percentage() -> f64 {
    100.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DelayConfig {
    fixed: ConfigDuration,
    #[serde(default = "default_percentage")]
    percentage: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AbortConfig {
    #[serde(default)]
    error: Option<KindConfig>,
    #[serde(default)]
    http_status: Option<u16>,
    #[serde(default = "default_percentage")]
    percentage: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    rules: Vec<RuleConfig>,
    #[serde(default)]
    delay: Option<DelayConfig>,
    #[serde(default)]
    abort: Option<AbortConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "match")]
    conditions: Vec<MatchConfig>,
    #[serde(default)]
    delay: Option<DelayConfig>,
    #[serde(default)]
    abort: Option<AbortConfig>,
}

/// A percentage in `0..=100`.
#[derive(Debug, Clone, Copy)]
struct Chance(f64);

impl Chance {
    /// `p` as the value of the option `option` (its path, e.g. `abort.percentage`).
    fn new(p: f64, option: String) -> Result<Self, PluginError> {
        if (0.0..=100.0).contains(&p) {
            Ok(Self(p))
        } else {
            Err(PluginError::invalid_option(
                option,
                format!("must be between 0 and 100, not {p}"),
            ))
        }
    }

    fn draw(self) -> bool {
        self.0 >= 100.0 || (self.0 > 0.0 && fastrand::f64() * 100.0 < self.0)
    }
}

#[derive(Debug)]
struct Rule {
    name: String,
    conditions: Conditions,
    delay: Option<(Duration, Chance)>,
    abort: Option<(ProxyError, Chance)>,
}

impl Rule {
    /// Builds the rule `name`; `at` is the path prefix of its options in
    /// error messages (`""` for the top-level rule, `"<name>."` for one of `rules`).
    fn build(
        name: String,
        at: &str,
        conditions: Conditions,
        delay: Option<DelayConfig>,
        abort: Option<AbortConfig>,
    ) -> Result<Self, PluginError> {
        if delay.is_none() && abort.is_none() {
            return Err(PluginError::Invalid(format!(
                "`{name}` needs `delay`, `abort` or both"
            )));
        }
        let delay = match delay {
            None => None,
            Some(d) => Some((
                d.fixed.get(),
                Chance::new(d.percentage, format!("{at}delay.percentage"))?,
            )),
        };
        let abort = match abort {
            None => None,
            Some(a) => {
                let chance = Chance::new(a.percentage, format!("{at}abort.percentage"))?;
                let kind = match (a.error, a.http_status) {
                    (None, None) => {
                        return Err(PluginError::invalid_option(
                            format!("{at}abort"),
                            "needs `error`, `http_status` or both",
                        ));
                    }
                    (Some(k), _) => ErrorKind::from(k),
                    (None, Some(s)) => kind_for_status(s),
                };
                let mut e = ProxyError::new(
                    kind,
                    Origin::Internal,
                    format!("fault injected by rule `{name}`"),
                );
                if let Some(s) = a.http_status {
                    if !(200..=599).contains(&s) {
                        return Err(PluginError::invalid_option(
                            format!("{at}abort.http_status"),
                            format!("{s} is not in 200..=599"),
                        ));
                    }
                    e = e.with_reply_status(s);
                }
                Some((e, chance))
            }
        };
        Ok(Self {
            name,
            conditions,
            delay,
            abort,
        })
    }
}

/// The filter.
#[derive(Debug)]
pub struct Fault {
    rules: Vec<Rule>,
}

#[async_trait]
impl Filter for Fault {
    fn name(&self) -> &'static str {
        "fault"
    }

    async fn on_request(&self, request: &mut RequestContext) -> FilterAction {
        let Some(rule) = self.rules.iter().find(|r| r.conditions.matches(&*request)) else {
            return FilterAction::Continue;
        };
        if let Some((delay, chance)) = rule.delay
            && chance.draw()
        {
            tracing::trace!(rule = %rule.name, ?delay, "fault: delaying");
            tokio::time::sleep(delay).await;
        }
        match &rule.abort {
            Some((error, chance)) if chance.draw() => FilterAction::Reply(error.clone()),
            _ => FilterAction::Continue,
        }
    }
}

/// Builds [`Fault`] from config.
#[derive(Debug)]
pub struct FaultFactory;

impl FilterFactory for FaultFactory {
    fn name(&self) -> &'static str {
        "fault"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        context: &FilterContext<'_>,
    ) -> Result<Arc<dyn Filter>, PluginError> {
        let config = Config::deserialize(config)?;
        let mut rules = Vec::new();
        for (i, r) in config.rules.into_iter().enumerate() {
            let name = r.name.unwrap_or_else(|| format!("rule-{i}"));
            let conditions = Conditions::compile(&r.conditions, context)
                .map_err(|e| PluginError::invalid_option(&name, e))?;
            let at = format!("{name}.");
            rules.push(Rule::build(name, &at, conditions, r.delay, r.abort)?);
        }
        if config.delay.is_some() || config.abort.is_some() {
            rules.push(Rule::build(
                "default".into(),
                "",
                Conditions::default(),
                config.delay,
                config.abort,
            )?);
        }
        if rules.is_empty() {
            return Err("needs `rules` or a top-level `delay`/`abort`".into());
        }
        Ok(Arc::new(Fault { rules }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaproxy_core::Metadata;
    use metaproxy_core::message::MessageKind;
    use std::time::Instant;

    const CTX: FilterContext<'static> = FilterContext {
        listener: "test",
        protocol: "dubbo",
        route: None,
    };

    fn request(pairs: &[(&str, &str)]) -> RequestContext {
        let md: Metadata = pairs.iter().copied().collect();
        RequestContext::new("dubbo", MessageKind::Request, md, Arc::new(Metadata::new()))
    }

    fn build(config: serde_json::Value) -> Arc<dyn Filter> {
        FaultFactory.build(&config, &CTX).unwrap()
    }

    #[tokio::test]
    async fn delay_only_for_matching_requests() {
        let f = build(serde_json::json!({
            "rules": [{"match": [{"key": "x-fault", "exact": "delay"}], "delay": {"fixed": "50ms"}}]
        }));
        let start = Instant::now();
        assert!(matches!(
            f.on_request(&mut request(&[("x-fault", "delay")])).await,
            FilterAction::Continue
        ));
        let slow = start.elapsed();
        assert!(slow >= Duration::from_millis(50), "{slow:?}");
        let start = Instant::now();
        assert!(matches!(
            f.on_request(&mut request(&[])).await,
            FilterAction::Continue
        ));
        assert!(
            start.elapsed() < Duration::from_millis(40),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn abort_by_kind_or_status_and_percentage() {
        let f = build(serde_json::json!({
            "rules": [
                {"name": "deny", "match": [{"key": "who", "exact": "eve"}],
                 "abort": {"error": "permission_denied"}},
                {"name": "flaky", "match": [{"key": "who", "exact": "bob"}],
                 "abort": {"http_status": 503, "percentage": 50}}
            ],
            "abort": {"error": "over_limit", "http_status": 429, "percentage": 0}
        }));
        match f.on_request(&mut request(&[("who", "eve")])).await {
            FilterAction::Reply(e) => {
                assert_eq!(e.kind, ErrorKind::PermissionDenied);
                assert_eq!(e.reply_status, None);
                assert_eq!(e.message, "fault injected by rule `deny`");
            }
            other => panic!("{other:?}"),
        }
        let mut aborted = 0;
        for _ in 0..2000 {
            if let FilterAction::Reply(e) = f.on_request(&mut request(&[("who", "bob")])).await {
                assert_eq!(
                    (e.kind, e.reply_status),
                    (ErrorKind::NoHealthyUpstream, Some(503))
                );
                aborted += 1;
            }
        }
        // Binomial(2000, 0.5): sd ≈ 22; ±8 sd.
        assert!((820..=1180).contains(&aborted), "{aborted}");
        for _ in 0..200 {
            assert!(matches!(
                f.on_request(&mut request(&[])).await,
                FilterAction::Continue
            ));
        }
    }

    #[test]
    fn config_errors() {
        for (config, want) in [
            (serde_json::json!({}), "needs `rules`"),
            (
                serde_json::json!({"rules": [{"name": "r"}]}),
                "`r` needs `delay`, `abort`",
            ),
            (serde_json::json!({"delay": {"fixed": "5"}}), "needs a unit"),
            (
                serde_json::json!({"delay": {"fixed": "5ms", "percentage": 101}}),
                "between 0 and 100",
            ),
            (
                serde_json::json!({"abort": {"percentage": 1}}),
                "needs `error`, `http_status`",
            ),
            (
                serde_json::json!({"abort": {"error": "nope"}}),
                "unknown variant",
            ),
            (
                serde_json::json!({"abort": {"http_status": 99}}),
                "not in 200..=599",
            ),
        ] {
            let Err(err) = FaultFactory.build(&config, &CTX) else {
                panic!("{config} must be refused");
            };
            assert!(err.to_string().contains(want), "{config}: {err}");
        }
    }
}
