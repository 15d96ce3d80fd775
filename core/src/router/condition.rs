//! One match condition on a metadata key.

use regex::Regex;

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
