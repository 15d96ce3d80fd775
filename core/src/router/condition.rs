//! One match condition on a metadata key, compiled from the one config shape
//! it is written in ([`MatchConfig`]: `{ key, exact | prefix | suffix |
//! regex | present, invert }`), by routes and filters alike.

use regex::Regex;

use crate::config::MatchConfig;
use crate::metadata::MetadataView;

/// How a value is compared.
#[derive(Debug, Clone)]
pub enum MatchOp {
    /// Equals.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Ends with.
    Suffix(String),
    /// The whole value matches (anchored at both ends).
    Regex(Regex),
    /// The key is present (`true`) or absent (`false`).
    Present(bool),
}

/// `key` compared by `op`, optionally inverted.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The metadata key.
    pub key: String,
    /// The comparison.
    pub op: MatchOp,
    /// Negate the result.
    pub invert: bool,
}

impl Condition {
    /// Whether the condition holds for `view`.
    pub fn matches(&self, view: &impl MetadataView) -> bool {
        let value = view.lookup(&self.key);
        let hit = match (&self.op, value) {
            (MatchOp::Present(want), v) => v.is_some() == *want,
            (_, None) => false,
            (MatchOp::Exact(s), Some(v)) => v == s,
            (MatchOp::Prefix(s), Some(v)) => v.starts_with(s.as_str()),
            (MatchOp::Suffix(s), Some(v)) => v.ends_with(s.as_str()),
            (MatchOp::Regex(re), Some(v)) => re.is_match(v),
        };
        hit != self.invert
    }

    /// Compiles a full-match regex (`^(?:...)$`).
    pub fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
        Regex::new(&format!("^(?:{pattern})$"))
    }

    /// A short description for logs and route explanations.
    pub fn describe(&self) -> String {
        let op = match &self.op {
            MatchOp::Exact(s) => format!("== {s:?}"),
            MatchOp::Prefix(s) => format!("starts with {s:?}"),
            MatchOp::Suffix(s) => format!("ends with {s:?}"),
            MatchOp::Regex(r) => format!("matches /{}/", r.as_str()),
            MatchOp::Present(true) => "is present".to_string(),
            MatchOp::Present(false) => "is absent".to_string(),
        };
        if self.invert {
            format!("not ({} {op})", self.key)
        } else {
            format!("{} {op}", self.key)
        }
    }
}

/// Why a condition written in config does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// Not exactly one of the operators was given.
    #[error("condition on `{key}` needs exactly one of exact, prefix, suffix, regex, present")]
    Operators {
        /// The condition's key.
        key: String,
    },
    /// The regular expression does not parse.
    #[error("bad regex `{pattern}`: {why}")]
    Regex {
        /// The pattern as written.
        pattern: String,
        /// The parser's reason (its last line).
        why: String,
    },
}

impl Condition {
    /// [`Condition::compile_regex`] with the error reduced to its last
    /// (useful) line, naming the pattern.
    pub fn compile_regex_checked(pattern: &str) -> Result<Regex, ConditionError> {
        Self::compile_regex(pattern).map_err(|e| ConditionError::Regex {
            pattern: pattern.to_string(),
            why: e
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string(),
        })
    }

    /// Whether every condition holds for `view` (an empty list always holds).
    pub fn all(conditions: &[Condition], view: &impl MetadataView) -> bool {
        conditions.iter().all(|c| c.matches(view))
    }
}

impl MatchConfig {
    /// How many of the operators are given (exactly one is valid).
    pub fn operator_count(&self) -> usize {
        [
            self.exact.is_some(),
            self.prefix.is_some(),
            self.suffix.is_some(),
            self.regex.is_some(),
            self.present.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }

    /// Compiles the condition. `key_of` turns the key as written into the
    /// key as the listener's codec stores it (HTTP header names are
    /// lower-case); core knows no protocol, so the caller decides.
    pub fn compile(
        &self,
        key_of: impl FnOnce(&str) -> String,
    ) -> Result<Condition, ConditionError> {
        if self.operator_count() != 1 {
            return Err(ConditionError::Operators {
                key: self.key.clone(),
            });
        }
        let op = if let Some(v) = &self.exact {
            MatchOp::Exact(v.clone())
        } else if let Some(v) = &self.prefix {
            MatchOp::Prefix(v.clone())
        } else if let Some(v) = &self.suffix {
            MatchOp::Suffix(v.clone())
        } else if let Some(v) = &self.regex {
            MatchOp::Regex(Condition::compile_regex_checked(&v.value)?)
        } else {
            MatchOp::Present(self.present.unwrap_or(true))
        };
        Ok(Condition {
            key: key_of(&self.key),
            op,
            invert: self.invert,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Metadata;

    fn cond(op: MatchOp, invert: bool) -> Condition {
        Condition {
            key: "batchJob".into(),
            op,
            invert,
        }
    }

    #[test]
    fn specs_compile_and_errors_name_the_key() {
        let spec =
            |json: serde_json::Value| -> MatchConfig { serde_json::from_value(json).unwrap() };
        let c = spec(serde_json::json!({"key": "X-User", "prefix": "a", "invert": true}))
            .compile(|k| k.to_ascii_lowercase())
            .unwrap();
        assert_eq!(c.key, "x-user");
        assert!(c.invert && matches!(c.op, MatchOp::Prefix(ref p) if p == "a"));
        let c = spec(serde_json::json!({"key": "k"})).compile(str::to_string);
        assert_eq!(
            c.unwrap_err().to_string(),
            "condition on `k` needs exactly one of exact, prefix, suffix, regex, present"
        );
        let err = spec(serde_json::json!({"key": "k", "regex": "("}))
            .compile(str::to_string)
            .unwrap_err();
        assert!(err.to_string().starts_with("bad regex `(`: "), "{err}");
        assert!(
            serde_json::from_value::<MatchConfig>(serde_json::json!({"key": "k", "exakt": "a"}))
                .is_err()
        );
    }

    #[test]
    fn operators_and_invert() {
        let m: Metadata = [("batchJob", "true-ish")].into_iter().collect();
        let empty = Metadata::new();
        assert!(cond(MatchOp::Exact("true-ish".into()), false).matches(&m));
        assert!(!cond(MatchOp::Exact("true".into()), false).matches(&m));
        assert!(cond(MatchOp::Prefix("true".into()), false).matches(&m));
        assert!(cond(MatchOp::Suffix("-ish".into()), false).matches(&m));
        let re = Condition::compile_regex("tr.e").unwrap();
        assert!(
            !cond(MatchOp::Regex(re.clone()), false).matches(&m),
            "regex is anchored"
        );
        let re2 = Condition::compile_regex("tr.e-.*").unwrap();
        assert!(cond(MatchOp::Regex(re2), false).matches(&m));
        assert!(cond(MatchOp::Present(true), false).matches(&m));
        assert!(!cond(MatchOp::Present(true), false).matches(&empty));
        assert!(cond(MatchOp::Present(false), false).matches(&empty));
        assert!(cond(MatchOp::Exact("x".into()), true).matches(&m));
        assert!(
            cond(MatchOp::Exact("x".into()), true).matches(&empty),
            "absent key inverted holds"
        );
    }
}
