//! Every field of every config struct is documented in docs/config.md.
//!
//! The field names come from the config parser itself: a map with an
//! unknown key, placed where each struct is read, is refused with serde's
//! `unknown field ..., expected one of `a`, `b`, ...` message, which lists
//! every field the struct accepts (as written in YAML, renames included).
//! A field added to a struct without a line in docs/config.md fails here.

mod common;

use metaproxy::core::config::parse_str;
use metaproxy::core::snapshot::Snapshot;

const UNKNOWN: &str = "__no_such_field__";

/// Each config struct, and a config that puts `{ __no_such_field__: 1 }` (`X`) where it is read.
const PLACES: &[(&str, &str)] = &[
    ("Config", "X"),
    ("AdminConfig", "{ admin: X }"),
    ("ListenerConfig", "{ listeners: [ X ] }"),
    ("ListenerLimits", "{ listeners: [ { limits: X } ] }"),
    ("ListenerTlsConfig", "{ listeners: [ { tls: X } ] }"),
    (
        "CertificateConfig",
        "{ listeners: [ { tls: { certificates: [ X ] } } ] }",
    ),
    (
        "VirtualHostConfig",
        "{ listeners: [ { virtual_hosts: [ X ] } ] }",
    ),
    ("RouteConfig", "{ listeners: [ { routes: [ X ] } ] }"),
    (
        "HeaderOpsConfig",
        "{ listeners: [ { routes: [ { request_headers: X } ] } ] }",
    ),
    (
        "RedirectConfig",
        "{ listeners: [ { routes: [ { route: { redirect: X } } ] } ] }",
    ),
    (
        "RewriteConfig",
        "{ listeners: [ { routes: [ { route: { rewrite: X } } ] } ] }",
    ),
    (
        "RegexRewriteConfig",
        "{ listeners: [ { routes: [ { route: { rewrite: { regex: X } } } ] } ] }",
    ),
    (
        "RouteActionConfig",
        "{ listeners: [ { routes: [ { route: X } ] } ] }",
    ),
    (
        "RetryConfig",
        "{ listeners: [ { routes: [ { route: { retries: X } } ] } ] }",
    ),
    (
        "BackoffConfig",
        "{ listeners: [ { routes: [ { route: { retries: { backoff: X } } } ] } ] }",
    ),
    (
        "MirrorConfig",
        "{ listeners: [ { routes: [ { route: { mirror: X } } ] } ] }",
    ),
    (
        "WeightedTargetConfig",
        "{ listeners: [ { routes: [ { route: { weighted: [ X ] } } ] } ] }",
    ),
    (
        "MatchConfig",
        "{ listeners: [ { routes: [ { match: [ X ] } ] } ] }",
    ),
    ("ClusterConfig", "{ clusters: [ X ] }"),
    ("EndpointConfig", "{ clusters: [ { endpoints: [ X ] } ] }"),
    ("ClusterTlsConfig", "{ clusters: [ { tls: X } ] }"),
    ("HashPolicyConfig", "{ clusters: [ { hash: [ X ] } ] }"),
    (
        "CookieConfig",
        "{ clusters: [ { hash: [ { cookie: X } ] } ] }",
    ),
    (
        "CircuitBreakerConfig",
        "{ clusters: [ { circuit_breaker: X } ] }",
    ),
    ("RetryBudgetConfig", "{ clusters: [ { retry_budget: X } ] }"),
    (
        "OutlierDetectionConfig",
        "{ clusters: [ { outlier_detection: X } ] }",
    ),
    ("LocalityConfig", "{ clusters: [ { locality: X } ] }"),
];

/// The field names after `expected` in an unknown-field message. serde
/// writes "expected one of `a`, `b`", "expected `a` or `b`" or "expected
/// `a`"; serde-saphyr prints the same list without the backticks
/// ("expected one of a, b"). Both are read.
fn expected_fields(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("expected") else {
        return Vec::new();
    };
    let list = list.lines().next().unwrap_or_default().trim();
    let list = list.strip_prefix("one of").unwrap_or(list);
    list.split(", ")
        .flat_map(|part| part.split(" or "))
        .map(|name| name.trim().trim_matches('`').to_string())
        .filter(|name| !name.is_empty() && !name.contains(' '))
        .collect()
}

