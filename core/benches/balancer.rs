//! One pick of each load balancer (`Balancer::pick`) over 3 and 100
//! endpoints: round robin, random, least request, ring hash and Maglev;
//! and one pick of a cluster that tracks health (outlier detection on),
//! over 3, 100 and 1 000 endpoints (`Cluster::pick`: priority load, then
//! the balancer) (`cargo bench -p metaproxy-core --bench balancer`).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use metaproxy_core::cluster::balancer::Balancer;
use metaproxy_core::cluster::endpoint::Endpoint;
use metaproxy_core::cluster::hash::stable_hash;
use metaproxy_core::config::{LbPolicy, parse_str};
use metaproxy_core::inert_protocol::InertProtocol;
use metaproxy_core::snapshot::Snapshot;

fn endpoints(n: usize) -> Vec<Arc<Endpoint>> {
    (0..n)
        .map(|i| {
            let addr: SocketAddr = format!("10.0.{}.{}:20880", i / 250, i % 250 + 1)
                .parse()
                .expect("address");
            Arc::new(Endpoint::new(addr, BTreeMap::new(), 1 + (i % 3) as u32))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("lb_pick");
    let keys: Vec<u64> = (0..1024)
        .map(|i| stable_hash(format!("user-{i}").as_bytes()))
        .collect();
    for n in [3usize, 100] {
        let eps = endpoints(n);
        for (name, policy) in [
            ("round_robin", LbPolicy::RoundRobin),
            ("random", LbPolicy::Random),
            ("least_request", LbPolicy::LeastRequest),
            ("ring_hash", LbPolicy::RingHash),
            ("maglev", LbPolicy::Maglev),
        ] {
            let lb = Balancer::new(policy, &eps);
            let mut i = 0usize;
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    i = (i + 1) & 1023;
                    let hash = lb.uses_hash().then(|| keys[i]);
                    black_box(lb.pick(&eps, hash).map(|e| e.weight))
                })
            });
        }
    }
    g.finish();
}

/// One cluster of `n` endpoints with outlier detection, built from config.
fn tracked_cluster_config(n: usize) -> String {
    let mut y = String::from(
        "listeners:\n  - { name: in, address: 127.0.0.1:0, protocol: inert, routes: [ { route: { cluster: c } } ] }\n\
         clusters:\n  - name: c\n    protocol: inert\n    outlier_detection: { consecutive_errors: 5 }\n    endpoints:\n",
    );
    for i in 0..n {
        y.push_str(&format!(
            "      - {{ address: \"10.0.{}.{}:20880\" }}\n",
            i / 250,
            i % 250 + 1
        ));
    }
    y
}

fn bench_cluster(c: &mut Criterion) {
    let registry = InertProtocol::registry();
    let mut g = c.benchmark_group("cluster_pick_tracking_health");
    for n in [3usize, 100, 1000] {
        let loaded = parse_str(&tracked_cluster_config(n), "gen.yaml").expect("parses");
        let snapshot = Snapshot::build(&loaded, &registry).expect("builds");
        let cluster = snapshot.clusters.get("c").expect("cluster c").clone();
        g.bench_with_input(BenchmarkId::new("round_robin", n), &n, |b, _| {
            b.iter(|| black_box(cluster.pick(0, None, &[]).map(|e| e.weight)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_cluster);
criterion_main!(benches);
