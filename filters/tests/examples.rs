//! Every filter config in `examples/filters/` builds with this crate's
//! factories, for its listener's protocol and for each route override
//! (codec-independent: the HTTP example is checked here even before an HTTP
//! codec is registered; the end-to-end tests run the Dubbo ones for real).

use std::path::PathBuf;

use metaproxy_core::filter::FilterContext;
use metaproxy_core::registry::Registry;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/filters")
}

/// Builds every filter of every listener and route in `file`; returns how many.
fn build_all(registry: &Registry, file: &str) -> usize {
    let path = examples_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let config: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
    let mut built = 0;
    for listener in config["listeners"].as_array().expect("listeners") {
        let name = listener["name"].as_str().unwrap();
        let protocol = listener["protocol"].as_str().unwrap();
        let mut build = |filter: &str, value: &serde_json::Value, route: Option<&str>| {
            let factory = registry
                .filter(filter)
                .unwrap_or_else(|| panic!("{file}: no filter `{filter}`"));
            let context = FilterContext {
                listener: name,
                protocol,
                route,
            };
            if let Err(e) = factory.build(value, &context) {
                panic!("{file}: filter `{filter}` (route {route:?}): {e}");
            }
            built += 1;
        };
        for entry in listener["filters"].as_array().into_iter().flatten() {
            for (filter, value) in entry.as_object().expect("one-key map") {
                build(filter, value, None);
            }
        }
        for route in listener["routes"].as_array().into_iter().flatten() {
            let route_name = route["name"].as_str();
            for (filter, value) in route["filters"].as_object().into_iter().flatten() {
                if value != &serde_json::Value::Bool(false) {
                    build(filter, value, route_name);
                }
            }
        }
    }
    built
}

#[test]
fn every_example_builds() {
    let mut registry = Registry::new();
    metaproxy_filters::register_all(&mut registry);
    let mut files: Vec<String> = std::fs::read_dir(examples_dir())
        .expect("examples/filters")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    files.sort();
    for want in [
        "authz.yaml",
        "cors.yaml",
        "fault.yaml",
        "global_ratelimit.yaml",
        "local_ratelimit.yaml",
    ] {
        assert!(files.iter().any(|f| f == want), "missing example {want}");
    }
    for file in &files {
        assert!(build_all(&registry, file) > 0, "{file} has no filter");
    }
    // The local_ratelimit example overrides the filter on a route: 2 builds.
    assert_eq!(build_all(&registry, "local_ratelimit.yaml"), 2);
}
