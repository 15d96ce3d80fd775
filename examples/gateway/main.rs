//! The example gateway: demo backends and metaproxy in one process.
//!
//! ```sh
//! cargo run --example gateway [-- path/to/gateway.yaml]
//! ```
//!
//! Starts three demo Dubbo providers (user v1, user v2, batch job) on
//! 127.0.0.1:20881-20883 and six demo HTTP backends (product v1 :9101,
//! product v2 :9102, user :9201, cart :9301-9303), then metaproxy with
//! `examples/gateway/gateway.yaml`, and prints commands to try. Ctrl-C stops
//! everything (in-flight requests drain).

#[path = "../support/dubbo_demo.rs"]
mod dubbo_demo;
mod http_demo;

use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        ))
        .init();
    let config = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/gateway/gateway.yaml")
        });

    for (port, tag) in [(20881, "user-v1"), (20882, "user-v2"), (20883, "batchjob")] {
        let listener = dubbo_demo::bind(([127, 0, 0, 1], port).into()).await?;
        tokio::spawn(dubbo_demo::provider(listener, tag));
    }
    for (port, tag) in [
        (9101, "product-v1"),
        (9102, "product-v2"),
        (9201, "user"),
        (9301, "cart-1"),
        (9302, "cart-2"),
        (9303, "cart-3"),
    ] {
        let listener = http_demo::bind(([127, 0, 0, 1], port).into()).await?;
        tokio::spawn(http_demo::backend(listener, tag));
    }
    let proxy = metaproxy::start_file(&config, &metaproxy::default_registry())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    println!("\nmetaproxy example gateway, config {}", config.display());
    for (name, addr) in proxy.bound_addresses().await {
        println!("  listener {name:<10} {addr}");
    }
    println!("  demo Dubbo providers: user-v1 127.0.0.1:20881, user-v2 :20882, batchjob :20883");
    println!(
        "  demo HTTP backends: product-v1 127.0.0.1:9101, product-v2 :9102, user :9201, cart :9301-9303"
    );
    println!("\nTry, in another terminal:");
    println!("  # Dubbo canary: ~90% user-v1, ~10% user-v2");
    println!("  cargo run --example dubbo_call -- --count 100");
    println!("  # Dubbo routing by attachment: every call to the batch-job provider");
    println!("  cargo run --example dubbo_call -- --count 10 --attach batchJob=true");
    println!("  # HTTP ingress: product canary (90% v1 / 10% v2; edit the weights and restart)");
    println!(
        "  for i in $(seq 20); do curl -s http://127.0.0.1:8080/product/42; done | cut -d' ' -f1 | sort | uniq -c"
    );
    println!("  # the same over HTTP/2 (h2c)");
    println!("  curl -s --http2-prior-knowledge http://127.0.0.1:8080/product/42");
    println!("  # user service and the three cart instances (round robin)");
    println!("  curl -s http://127.0.0.1:8080/user/me");
    println!("  for i in 1 2 3; do curl -s http://127.0.0.1:8080/cart; done");
    println!("  # no route: 404 with x-metaproxy-reason");
    println!("  curl -si http://127.0.0.1:8080/nothing");
    println!("\nCtrl-C to stop.");

    tokio::signal::ctrl_c().await?;
    proxy.shutdown().await;
    Ok(())
}
