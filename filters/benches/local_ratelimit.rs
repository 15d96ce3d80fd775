//! What `local_ratelimit` adds to a request: one `on_request` call with a
//! bucket that never runs dry (the common case), a default bucket and a
//! per-user bucket. `cargo bench -p metaproxy-filters`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use metaproxy_core::Metadata;
use metaproxy_core::filter::{FilterContext, FilterFactory, RequestContext};
use metaproxy_core::message::MessageKind;
use metaproxy_filters::local_ratelimit::LocalRateLimitFactory;

const CTX: FilterContext<'static> = FilterContext {
    listener: "bench",
    protocol: "dubbo",
    route: None,
};

/// Polls a future that completes without waiting (the filter never awaits).
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("local_ratelimit never waits"),
    }
}

fn bench(c: &mut Criterion) {
    let request = |md: Metadata| {
        RequestContext::new("dubbo", MessageKind::Request, md, Arc::new(Metadata::new()))
    };
    let plain = LocalRateLimitFactory::new()
        .build(
            &serde_json::json!({"tokens_per_second": 1.0e9, "burst": 1_000_000_000_000u64}),
            &CTX,
        )
        .unwrap();
    let mut req = request(Metadata::new());
    c.bench_function("local_ratelimit/default_bucket", |b| {
        b.iter(|| black_box(run(plain.on_request(&mut req))))
    });
    let per_user = LocalRateLimitFactory::new()
        .build(
            &serde_json::json!({"tokens_per_second": 1.0e9, "burst": 1_000_000_000_000u64, "per_key": "x-user-id"}),
            &CTX,
        )
        .unwrap();
    let mut req = request([("x-user-id", "user-42")].into_iter().collect());
    c.bench_function("local_ratelimit/per_user_bucket", |b| {
        b.iter(|| black_box(run(per_user.on_request(&mut req))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
