//! The endpoint list that the `file` and `http` sources read: JSON or YAML,
//! either a list or `{ endpoints: [...] }`, each entry
//! `{ address: "ip:port", labels: {...}, weight: 1 }`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use metaproxy_core::discovery::DiscoveredEndpoint;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(untagged)]
enum ListDoc {
    Bare(Vec<Entry>),
    Wrapped { endpoints: Vec<Entry> },
}

#[derive(Deserialize)]
struct Entry {
    address: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    weight: Option<u32>,
}

/// Why a list is refused as a whole (a bad entry is skipped instead).
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// Neither JSON nor YAML of the expected shape.
    #[error("not an endpoint list: {0}")]
    Shape(String),
}

/// Parses a list; entries whose address is not `ip:port` are skipped and
/// counted in the second value.
pub fn parse_endpoint_list(text: &str) -> Result<(Vec<DiscoveredEndpoint>, usize), ListError> {
    let doc: ListDoc = match serde_json::from_str(text) {
        Ok(d) => d,
        Err(json) => serde_saphyr::from_str(text)
            .map_err(|yaml| ListError::Shape(format!("as JSON: {json}; as YAML: {yaml}")))?,
    };
    let entries = match doc {
        ListDoc::Bare(e) | ListDoc::Wrapped { endpoints: e } => e,
    };
    let mut out = Vec::with_capacity(entries.len());
    let mut skipped = 0;
    for e in entries {
        match e.address.parse::<SocketAddr>() {
            Ok(address) if address.port() != 0 => out.push(DiscoveredEndpoint {
                address,
                labels: e.labels.into(),
                weight: e.weight.unwrap_or(1).max(1),
                priority: 0,
            }),
            _ => skipped += 1,
        }
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_yaml_bare_and_wrapped() {
        let json = r#"{"endpoints":[{"address":"127.0.0.1:1","labels":{"v":"1"},"weight":3},{"address":"nope"}]}"#;
        let (eps, skipped) = parse_endpoint_list(json).unwrap();
        assert_eq!((eps.len(), skipped), (1, 1));
        assert_eq!(eps[0].weight, 3);
        assert_eq!(eps[0].labels["v"], "1");
        let yaml = "- address: 127.0.0.1:2\n- address: \"[::1]:3\"\n  labels: { zone: a }\n";
        let (eps, skipped) = parse_endpoint_list(yaml).unwrap();
        assert_eq!((eps.len(), skipped), (2, 0));
        assert!(parse_endpoint_list("{ not: [a list] }").is_err());
        assert!(parse_endpoint_list("\u{0}\u{1}").is_err());
    }
}
