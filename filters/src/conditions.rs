//! Metadata conditions in filter configs, written exactly like route `match`
//! entries (`{ key, exact | prefix | suffix | regex | present, invert }`) and
//! compiled to the router's own [`Condition`] so filters and routes match the
//! same way.

use metaproxy_core::filter::FilterContext;
use metaproxy_core::metadata::MetadataView;
use metaproxy_core::router::{Condition, MatchOp};
use serde::Deserialize;

/// One condition as written in config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchSpec {
    key: String,
    #[serde(default)]
    exact: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    present: Option<bool>,
    #[serde(default)]
    invert: bool,
}

/// Whether the listener's metadata keys are HTTP header names (stored lower-case).
pub(crate) fn is_http(context: &FilterContext<'_>) -> bool {
    context.protocol.eq_ignore_ascii_case("http")
}

/// A metadata key as the listener's codec stores it: HTTP header names are lower-case.
pub(crate) fn metadata_key(key: &str, context: &FilterContext<'_>) -> String {
    if is_http(context) {
        key.to_ascii_lowercase()
    } else {
        key.to_string()
    }
}

impl MatchSpec {
    /// Compiles the condition; the error names the key and what is wrong.
    pub(crate) fn compile(&self, context: &FilterContext<'_>) -> Result<Condition, String> {
        let given = [
            self.exact.is_some(),
            self.prefix.is_some(),
            self.suffix.is_some(),
            self.regex.is_some(),
            self.present.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return Err(format!(
                "condition on `{}` needs exactly one of exact, prefix, suffix, regex, present",
                self.key
            ));
        }
        let op = if let Some(v) = &self.exact {
            MatchOp::Exact(v.clone())
        } else if let Some(v) = &self.prefix {
            MatchOp::Prefix(v.clone())
        } else if let Some(v) = &self.suffix {
            MatchOp::Suffix(v.clone())
        } else if let Some(v) = &self.regex {
            MatchOp::Regex(compile_regex(v)?)
        } else {
            MatchOp::Present(self.present.unwrap_or(true))
        };
        Ok(Condition {
            key: metadata_key(&self.key, context),
            op,
            invert: self.invert,
        })
    }
}

/// A full-match regex, with the error reduced to its last (useful) line.
pub(crate) fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    Condition::compile_regex(pattern).map_err(|e| {
        let text = e.to_string();
        let why = text.lines().last().unwrap_or("").trim();
        format!("bad regex `{pattern}`: {why}")
    })
}

/// Conditions that must all hold (an empty list always holds).
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions(Vec<Condition>);

impl Conditions {
    /// Compiles every spec.
    pub(crate) fn compile(
        specs: &[MatchSpec],
        context: &FilterContext<'_>,
    ) -> Result<Self, String> {
        specs
            .iter()
            .map(|s| s.compile(context))
            .collect::<Result<Vec<_>, _>>()
            .map(Conditions)
    }

    /// Whether every condition holds for `view`.
    pub(crate) fn matches(&self, view: &impl MetadataView) -> bool {
        self.0.iter().all(|c| c.matches(view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaproxy_core::Metadata;

    fn ctx(protocol: &'static str) -> FilterContext<'static> {
        FilterContext {
            listener: "l",
            protocol,
            route: None,
        }
    }

    fn spec(json: serde_json::Value) -> MatchSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn compiles_like_routes() {
        let m: Metadata = [("batchJob", "true"), ("user", "u-42")]
            .into_iter()
            .collect();
        let dubbo = ctx("dubbo");
        let c = Conditions::compile(
            &[
                spec(serde_json::json!({"key": "batchJob", "exact": "true"})),
                spec(serde_json::json!({"key": "user", "regex": "u-[0-9]+"})),
                spec(serde_json::json!({"key": "debug", "present": true, "invert": true})),
            ],
            &dubbo,
        )
        .unwrap();
        assert!(c.matches(&m));
        let anchored = spec(serde_json::json!({"key": "user", "regex": "u-4"}))
            .compile(&dubbo)
            .unwrap();
        assert!(!anchored.matches(&m), "regexes match the whole value");
        assert!(Conditions::default().matches(&Metadata::new()));
    }

    #[test]
    fn http_keys_are_lower_cased_and_errors_name_the_key() {
        let c = spec(serde_json::json!({"key": "X-User", "prefix": "a"}))
            .compile(&ctx("http"))
            .unwrap();
        assert_eq!(c.key, "x-user");
        let c = spec(serde_json::json!({"key": "X-User", "prefix": "a"}))
            .compile(&ctx("dubbo"))
            .unwrap();
        assert_eq!(c.key, "X-User");
        let err = spec(serde_json::json!({"key": "k", "exact": "a", "prefix": "b"}))
            .compile(&ctx("dubbo"))
            .unwrap_err();
        assert!(err.contains("`k` needs exactly one"), "{err}");
        let err = spec(serde_json::json!({"key": "k", "regex": "("}))
            .compile(&ctx("dubbo"))
            .unwrap_err();
        assert!(err.starts_with("bad regex `(`"), "{err}");
    }
}
