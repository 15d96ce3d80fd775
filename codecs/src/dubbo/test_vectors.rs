//! Test helper: the hessian.js vectors in `tests/vectors/hessian_vectors.json`.

use serde_json::Value;

/// The vectors file, parsed.
pub fn vectors() -> Value {
    serde_json::from_str(include_str!("../../tests/vectors/hessian_vectors.json"))
        .expect("vectors file is valid JSON")
}

/// Decodes a hex string.
pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("valid hex"))
        .collect()
}

/// The string field `key` of `v`.
pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field {key}"))
}
