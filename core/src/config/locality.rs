//! Zone-aware routing: checks a cluster's `locality` against its endpoints'
//! `zone`, `priority` and `drain`, and works out where each endpoint sits:
//! its labels (the zone is the `zone` label), its priority level and whether
//! it takes traffic.
//!
//! Rules (docs/traffic.md, "Zones"):
//! - `zone: z` on an endpoint is the label `zone: z`; a different `zone`
//!   label on the same endpoint is an error.
//! - Without `locality`, priorities are the endpoints' `priority` (default 0)
//!   and zones are plain labels.
//! - With `locality: { zones: [a, b] }`, zone `a` is priority 0, `b` is 1
//!   and every other endpoint (another zone, or none) comes last. An explicit
//!   `priority` is then an error: one source of truth per cluster.
//! - A zone named in `zones` or `drain` that no endpoint is in is an error
//!   (a typo would otherwise route silently).
//! - Drained endpoints (`drain: true`, or a zone in `locality.drain`) stay
//!   in the cluster but take no traffic.

use std::collections::{BTreeMap, HashSet};

use super::load::ErrorSink;
use super::model::ClusterConfig;

/// The label holding an endpoint's zone (see `cluster::endpoint::ZONE_LABEL`).
const ZONE: &str = "zone";

/// Where one configured endpoint sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Its labels, with `zone` when it has one.
    pub labels: BTreeMap<String, String>,
    /// Its priority level (0 first).
    pub priority: u32,
    /// Whether it is out of load balancing.
    pub drained: bool,
}

