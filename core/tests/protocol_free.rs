//! Core knows no protocol by name. Codecs own Dubbo, Thrift, HTTP, gRPC
//! and the rest; core's code (before each file's first `#[cfg(test)]`,
//! comments left out, `tests.rs` files skipped) never names `dubbo`,
//! `thrift`, `hessian`, `http` or `grpc`, not even inside an identifier
//! or a string. What HTTP needs from core (virtual hosts, redirects,
//! rewrites, upgrades, affinity cookies, case-insensitive keys) is a
//! protocol-neutral hook any protocol may claim (`RouteFeatures`).

mod source;

use source::{code, modules};
use std::path::Path;

/// Names no line of core's code may hold.
const ABSENT: [&str; 5] = ["dubbo", "thrift", "hessian", "http", "grpc"];

/// How often `name` appears in `code`, ignoring case, inside identifiers too
/// (`HttpLimits`, `"grpc"`, `http_probe` each count once).
fn count(code: &str, name: &str) -> usize {
    code.to_ascii_lowercase().matches(name).count()
}

#[test]
fn core_never_names_a_protocol() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for (module, path) in modules(&root) {
        let text = std::fs::read_to_string(&path).expect("read source");
        let code = code(&text);
        for name in ABSENT {
            let n = count(&code, name);
            if n > 0 {
                found.push(format!("{}: `{name}` {n} times", module.join("::")));
            }
        }
    }
    assert!(
        found.is_empty(),
        "core's code names protocols; move it to the codec (or make it a hook \
         any protocol can claim):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_count_sees_names_inside_identifiers_and_strings() {
    let text = "use crate::HttpLimits;\n// http in a comment\nfn f() { let _ = \"grpc\"; http_probe(); }\n#[cfg(test)]\nmod tests { http(); }";
    let code = code(text);
    assert_eq!(count(&code, "http"), 2);
    assert_eq!(count(&code, "grpc"), 1);
    assert_eq!(count(&code, "thrift"), 0);
}
