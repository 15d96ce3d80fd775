//! Building a snapshot from a generated config with 10 000 clusters and
//! 10 000 routes (one HTTP listener, an exact `:path` route per cluster),
//! parse and build measured apart, the snapshot dropped outside the timing
//! (`cargo bench -p metaproxy-core --bench config_build`).

use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use metaproxy_core::config::parse_str;
use metaproxy_core::snapshot::Snapshot;

use metaproxy_core::inert_protocol::InertProtocol;

/// `n` clusters and `n` routes, route `i` sending `/svc/i` to cluster `i`.
fn config(n: usize) -> String {
    let mut y = String::from(
        "listeners:\n  - name: in\n    address: 127.0.0.1:0\n    protocol: inert\n    routes:\n",
    );
    for i in 0..n {
        writeln!(
            y,
            "      - {{ name: r{i}, match: [ {{ key: \":path\", exact: /svc/{i} }} ], route: {{ cluster: c{i} }} }}"
        )
        .unwrap();
    }
    y.push_str("clusters:\n");
    for i in 0..n {
        writeln!(
            y,
            "  - {{ name: c{i}, protocol: inert, endpoints: [ {{ address: \"127.0.0.1:{}\" }} ] }}",
            1024 + i
        )
        .unwrap();
    }
    y
}

fn bench(c: &mut Criterion) {
    let registry = InertProtocol::registry();
    let mut g = c.benchmark_group("config_build");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for n in [1000usize, 10_000] {
        let text = config(n);
        g.bench_with_input(BenchmarkId::new("parse", n), &n, |b, _| {
            b.iter(|| black_box(parse_str(&text, "gen.yaml").expect("parses")))
        });
        let loaded = parse_str(&text, "gen.yaml").expect("parses");
        g.bench_with_input(BenchmarkId::new("snapshot", n), &n, |b, _| {
            b.iter_with_large_drop(|| Snapshot::build(&loaded, &registry).expect("builds"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