/// Places every endpoint of `c`, in config order, recording problems in `sink`.
pub fn place_endpoints(sink: &mut ErrorSink, c: &ClusterConfig) -> Vec<Placement> {
    let mut out = Vec::with_capacity(c.endpoints.len());
    for e in &c.endpoints {
        let ep = &e.value;
        let mut labels = ep.labels.clone();
        if let Some(zone) = &ep.zone {
            if zone.value.is_empty() {
                sink.on(zone, "`zone` must not be empty");
            }
            match labels.get(ZONE) {
                Some(label) if *label != zone.value => sink.on(
                    zone,
                    format!(
                        "`zone: {}` disagrees with the label `zone: {label}`; keep one",
                        zone.value
                    ),
                ),
                _ => {
                    labels.insert(ZONE.to_string(), zone.value.clone());
                }
            }
        }
        out.push(Placement {
            labels,
            priority: ep.priority.as_ref().map_or(0, |p| p.value),
            drained: ep.drain,
        });
    }
    let Some(locality) = &c.locality else {
        return out;
    };
    let l = &locality.value;
    if l.zones.is_empty() {
        sink.on(
            locality,
            "`locality.zones` needs at least one zone (the preferred one first)",
        );
    }
    let present: HashSet<&str> = out
        .iter()
        .filter_map(|p| p.labels.get(ZONE).map(String::as_str))
        .collect();
    let mut seen = HashSet::new();
    for z in &l.zones {
        if !seen.insert(z.value.as_str()) {
            sink.on(z, format!("zone `{}` is listed twice", z.value));
        } else if !present.contains(z.value.as_str()) {
            sink.on(z, format!("no endpoint is in zone `{}`", z.value));
        }
    }
    for z in &l.drain {
        if !present.contains(z.value.as_str()) {
            sink.on(
                z,
                format!("cannot drain zone `{}`: no endpoint is in it", z.value),
            );
        }
    }
    for (e, placement) in c.endpoints.iter().zip(out.iter_mut()) {
        if let Some(p) = &e.value.priority {
            sink.on(
                p,
                "`priority` cannot be combined with the cluster's `locality`: the zone order sets priorities",
            );
        }
        let zone = placement.labels.get(ZONE).map(String::as_str);
        placement.priority = zone
            .and_then(|z| l.zones.iter().position(|lz| lz.value == z))
            .unwrap_or(l.zones.len()) as u32;
        if zone.is_some_and(|z| l.drain.iter().any(|d| d.value == z)) {
            placement.drained = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn place(clusters: &str) -> Result<Vec<Placement>, Vec<String>> {
        let text = format!("listeners: []\nclusters:\n{clusters}");
        let loaded = parse_str(&text, "t.yaml").map_err(|e| vec![e.to_string()])?;
        let mut sink = ErrorSink::new("t.yaml");
        let placed = place_endpoints(&mut sink, &loaded.config.clusters[0].value);
        sink.finish()
            .map(|_| placed)
            .map_err(|e| e.0.iter().map(|e| e.to_string()).collect())
    }

    fn priorities(p: &[Placement]) -> Vec<(u32, bool)> {
        p.iter().map(|p| (p.priority, p.drained)).collect()
    }

    #[test]
    fn zone_order_sets_priorities_and_others_come_last() {
        let p = place(
            r#"  - name: c
    protocol: dubbo
    locality: { zones: [zone-b, zone-a] }
    endpoints:
      - { address: "127.0.0.1:1", zone: zone-a }
      - { address: "127.0.0.1:2", zone: zone-b }
      - { address: "127.0.0.1:3", labels: { zone: zone-a } }
      - { address: "127.0.0.1:4", zone: zone-c }
      - { address: "127.0.0.1:5" }
"#,
        )
        .unwrap();
        assert_eq!(
            priorities(&p),
            [(1, false), (0, false), (1, false), (2, false), (2, false)]
        );
        assert_eq!(p[0].labels.get("zone").map(String::as_str), Some("zone-a"));
        assert!(!p[4].labels.contains_key("zone"));
    }

    #[test]
    fn draining_a_zone_or_an_endpoint() {
        let p = place(
            r#"  - name: c
    protocol: dubbo
    locality: { zones: [zone-a, zone-b], drain: [zone-a] }
    endpoints:
      - { address: "127.0.0.1:1", zone: zone-a }
      - { address: "127.0.0.1:2", zone: zone-b }
      - { address: "127.0.0.1:3", zone: zone-b, drain: true }
"#,
        )
        .unwrap();
        assert_eq!(priorities(&p), [(0, true), (1, false), (1, true)]);
        // Without locality: explicit priorities, zones as labels, drain per endpoint.
        let p = place(
            r#"  - name: c
    protocol: dubbo
    endpoints:
      - { address: "127.0.0.1:1", zone: zone-a, priority: 3 }
      - { address: "127.0.0.1:2", drain: true }
"#,
        )
        .unwrap();
        assert_eq!(priorities(&p), [(3, false), (0, true)]);
    }

    #[test]
    fn bad_combinations_are_located_errors() {
        let errors = place(
            r#"  - name: c
    protocol: dubbo
    locality: { zones: [zone-a, zone-a, zone-x], drain: [zone-y] }
    endpoints:
      - { address: "127.0.0.1:1", zone: zone-a, priority: 1 }
      - { address: "127.0.0.1:2", zone: zone-b, labels: { zone: zone-c } }
"#,
        )
        .unwrap_err();
        let want = [
            "t.yaml:8:41: `zone: zone-b` disagrees with the label `zone: zone-c`",
            "t.yaml:5:33: zone `zone-a` is listed twice",
            "t.yaml:5:41: no endpoint is in zone `zone-x`",
            "t.yaml:5:58: cannot drain zone `zone-y`",
            "t.yaml:7:59: `priority` cannot be combined with the cluster's `locality`",
        ];
        assert_eq!(errors.len(), want.len(), "{errors:#?}");
        for (got, want) in errors.iter().zip(want) {
            assert!(got.starts_with(want), "{got}\n  wanted {want}");
        }
        let errors = place(
            r#"  - name: c
    protocol: dubbo
    locality: { zones: [] }
    endpoints: [ { address: "127.0.0.1:1", zone: "" } ]
"#,
        )
        .unwrap_err();
        assert!(errors[0].contains("`zone` must not be empty"), "{errors:?}");
        assert!(errors[1].starts_with("t.yaml:5:15: `locality.zones` needs at least one zone"));
    }
}
