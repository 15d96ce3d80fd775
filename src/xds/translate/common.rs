//! Pieces every translator needs: addresses, durations, label metadata,
//! string and header matchers, header mutations.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{
    Address, ConfigSource, HeaderValueOption, Metadata, SocketAddress, address, config_source,
    socket_address,
};
use envoy_types::pb::envoy::config::route::v3::{HeaderMatcher, header_matcher};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::{Duration, Struct, value};
use serde_json::{Value, json};

/// The filter-metadata namespace whose keys are endpoint labels (Envoy's
/// subset load balancer reads the same one).
pub const LB_NAMESPACE: &str = "envoy.lb";

/// Checks that a config source (an HCM's `rds`, a cluster's `eds_config`)
/// means this proxy's own control plane: `ads`, `self`, or an
/// `api_config_source` (REST, gRPC): the proxy follows one control plane,
/// which serves every type over the transport its `xds:` section names,
/// so the source's own cluster names and refresh delay are not used. A
/// file path, or no source, is refused.
pub fn control_plane_source(what: &str, source: Option<&ConfigSource>) -> Result<(), String> {
    use config_source::ConfigSourceSpecifier as S;
    match source.and_then(|s| s.config_source_specifier.as_ref()) {
        Some(S::Ads(_) | S::Self_(_) | S::ApiConfigSource(_)) => Ok(()),
        _ => Err(format!(
            "{what}: must come from the control plane (`ads: {{}}`, `self: {{}}` or an `api_config_source`)"
        )),
    }
}

/// A route timeout; Envoy's 0 disables it: the longest the proxy takes.
pub fn route_timeout(t: &Duration) -> Value {
    if t.seconds == 0 && t.nanos == 0 {
        json!("365d")
    } else {
        json!(duration(t))
    }
}

/// A retry back-off (`base_interval`, `max_interval`) as `retries.backoff`.
pub fn backoff(base: Option<&Duration>, max: Option<&Duration>) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(base) = base {
        out.insert("base".into(), json!(duration(base)));
    }
    if let Some(max) = max {
        out.insert("max".into(), json!(duration(max)));
    }
    Value::Object(out)
}

/// `ip:port` of a socket address (no names: the proxy binds and connects
/// to addresses).
pub fn socket(what: &str, a: Option<&Address>) -> Result<String, String> {
    let Some(address::Address::SocketAddress(s)) = a.and_then(|a| a.address.as_ref()) else {
        return Err(format!("{what}: only socket addresses are supported"));
    };
    socket_of(what, s)
}

/// `ip:port` of one socket address.
pub fn socket_of(what: &str, s: &SocketAddress) -> Result<String, String> {
    let Some(socket_address::PortSpecifier::PortValue(port)) = s.port_specifier else {
        return Err(format!("{what}: a numeric `port_value` is needed"));
    };
    if !s.resolver_name.is_empty() || s.protocol != 0 || s.ipv4_compat {
        return Err(format!(
            "{what}: only TCP addresses without a custom resolver are supported"
        ));
    }
    let ip: std::net::IpAddr = s
        .address
        .parse()
        .map_err(|_| format!("{what}: `{}` is not an IP address", s.address))?;
    Ok(std::net::SocketAddr::new(ip, port as u16).to_string())
}

/// A protobuf duration as config text (`1500ms`).
pub fn duration(d: &Duration) -> String {
    let millis = d.seconds.max(0) as u128 * 1000 + (d.nanos.max(0) as u128) / 1_000_000;
    format!("{millis}ms")
}

/// The labels in a resource's `envoy.lb` filter metadata (strings,
/// numbers and booleans as text; nested values refused).
pub fn labels(what: &str, m: Option<&Metadata>) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let Some(m) = m else {
        return Ok(out);
    };
    if m.filter_metadata.keys().any(|k| k != LB_NAMESPACE) || !m.typed_filter_metadata.is_empty() {
        return Err(format!(
            "{what}: only `{LB_NAMESPACE}` filter metadata is supported"
        ));
    }
    if let Some(s) = m.filter_metadata.get(LB_NAMESPACE) {
        out = struct_labels(what, s)?;
    }
    Ok(out)
}

