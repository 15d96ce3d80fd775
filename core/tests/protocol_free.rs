//! Core knows no protocol by name. Codecs own Dubbo, Thrift and the rest;
//! core's code (before each file's first `#[cfg(test)]`, comments left out,
//! `tests.rs` files skipped) never names `dubbo`, `thrift` or `hessian`.
//!
//! HTTP and gRPC pieces still live in core (HTTP and gRPC health probes,
//! redirects, rewrites, virtual hosts, cookies, HTTP limits): each file's
//! count of those names is pinned below. Moving a piece out lowers a count
//! and this test asks for the lower number; adding one fails it. The
//! budget only shrinks.

mod source;

use source::{code, modules};
use std::collections::BTreeMap;
use std::path::Path;

/// Names no line of core's code may hold.
const ABSENT: [&str; 3] = ["dubbo", "thrift", "hessian"];

/// Names still in core, with how often each file may hold them.
const BUDGET: [(&str, &str, usize); 6] = [
    ("build::cluster", "http", 3),
    ("build::listener", "http", 5),
    ("build::route", "http", 11),
    ("cluster::hash_policy", "http", 1),
    ("pipeline::route", "http", 3),
    ("registry", "http", 1),
];

/// How often `name` appears in `code`, ignoring case, inside identifiers too
/// (`HttpLimits`, `"grpc"`, `http_probe` each count once).
fn count(code: &str, name: &str) -> usize {
    code.to_ascii_lowercase().matches(name).count()
}

/// Each file's count of each watched name, where it is not zero.
fn counts() -> BTreeMap<(String, String), usize> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for (module, path) in modules(&root) {
        let text = std::fs::read_to_string(&path).expect("read source");
        let code = code(&text);
        for name in ABSENT.iter().chain(["grpc", "http"].iter()) {
            let n = count(&code, name);
            if n > 0 {
                out.insert((module.join("::"), name.to_string()), n);
            }
        }
    }
    out
}

#[test]
fn core_never_names_an_rpc_protocol() {
    let found: Vec<_> = counts()
        .into_iter()
        .filter(|((_, name), _)| ABSENT.contains(&name.as_str()))
        .collect();
    assert!(
        found.is_empty(),
        "core's code names RPC protocols; move it to the codec: {found:?}"
    );
}

#[test]
fn http_and_grpc_in_core_only_shrink() {
    let found = counts();
    let mut wrong = Vec::new();
    for ((module, name), n) in &found {
        if ABSENT.contains(&name.as_str()) {
            continue;
        }
        let budget = BUDGET
            .iter()
            .find(|(m, w, _)| m == module && w == name)
            .map_or(0, |b| b.2);
        if *n > budget {
            wrong.push(format!("{module}: `{name}` {n} times, budget {budget}"));
        }
    }
    for (module, name, budget) in BUDGET {
        let n = found
            .get(&(module.to_string(), name.to_string()))
            .copied()
            .unwrap_or(0);
        if n < budget {
            wrong.push(format!(
                "{module}: `{name}` now {n} times; lower its budget from {budget} to {n}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_count_sees_names_inside_identifiers_and_strings() {
    let text = "use crate::HttpLimits;\n// http in a comment\nfn f() { let _ = \"grpc\"; http_probe(); }\n#[cfg(test)]\nmod tests { http(); }";
    let code = code(text);
    assert_eq!(count(&code, "http"), 2);
    assert_eq!(count(&code, "grpc"), 1);
    assert_eq!(count(&code, "thrift"), 0);
}