/// The field names of the struct read at `place`.
fn fields_at(name: &str, place: &str) -> Vec<String> {
    let yaml = place.replace('X', &format!("{{ {UNKNOWN}: 1 }}"));
    let err = match parse_str(&yaml, "probe.yaml") {
        Ok(_) => panic!("{name}: `{yaml}` was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&format!("unknown field `{UNKNOWN}`")),
        "{name}: `{yaml}` failed otherwise: {err}"
    );
    let fields = expected_fields(&err);
    assert!(!fields.is_empty(), "{name}: no field list in: {err}");
    fields
}

#[test]
fn field_lists_are_read_from_serde_messages() {
    assert_eq!(
        expected_fields("unknown field `x`, expected one of `a`, `b`, `c`"),
        ["a", "b", "c"]
    );
    assert_eq!(
        expected_fields("unknown field `x`, expected `a` or `b`"),
        ["a", "b"]
    );
    assert_eq!(
        expected_fields("f.yaml:1:3: unknown field `x`, expected one of admin, listeners"),
        ["admin", "listeners"]
    );
    let listener = fields_at("ListenerConfig", "{ listeners: [ X ] }");
    for f in ["name", "address", "protocol", "routes", "options"] {
        assert!(listener.iter().any(|l| l == f), "{listener:?}");
    }
}

/// The fields core reads in a `health_check` section (the schedule and the
/// kind); every other field belongs to the probe and is checked by the
/// cluster's protocol, so serde cannot list them.
const HEALTH_CHECK_FIELDS: &[&str] = &[
    "interval",
    "timeout",
    "unhealthy_threshold",
    "healthy_threshold",
    "kind",
];

/// The fields a `protocol` cluster's probe of `kind` takes, from the
/// protocol's own refusal of an unknown one ("... (known: a, b)").
fn probe_fields(protocol: &str, kind: &str) -> Vec<String> {
    let yaml = format!(
        "listeners: []\nclusters:\n  - name: c\n    protocol: {protocol}\n    health_check: {{ kind: {kind}, {UNKNOWN}: 1 }}\n    endpoints: [ {{ address: \"127.0.0.1:1\" }} ]\n"
    );
    let loaded = parse_str(&yaml, "probe.yaml").unwrap();
    let err = match Snapshot::build(&loaded, &metaproxy::default_registry()) {
        Ok(_) => panic!("{protocol} {kind}: `{yaml}` was accepted"),
        Err(e) => e.to_string(),
    };
    let refusal = format!("unknown field `{UNKNOWN}` for `kind: {kind}` health checks");
    assert!(err.contains(&refusal), "{protocol} {kind}: {err}");
    let Some((_, known)) = err.split_once("(known: ") else {
        return Vec::new();
    };
    let known = known.split(')').next().unwrap_or_default();
    known.split(", ").map(str::to_string).collect()
}

#[test]
fn every_health_check_field_is_documented() {
    let doc = std::fs::read_to_string(common::repo_root().join("docs/config.md")).unwrap();
    let mut fields: Vec<String> = HEALTH_CHECK_FIELDS.iter().map(|f| f.to_string()).collect();
    for (protocol, kind) in [
        ("http", "protocol"),
        ("http", "http"),
        ("http", "grpc"),
        ("http2", "http"),
        ("thrift", "protocol"),
        ("dubbo", "protocol"),
    ] {
        let found = probe_fields(protocol, kind);
        assert!(!found.is_empty(), "{protocol} {kind}: no field list");
        fields.extend(found);
    }
    assert!(
        probe_fields("dubbo", "tcp").is_empty(),
        "`tcp` takes no field"
    );
    for f in ["path", "expected_statuses", "service", "method"] {
        assert!(fields.iter().any(|x| x == f), "{f} not found in {fields:?}");
    }
    let missing: Vec<_> = fields
        .iter()
        .filter(|f| !doc.contains(&format!("`{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "health_check fields missing from docs/config.md: {missing:?}"
    );
}

#[test]
fn every_config_field_is_documented() {
    let doc = std::fs::read_to_string(common::repo_root().join("docs/config.md")).unwrap();
    let mut missing = Vec::new();
    for (name, place) in PLACES {
        for field in fields_at(name, place) {
            if !doc.contains(&format!("`{field}`")) {
                missing.push(format!("{name}.{field}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields missing from docs/config.md (write each as `name`): {missing:?}"
    );
}