/// A flat struct's entries as label text.
pub fn struct_labels(what: &str, s: &Struct) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in &s.fields {
        let text = match &v.kind {
            Some(value::Kind::StringValue(s)) => s.clone(),
            Some(value::Kind::BoolValue(b)) => b.to_string(),
            Some(value::Kind::NumberValue(n)) if n.fract() == 0.0 => format!("{}", *n as i64),
            Some(value::Kind::NumberValue(n)) => n.to_string(),
            _ => {
                return Err(format!(
                    "{what}: label `{k}` must be a string, number or bool"
                ));
            }
        };
        out.insert(k.clone(), text);
    }
    Ok(out)
}

/// A condition on `key` from a string matcher.
pub fn string_condition(what: &str, key: &str, m: &StringMatcher) -> Result<Value, String> {
    if m.ignore_case {
        return Err(format!("{what}: `ignore_case` matching is not supported"));
    }
    let (op, value) = match &m.match_pattern {
        Some(string_matcher::MatchPattern::Exact(v)) => ("exact", v.clone()),
        Some(string_matcher::MatchPattern::Prefix(v)) => ("prefix", v.clone()),
        Some(string_matcher::MatchPattern::Suffix(v)) => ("suffix", v.clone()),
        Some(string_matcher::MatchPattern::SafeRegex(r)) => ("regex", r.regex.clone()),
        Some(string_matcher::MatchPattern::Contains(v)) => {
            ("regex", format!(".*{}.*", regex_escape(v)))
        }
        _ => return Err(format!("{what}: unsupported string matcher")),
    };
    Ok(json!({ "key": key, op: value }))
}

/// A condition from a header matcher (`key` lower-cased by the caller when
/// the protocol's keys are case-insensitive).
pub fn header_condition(what: &str, key: &str, h: &HeaderMatcher) -> Result<Value, String> {
    use header_matcher::HeaderMatchSpecifier as S;
    if h.treat_missing_header_as_empty {
        return Err(format!(
            "{what}: header `{}`: `treat_missing_header_as_empty` is not supported",
            h.name
        ));
    }
    let mut c = match &h.header_match_specifier {
        None => json!({ "key": key, "present": true }),
        Some(S::PresentMatch(p)) => json!({ "key": key, "present": p }),
        Some(S::ExactMatch(v)) => json!({ "key": key, "exact": v }),
        Some(S::PrefixMatch(v)) => json!({ "key": key, "prefix": v }),
        Some(S::SuffixMatch(v)) => json!({ "key": key, "suffix": v }),
        Some(S::SafeRegexMatch(r)) => json!({ "key": key, "regex": r.regex }),
        Some(S::ContainsMatch(v)) => {
            json!({ "key": key, "regex": format!(".*{}.*", regex_escape(v)) })
        }
        Some(S::StringMatch(m)) => string_condition(what, key, m)?,
        Some(_) => {
            return Err(format!(
                "{what}: header `{}`: unsupported header matcher",
                h.name
            ));
        }
    };
    if h.invert_match {
        c["invert"] = json!(true);
    }
    Ok(c)
}

/// `set` / `remove` header operations from Envoy's header mutations
/// (`append` is refused: the proxy replaces).
pub fn header_ops(
    what: &str,
    add: &[HeaderValueOption],
    remove: &[String],
    lower: bool,
) -> Result<Option<Value>, String> {
    if add.is_empty() && remove.is_empty() {
        return Ok(None);
    }
    let key = |k: &str| {
        if lower {
            k.to_ascii_lowercase()
        } else {
            k.to_string()
        }
    };
    let mut set = serde_json::Map::new();
    for o in add {
        let Some(h) = &o.header else { continue };
        // OVERWRITE_IF_EXISTS_OR_ADD (2) is what `set` does; the default,
        // APPEND_IF_EXISTS_OR_ADD (0), appends: refused unless the legacy
        // `append: false` says otherwise.
        let appends = match o.append.as_ref() {
            Some(b) => b.value,
            None => o.append_action != 2,
        };
        if appends || o.keep_empty_value || !h.raw_value.is_empty() {
            return Err(format!(
                "{what}: header `{}`: only replacing a header (append_action: OVERWRITE_IF_EXISTS_OR_ADD) is supported",
                h.key
            ));
        }
        set.insert(key(&h.key), json!(h.value));
    }
    let remove: Vec<String> = remove.iter().map(|k| key(k)).collect();
    Ok(Some(json!({ "set": set, "remove": remove })))
}

/// `text` with every regex metacharacter escaped.
pub(crate) fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_escapes() {
        assert_eq!(
            duration(&Duration {
                seconds: 1,
                nanos: 500_000_000
            }),
            "1500ms"
        );
        assert_eq!(regex_escape("a.b*"), "a\\.b\\*");
    }
}
