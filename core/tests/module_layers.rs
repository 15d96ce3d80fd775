//! Core's modules form layers: no module reaches, through `use` paths,
//! back to itself. A cycle (`cluster` → `health_check` → `cluster`, say)
//! means neither side can be read or changed alone, so this test names
//! the first cycle it finds, file by file and module by module.
//!
//! It reads the sources as text: every `crate::…` and `super::…` path in
//! a file's non-test code (before its first `#[cfg(test)]`, comments left
//! out, `tests.rs` and `*_tests.rs` files skipped) is an edge to the
//! deepest module that path names.

mod source;

use source::{Module, code, modules};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a file names: `crate::a::b` → `[a, b]`, `super::c` in
/// `x::y` → `[x, c]`; the items inside `{…}` after a path each count.
fn paths(code: &str, module: &Module) -> Vec<Module> {
    let mut found = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !is_ident(bytes[i - 1]);
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let (base, skip) = if starts_word && rest.starts_with("crate::") {
            (Vec::new(), 7)
        } else if starts_word && rest.starts_with("super::") {
            (module[..module.len().saturating_sub(1)].to_vec(), 7)
        } else {
            i += 1;
            continue;
        };
        let mut j = i + skip;
        let mut base = base;
        while bytes[j..].starts_with(&['s', 'u', 'p', 'e', 'r', ':', ':']) {
            base.pop();
            j += 7;
        }
        let mut path = base;
        loop {
            let start = j;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            if j > start {
                path.push(bytes[start..j].iter().collect());
            }
            if bytes[j..].starts_with(&[':', ':', '{']) {
                let end = (j..bytes.len()).find(|&k| bytes[k] == '}').unwrap_or(j);
                let inner: String = bytes[j + 3..end].iter().collect();
                for item in inner.split(',') {
                    let head = item.trim().split("::").next().unwrap_or("").trim();
                    if !head.is_empty() && head != "self" {
                        let mut p = path.clone();
                        p.push(head.to_string());
                        found.push(p);
                    }
                }
                j = end;
                break;
            }
            if bytes[j..].starts_with(&[':', ':']) {
                j += 2;
                continue;
            }
            break;
        }
        found.push(path);
        i = j.max(i + 1);
    }
    found
}

/// The deepest module `path` names, if it names one.
fn resolve(path: &Module, modules: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains_key(m))
}

/// A cycle in `graph`, as the list of nodes around it.
fn find_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        node: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        stack: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn show(cycle: &[Module]) -> String {
    cycle
        .iter()
        .map(|m| {
            if m.is_empty() {
                "lib".into()
            } else {
                m.join("::")
            }
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

fn graphs() -> (
    BTreeMap<Module, BTreeSet<Module>>,
    BTreeMap<Module, BTreeSet<Module>>,
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&root);
    let (mut files, mut tops) = (BTreeMap::new(), BTreeMap::new());
    for (module, path) in &modules {
        let text = std::fs::read_to_string(path).expect("read source");
        for used in paths(&code(&text), module) {
            let Some(target) = resolve(&used, &modules) else {
                continue;
            };
            if &target == module || target.is_empty() || module.is_empty() {
                continue;
            }
            files
                .entry(module.clone())
                .or_insert_with(BTreeSet::new)
                .insert(target.clone());
            let (a, b) = (module[..1].to_vec(), target[..1].to_vec());
            if a != b {
                tops.entry(a).or_insert_with(BTreeSet::new).insert(b);
            }
        }
    }
    (files, tops)
}

#[test]
fn no_file_of_core_reaches_back_to_itself() {
    let (files, _) = graphs();
    assert!(files.len() > 40, "the scan found too few edges: {files:?}");
    if let Some(cycle) = find_cycle(&files) {
        panic!("module cycle in core: {}", show(&cycle));
    }
}

#[test]
fn no_top_level_module_of_core_reaches_back_to_itself() {
    let (_, tops) = graphs();
    assert!(
        tops.contains_key(&vec!["proxy".to_string()]),
        "the scan missed proxy's edges: {tops:?}"
    );
    if let Some(cycle) = find_cycle(&tops) {
        panic!("module cycle in core: {}", show(&cycle));
    }
}

#[test]
fn the_scan_sees_paths_the_way_rust_does() {
    let module: Module = vec!["cluster".into(), "outlier".into()];
    let found = paths(
        "use super::health::{Outcome, now_ms};\nuse crate::metrics::Metrics;\nlet x = super::super::tls::X;",
        &module,
    );
    let want: Vec<Module> = [
        &["cluster", "health", "Outcome"][..],
        &["cluster", "health", "now_ms"],
        &["cluster", "health"],
        &["metrics", "Metrics"],
        &["tls", "X"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(found, want);
    let mut graph = BTreeMap::new();
    graph.insert(
        vec!["a".to_string()],
        BTreeSet::from([vec!["b".to_string()]]),
    );
    graph.insert(
        vec!["b".to_string()],
        BTreeSet::from([vec!["a".to_string()]]),
    );
    assert_eq!(
        find_cycle(&graph).map(|c| show(&c)),
        Some("a → b → a".to_string())
    );
}
