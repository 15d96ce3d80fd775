//! The "write your own filter" example (examples/custom_filter.rs) in a
//! proxy embedded in this test, in front of a real sofa-rpc-node provider.

mod common;
#[allow(dead_code)]
#[path = "../examples/custom_filter.rs"]
mod custom_filter;

use std::sync::Arc;

use common::{DubboProvider, dubbo_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_filter_refuses_calls_without_a_tenant() {
    let provider = tokio::task::spawn_blocking(|| DubboProvider::start("tenanted"))
        .await
        .unwrap();
    let config = custom_filter::CONFIG
        .replace("127.0.0.1:20890", "127.0.0.1:0")
        .replace("127.0.0.1:20881", &provider.address());
    let mut registry = metaproxy::default_registry();
    registry.register_filter(Arc::new(custom_filter::RequireHeaderFactory));
    let loaded = metaproxy::core::config::parse_str(&config, "custom_filter.yaml").unwrap();
    let proxy = metaproxy::core::proxy::RunningProxy::start(&loaded, &registry)
        .await
        .unwrap();
    let port = proxy.listener_address("dubbo-in").await.unwrap().port();
    let (without, with) = tokio::task::spawn_blocking(move || {
        (
            dubbo_client(port, &[]),
            dubbo_client(port, &["--attach", "tenant=acme"]),
        )
    })
    .await
    .unwrap();
    assert_eq!(without.errors, 1, "{}", without.raw);
    assert!(
        without
            .error_messages
            .keys()
            .any(|m| m.contains("`tenant` is required")),
        "{}",
        without.raw
    );
    assert_eq!(
        with.results.get("Hello bob, from tenanted"),
        Some(&1),
        "{}",
        with.raw
    );
    proxy.shutdown().await;
}
