//! `metaproxy validate`: good files pass; broken ones fail with every error
//! listed at its file, line and column.

mod common;

use common::{repo_root, validate, write_config};

/// Examples that read files made at test time (certificates): each is
/// validated by its own test, next to the files it makes.
const NEEDS_GENERATED_FILES: &[&str] = &[
    "examples/tls/config.yaml",
    "examples/discovery/https_url.yaml",
];

/// Inputs of `metaproxy import istio` (Istio's resources, not configs):
/// tests/istio_import.rs validates what they import into.
const NOT_CONFIGS: &str = "examples/istio";

/// Every YAML file under examples/ and docs/ is a valid config.
#[test]
fn shipped_examples_are_valid() {
    let mut checked = 0;
    for dir in ["examples", "docs"] {
        let mut stack = vec![repo_root().join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if !path.ends_with(NOT_CONFIGS) {
                        stack.push(path);
                    }
                } else if NEEDS_GENERATED_FILES.iter().any(|f| path.ends_with(f)) {
                    continue;
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    let (ok, out, err) = validate(&path);
                    assert!(ok, "{}: {out}{err}", path.display());
                    assert!(out.contains("OK"), "{out}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 1, "no example configs found");
}

fn expect_errors(name: &str, text: &str, expected: &[&str]) -> String {
    let path = write_config(name, text);
    let (ok, out, err) = validate(&path);
    assert!(!ok, "{name} should be rejected; stdout: {out}");
    for e in expected {
        assert!(err.contains(e), "{name}: expected `{e}` in:\n{err}");
    }
    err
}

const GOOD_CLUSTER: &str = r#"
clusters:
  - name: demo
    protocol: dubbo
    endpoints:
      - { address: 127.0.0.1:20881, labels: { version: v1 } }
    subsets: { v1: { version: v1 } }
"#;

#[test]
fn unknown_cluster_and_subset_are_located() {
    let text = format!(
        r#"listeners:
  - name: in
    address: 127.0.0.1:0
    protocol: dubbo
    routes:
      - route: {{ cluster: nope }}
      - route: {{ cluster: demo, subset: v9 }}
{GOOD_CLUSTER}"#
    );
    let err = expect_errors(
        "unknown-cluster",
        &text,
        &[
            "config.yaml:6:27: unknown cluster `nope`",
            "config.yaml:7:41: cluster `demo` has no subset `v9`",
            "2 error(s)",
        ],
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn empty_weights_and_bad_regex_are_reported_together() {
    let text = format!(
        r#"listeners:
  - name: in
    address: 127.0.0.1:0
    protocol: dubbo
    routes:
      - match: [ {{ key: method, regex: "say(" }} ]
        route: {{ cluster: demo }}
      - route:
          weighted:
            - {{ cluster: demo, weight: 0 }}
{GOOD_CLUSTER}"#
    );
    expect_errors(
        "weights-regex",
        &text,
        &[
            ":6:",
            "bad regex `say(`",
            ":9:",
            "weights of `weighted` add up to 0",
            "2 error(s)",
        ],
    );
}

#[test]
fn duplicate_names_and_bad_addresses() {
    let text = r#"listeners:
  - name: in
    address: 127.0.0.1:0
    protocol: dubbo
  - name: in
    address: not-an-address
    protocol: dubbo
clusters:
  - name: demo
    protocol: dubbo
    endpoints: [ { address: "10.0.0.300:80" } ]
  - name: demo
    protocol: dubbo
    endpoints: []
"#;
    expect_errors(
        "dupes",
        text,
        &[
            "config.yaml:5:11: duplicate listener name `in` (first defined on line 2)",
            "config.yaml:12:11: duplicate cluster name `demo` (first defined on line 9)",
            "config.yaml:6:14: listener address `not-an-address` is not an ip:port address",
            "endpoint address `10.0.0.300:80` is not an ip:port address",
        ],
    );
}

#[test]
fn unknown_fields_and_bad_durations_are_syntax_errors_with_positions() {
    expect_errors(
        "unknown-field",
        "listeners:\n  - name: in\n    adress: 127.0.0.1:0\n    protocol: dubbo\n",
        &["config.yaml:3:", "adress"],
    );
    expect_errors(
        "bad-duration",
        &format!(
            "listeners:\n  - name: in\n    address: 127.0.0.1:0\n    protocol: dubbo\n    routes:\n      - route: {{ cluster: demo, timeout: 5 }}\n{GOOD_CLUSTER}"
        ),
        &["config.yaml:6:", "needs a unit"],
    );
}

/// Thrift's options moved under `options:` (core knows no protocol): a
/// `thrift:` section on a listener or a cluster is an unknown field.
#[test]
fn the_old_thrift_section_is_an_unknown_field() {
    expect_errors(
        "old-thrift-listener",
        "listeners:\n  - name: in\n    address: 127.0.0.1:0\n    protocol: thrift\n    thrift: { transport: framed }\n",
        &["config.yaml:5:", "unknown field `thrift`", "options"],
    );
    expect_errors(
        "old-thrift-cluster",
        "clusters:\n  - name: c\n    protocol: thrift\n    thrift: { protocol: binary }\n    endpoints: [ { address: 127.0.0.1:1 } ]\n",
        &["config.yaml:4:", "unknown field `thrift`", "options"],
    );
    // The same options under `options:` are valid.
    let path = write_config(
        "new-thrift-options",
        "listeners:\n  - name: in\n    address: 127.0.0.1:0\n    protocol: thrift\n    options: { transport: framed }\n    routes: [ { route: { cluster: c } } ]\nclusters:\n  - name: c\n    protocol: thrift\n    options: { protocol: binary }\n    endpoints: [ { address: 127.0.0.1:1 } ]\n",
    );
    let (ok, out, err) = validate(&path);
    assert!(ok, "{out}{err}");
}

#[test]
fn unknown_protocol_filter_and_condition_shape() {
    let text = format!(
        r#"listeners:
  - name: in
    address: 127.0.0.1:0
    protocol: dubbbo
  - name: in2
    address: 127.0.0.1:0
    protocol: dubbo
    filters:
      - no_such_filter: {{}}
      - metadata_mutation: {{ request: {{ sett: {{}} }} }}
    routes:
      - match: [ {{ key: method }} ]
        route: {{ cluster: demo }}
      - match: [ {{ key: method, exact: a, prefix: b }} ]
        route: {{ cluster: demo }}
{GOOD_CLUSTER}"#
    );
    expect_errors(
        "protocol-filter",
        &text,
        &[
            "config.yaml:4:15: unknown protocol `dubbbo` (known: auto, declarative, dubbo",
            "config.yaml:9:9: unknown filter `no_such_filter`",
            "config.yaml:10:9: filter `metadata_mutation`: unknown field `sett`",
            "config.yaml:12:18: condition on `method` needs exactly one of",
            "config.yaml:14:18: condition on `method` needs exactly one of",
        ],
    );
}

#[test]
fn a_register_section_is_checked_where_it_is_written() {
    let text = format!(
        r#"listeners:
  - name: wild
    address: 0.0.0.0:0
    protocol: dubbo
    register:
      zookeeper: {{ servers: [127.0.0.1:2181], interfaces: [org.apache.dubbo.samples.DemoService] }}
    routes:
      - route: {{ cluster: demo }}
  - name: web
    address: 127.0.0.1:0
    protocol: http
    register:
      zookeeper: {{ servers: [127.0.0.1:2181], interfaces: [Demo] }}
    routes:
      - route: {{ cluster: demo }}
  - name: nowhere
    address: 127.0.0.2:0
    protocol: dubbo
    register: {{ eureka: {{ url: x }} }}
    routes:
      - route: {{ cluster: demo }}
{GOOD_CLUSTER}"#
    );
    expect_errors(
        "register",
        &text,
        &[
            "config.yaml:6:7: invalid `zookeeper` registration: listener `wild` binds 0.0.0.0:0: set `address`",
            "config.yaml:13:7: invalid `zookeeper` registration: a ZooKeeper (Dubbo registry) registration needs a `dubbo` or `auto` listener, not `http`",
            "config.yaml:19:15: unknown registry `eureka` (known: zookeeper)",
        ],
    );
}

#[test]
fn upgrades_are_websocket_only_and_on_http_routes() {
    let text = format!(
        r#"listeners:
  - name: web
    address: 127.0.0.1:0
    protocol: http
    routes:
      - route: {{ cluster: demo, upgrades: [websocket, h2c] }}
  - name: rpc
    address: 127.0.0.2:0
    protocol: dubbo
    routes:
      - route: {{ cluster: demo, upgrades: [websocket] }}
{GOOD_CLUSTER}"#
    );
    expect_errors(
        "upgrades",
        &text,
        &[
            "config.yaml:6:43: upgrade `h2c` is not relayed; only `websocket` is",
            "config.yaml:11:43: `upgrades` needs a listener of a protocol that has it (http), not `dubbo`",
        ],
    );
}

#[test]
fn a_bad_xds_section_is_located() {
    expect_errors(
        "xds",
        "xds: { server: \"127.0.0.1:18000\", nodeid: gw }\nlisteners: []\n",
        &["config.yaml:1:", "xds: unknown field `nodeid`"],
    );
}
