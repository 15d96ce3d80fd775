//! Route matching through the public router (`RouteTable::find`) with 10,
//! 100, 1000 and 10 000 routes, the request hitting the last one (the worst
//! case for a scan): routes on an interface + method pair, on an exact
//! `:path`, a mixed table (exact paths with a prefix or regex route every
//! tenth), and a prefix-and-regex table that no index helps
//! (`cargo bench -p metaproxy-core --bench router`).

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

/// A table of `routes` without virtual hosts.
fn table(routes: Vec<Route>) -> RouteTable {
    RouteTable::new(routes, Vec::new())
}

/// An HTTP-like request for `path`.
fn http_request(path: &str) -> Metadata {
    let mut m = Metadata::with_capacity(8);
    for (k, v) in [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "shop.example.com"),
        (":path", path),
        ("user-agent", "bench"),
        ("accept", "*/*"),
    ] {
        m.insert(k.to_string(), v.to_string());
    }
    m
}

/// Route `i` of the mixed table: every tenth a prefix or regex on `:path`.
fn mixed_route(i: usize) -> Route {
    let op = match i % 20 {
        7 => MatchOp::Prefix(format!("/static/{i}/")),
        17 => MatchOp::Regex(Condition::compile_regex(&format!("/re/{i}/[0-9]+")).expect("regex")),
        _ => MatchOp::Exact(format!("/svc/{i}")),
    };
    route(
        i,
        vec![Condition {
            key: ":path".into(),
            op,
            invert: false,
        }],
    )
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_match");
    for n in [10usize, 100, 1000, 10_000] {
        let path = table(
            (0..n)
                .map(|i| route(i, vec![exact(":path", format!("/svc/{i}"))]))
                .collect(),
        );
        let last_path = http_request(&format!("/svc/{}", n - 1));
        g.bench_with_input(BenchmarkId::new("path_exact_last", n), &n, |b, _| {
            b.iter(|| black_box(path.find(black_box(&last_path)).map(|r| r.name.len())))
        });
        let mixed_paths = table((0..n).map(mixed_route).collect());
        g.bench_with_input(BenchmarkId::new("mixed_last", n), &n, |b, _| {
            b.iter(|| {
                black_box(
                    mixed_paths
                        .find(black_box(&last_path))
                        .map(|r| r.name.len()),
                )
            })
        });
        let pairs = table(
            (0..n)
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
        );
        let last = request(
            &format!("com.example.Service{}", n - 1),
            &format!("call{}", n - 1),
        );
        g.bench_with_input(BenchmarkId::new("exact_last", n), &n, |b, _| {
            b.iter(|| black_box(pairs.find(black_box(&last)).map(|r| r.name.len())))
        });
        let first = request("com.example.Service0", "call0");
        g.bench_with_input(BenchmarkId::new("exact_first", n), &n, |b, _| {
            b.iter(|| black_box(pairs.find(black_box(&first)).map(|r| r.name.len())))
        });
        let mixed = table(
            (0..n)
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
        );
        g.bench_with_input(BenchmarkId::new("prefix_regex_last", n), &n, |b, _| {
            b.iter(|| black_box(mixed.find(black_box(&last)).map(|r| r.name.len())))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
