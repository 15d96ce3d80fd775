//! Route matching through the public router (`RouteTable::find`) with 10,
//! 100 and 1000 routes, each on an interface + method pair, the request
//! hitting the last one (the worst case: every route is tried), plus a
//! prefix-and-regex table of the same sizes (`cargo bench -p metaproxy-core`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use metaproxy_core::Metadata;
use metaproxy_core::mutation::Mutation;
use metaproxy_core::router::{Condition, MatchOp, Redirect, Route, RouteAction, RouteTable};

fn exact(key: &str, value: String) -> Condition {
    Condition {
        key: key.into(),
        op: MatchOp::Exact(value),
        invert: false,
    }
}

/// A route with `conditions`; the action does not matter to matching.
fn route(i: usize, conditions: Vec<Condition>) -> Route {
    Route {
        name: Arc::from(format!("r{i}")),
        conditions,
        action: RouteAction::Redirect(Redirect {
            scheme: None,
            host: None,
            port: None,
            path: Some("/".into()),
            code: 302,
        }),
        timeout: Duration::from_secs(1),
        rewrite: None,
        request_mutation: Mutation::new(),
        response_mutation: Mutation::new(),
        filters: None,
        retry: None,
        mirror: None,
        upgrades: Vec::new(),
    }
}

/// A Dubbo-like request's metadata: a dozen keys, as a codec fills them.
fn request(interface: &str, method: &str) -> Metadata {
    let mut m = Metadata::with_capacity(12);
    for (k, v) in [
        ("protocol", "dubbo"),
        ("request_id", "12345"),
        ("interface", interface),
        ("service", interface),
        ("version", "1.0.0"),
        ("group", "default"),
        ("method", method),
        ("path", interface),
        ("timeout", "3000"),
        ("user-id", "u-42"),
        ("region", "eu-west"),
        ("batchJob", "false"),
    ] {
        m.insert(k.to_string(), v.to_string());
    }
    m
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_match");
    for n in [10usize, 100, 1000] {
        let table = RouteTable {
            routes: (0..n)
                .map(|i| {
                    route(
                        i,
                        vec![
                            exact("interface", format!("com.example.Service{i}")),
                            exact("method", format!("call{i}")),
                        ],
                    )
                })
                .collect(),
            virtual_hosts: Vec::new(),
        };
        let last = request(
            &format!("com.example.Service{}", n - 1),
            &format!("call{}", n - 1),
        );
        g.bench_with_input(BenchmarkId::new("exact_last", n), &n, |b, _| {
            b.iter(|| black_box(table.find(black_box(&last)).map(|r| r.name.len())))
        });
        let first = request("com.example.Service0", "call0");
        g.bench_with_input(BenchmarkId::new("exact_first", n), &n, |b, _| {
            b.iter(|| black_box(table.find(black_box(&first)).map(|r| r.name.len())))
        });
        let mixed = RouteTable {
            routes: (0..n)
                .map(|i| {
                    route(
                        i,
                        vec![
                            Condition {
                                key: "interface".into(),
                                op: MatchOp::Prefix(format!("com.example.Service{i}")),
                                invert: false,
                            },
                            Condition {
                                key: "method".into(),
                                op: MatchOp::Regex(
                                    Condition::compile_regex(&format!("call{i}|get{i}"))
                                        .expect("regex"),
                                ),
                                invert: false,
                            },
                        ],
                    )
                })
                .collect(),
            virtual_hosts: Vec::new(),
        };
        g.bench_with_input(BenchmarkId::new("prefix_regex_last", n), &n, |b, _| {
            b.iter(|| black_box(mixed.find(black_box(&last)).map(|r| r.name.len())))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
