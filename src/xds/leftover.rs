//! What a resource sets that the proxy did not take: a field it cannot
//! honour is refused (NACKed), never silently ignored.
//!
//! A translator clears, on a copy, every field it carried over; whatever
//! is still set is named here. A message with nothing set encodes to no
//! bytes (proto3), which is the cheap check every resource takes; only a
//! refusal needs names, and prost messages have no reflection, so those
//! come from the `Debug` form, compared field by field with the default.

use std::fmt::Debug;

/// The top-level fields of `message` whose value differs from the default.
pub fn set_fields<M: Debug + Default>(message: &M) -> Vec<String> {
    let set = fields(&format!("{message:?}"));
    let default = fields(&format!("{:?}", M::default()));
    set.into_iter()
        .filter(|(name, value)| {
            default
                .iter()
                .find(|(n, _)| n == name)
                .is_none_or(|(_, v)| v != value)
        })
        .map(|(name, _)| name)
        .collect()
}

/// Refuses `message` when anything in it is still set: `what` names the
/// resource in the error.
pub fn refuse_rest<M: prost::Message + Debug + Default>(
    what: &str,
    message: &M,
) -> Result<(), String> {
    if message.encoded_len() == 0 {
        return Ok(());
    }
    let rest = set_fields(message);
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {} not supported",
            rest.iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
                + if rest.len() == 1 { " is" } else { " are" }
        ))
    }
}

/// The `name: value` pairs of a `Name { name: value, ... }` debug text
/// (nesting and string literals respected).
fn fields(text: &str) -> Vec<(String, String)> {
    let Some(open) = text.find('{') else {
        return Vec::new();
    };
    let body = text[open + 1..].trim_end().strip_suffix('}').unwrap_or("");
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    let bytes = body.as_bytes();
    let mut push = |piece: &str| {
        if let Some((name, value)) = piece.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    };
    for (i, b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' | b'(' => depth += 1,
            b'}' | b']' | b')' => depth -= 1,
            b',' if depth == 0 => {
                push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    push(&body[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)] // read through Debug only
    #[derive(Debug, Default, Clone)]
    struct Inner {
        a: u32,
    }

    #[allow(dead_code)]
    #[derive(Debug, Default, Clone)]
    struct Msg {
        name: String,
        inner: Option<Inner>,
        list: Vec<u32>,
        text: String,
    }

    #[test]
    fn only_the_fields_set_are_named() {
        let m = Msg {
            name: String::new(),
            inner: Some(Inner { a: 1 }),
            list: vec![1, 2],
            text: "a, b: {c}".into(),
        };
        assert_eq!(set_fields(&m), ["inner", "list", "text"]);
        assert!(set_fields(&Msg::default()).is_empty());
        let mut c = envoy_types::pb::envoy::config::cluster::v3::Cluster::default();
        assert!(refuse_rest("cluster `c`", &c).is_ok());
        c.alt_stat_name = "x".into();
        c.close_connections_on_host_health_failure = true;
        let e = refuse_rest("cluster `c`", &c).unwrap_err();
        assert_eq!(
            e,
            "cluster `c`: `alt_stat_name`, `close_connections_on_host_health_failure` are not supported"
        );
    }
}
