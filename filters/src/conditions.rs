//! Metadata conditions in filter configs, written exactly like route `match`
//! entries (core's [`MatchConfig`]) and compiled by core's own builder, so
//! filters and routes match the same way. Only the protocol-specific part lives here: HTTP keys are
//! lower-cased, as the HTTP codec stores header names.

use metaproxy_core::config::MatchConfig;
use metaproxy_core::filter::FilterContext;
use metaproxy_core::metadata::MetadataView;
use metaproxy_core::router::{Condition, ConditionError};

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

/// Compiles one condition for the listener of `context`; the error names the key and what is wrong.
pub(crate) fn compile(
    spec: &MatchConfig,
    context: &FilterContext<'_>,
) -> Result<Condition, ConditionError> {
    spec.compile(|k| metadata_key(k, context))
}

/// A full-match regex; the error names the pattern and the reason.
pub(crate) fn compile_regex(pattern: &str) -> Result<regex::Regex, ConditionError> {
    Condition::compile_regex_checked(pattern)
}

/// Conditions that must all hold (an empty list always holds).
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions(Vec<Condition>);

impl Conditions {
    /// Compiles every spec.
    pub(crate) fn compile(
        specs: &[MatchConfig],
        context: &FilterContext<'_>,
    ) -> Result<Self, ConditionError> {
        specs
            .iter()
            .map(|s| compile(s, context))
            .collect::<Result<Vec<_>, _>>()
            .map(Conditions)
    }

    /// Whether every condition holds for `view`.
    pub(crate) fn matches(&self, view: &impl MetadataView) -> bool {
        Condition::all(&self.0, view)
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

    fn spec(json: serde_json::Value) -> MatchConfig {
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
        let anchored = compile(
            &spec(serde_json::json!({"key": "user", "regex": "u-4"})),
            &dubbo,
        )
        .unwrap();
        assert!(!anchored.matches(&m), "regexes match the whole value");
        assert!(Conditions::default().matches(&Metadata::new()));
    }

    #[test]
    fn http_keys_are_lower_cased_and_errors_name_the_key() {
        let c = compile(
            &spec(serde_json::json!({"key": "X-User", "prefix": "a"})),
            &ctx("http"),
        )
        .unwrap();
        assert_eq!(c.key, "x-user");
        let c = compile(
            &spec(serde_json::json!({"key": "X-User", "prefix": "a"})),
            &ctx("dubbo"),
        )
        .unwrap();
        assert_eq!(c.key, "X-User");
        let err = compile(
            &spec(serde_json::json!({"key": "k", "exact": "a", "prefix": "b"})),
            &ctx("dubbo"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`k` needs exactly one"), "{err}");
        let err = compile(
            &spec(serde_json::json!({"key": "k", "regex": "("})),
            &ctx("dubbo"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("bad regex `(`"), "{err}");
    }
}
