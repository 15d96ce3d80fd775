//! The example gateway: demo backends and metaproxy in one process.
//!
//! ```sh
//! cargo run --example gateway [-- path/to/gateway.yaml] [--ephemeral]
//! ```
//!
//! Starts three demo Dubbo providers (user v1, user v2, batch job) on
//! 127.0.0.1:20881-20883, six demo HTTP backends (product v1 :9101,
//! product v2 :9102, user :9201, cart :9301-9303) and two demo Thrift
//! `Greeter` servers (v1 :9091, v2 :9092), then metaproxy with
//! `examples/gateway/gateway.yaml` (listeners: Dubbo :20880, HTTP :8080,
//! Thrift :9090), and prints commands to try. Editing the
//! YAML file (or `kill -HUP`) reloads it live. Ctrl-C stops everything
//! (in-flight requests drain).
//!
//! `--ephemeral` (or `GATEWAY_EPHEMERAL=1`) binds everything on free ports
//! instead: the config's fixed addresses are rewritten to the real ones
//! into a copy of the file (printed; edit that copy to reload), and the
//! printed commands carry the real ports. The tests use it.

#[path = "../support/dubbo_demo.rs"]
mod dubbo_demo;
mod http_demo;
#[path = "../support/thrift_demo.rs"]
mod thrift_demo;
mod try_commands;

use std::path::PathBuf;
use std::sync::Arc;

use metaproxy::core::config::load_file;
use metaproxy::core::proxy::RunningProxy;

/// The demo Dubbo providers: fixed address in gateway.yaml, tag.
const DUBBO_PROVIDERS: [(&str, &str); 3] = [
    ("127.0.0.1:20881", "user-v1"),
    ("127.0.0.1:20882", "user-v2"),
    ("127.0.0.1:20883", "batchjob"),
];
/// The demo HTTP backends: fixed address in gateway.yaml, tag.
const HTTP_BACKENDS: [(&str, &str); 6] = [
    ("127.0.0.1:9101", "product-v1"),
    ("127.0.0.1:9102", "product-v2"),
    ("127.0.0.1:9201", "user"),
    ("127.0.0.1:9301", "cart-1"),
    ("127.0.0.1:9302", "cart-2"),
    ("127.0.0.1:9303", "cart-3"),
];
/// The demo Thrift servers (`Greeter`): fixed address in gateway.yaml, tag.
const THRIFT_SERVERS: [(&str, &str); 2] = [
    ("127.0.0.1:9091", "greeter-v1"),
    ("127.0.0.1:9092", "greeter-v2"),
];
/// The listeners' fixed addresses in gateway.yaml: dubbo-in, http-in, thrift-in.
const LISTENERS: [&str; 3] = ["127.0.0.1:20880", "127.0.0.1:8080", "127.0.0.1:9090"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        ))
        .with_writer(std::io::stderr)
        .init();
    let mut ephemeral = std::env::var("GATEWAY_EPHEMERAL").is_ok_and(|v| v == "1");
    let mut config = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--ephemeral" => ephemeral = true,
            other if other.starts_with('-') => anyhow::bail!("unknown option {other}"),
            other => config = Some(PathBuf::from(other)),
        }
    }
    let mut config = config.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/gateway/gateway.yaml")
    });

    // The demo backends, on their fixed ports or on free ones.
    let mut rewrites: Vec<(String, String)> = Vec::new();
    for (fixed, tag) in DUBBO_PROVIDERS {
        let listener = dubbo_demo::bind(bind_addr(fixed, ephemeral)?).await?;
        rewrites.push((fixed.to_string(), listener.local_addr()?.to_string()));
        tokio::spawn(dubbo_demo::provider(listener, tag));
    }
    for (fixed, tag) in HTTP_BACKENDS {
        let listener = http_demo::bind(bind_addr(fixed, ephemeral)?).await?;
        rewrites.push((fixed.to_string(), listener.local_addr()?.to_string()));
        tokio::spawn(http_demo::backend(listener, tag));
    }
    for (fixed, tag) in THRIFT_SERVERS {
        let listener = thrift_demo::bind(bind_addr(fixed, ephemeral)?).await?;
        rewrites.push((fixed.to_string(), listener.local_addr()?.to_string()));
        tokio::spawn(thrift_demo::server(listener, tag));
    }
    // The scratch directory of an `--ephemeral` run, removed on exit.
    let mut scratch = None;
    if ephemeral {
        for fixed in LISTENERS {
            rewrites.push((fixed.to_string(), "127.0.0.1:0".to_string()));
        }
        // A copy of the config with the real addresses (watched for reloads).
        let mut text = std::fs::read_to_string(&config)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", config.display()))?;
        for (fixed, real) in &rewrites {
            text = text.replace(fixed.as_str(), real);
        }
        let dir = std::env::temp_dir().join(format!("metaproxy-gateway-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        config = dir.join("gateway.yaml");
        std::fs::write(&config, text)?;
        scratch = Some(dir);
    }

    let loaded = load_file(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let proxy = Arc::new(
        RunningProxy::start(&loaded, &metaproxy::default_registry())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    // Edit the file (or send SIGHUP) and the new config takes over live.
    metaproxy::reload::spawn(proxy.clone(), config.clone());

    let addr_of = |name: &str, fallback: &str| {
        let name = name.to_string();
        let fallback = fallback.to_string();
        let proxy = proxy.clone();
        async move {
            proxy
                .listener_address(&name)
                .await
                .map_or(fallback, |a| a.to_string())
        }
    };
    let dubbo = addr_of("dubbo-in", LISTENERS[0]).await;
    let http = addr_of("http-in", LISTENERS[1]).await;
    let thrift = addr_of("thrift-in", LISTENERS[2]).await;
    let real = |fixed: &str| {
        rewrites
            .iter()
            .find(|(f, _)| f == fixed)
            .map_or(fixed.to_string(), |(_, r)| r.clone())
    };

    println!("\nmetaproxy example gateway, config {}", config.display());
    for (name, addr) in proxy.bound_addresses().await {
        println!("  listener {name:<10} {addr}");
    }
    let list = |all: &[(&str, &str)]| {
        all.iter()
            .map(|(fixed, tag)| format!("{tag} {}", real(fixed)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  demo Dubbo providers: {}", list(&DUBBO_PROVIDERS));
    println!("  demo HTTP backends: {}", list(&HTTP_BACKENDS));
    println!("  demo Thrift servers: {}", list(&THRIFT_SERVERS));
    try_commands::print(&try_commands::Addresses {
        dubbo,
        http,
        thrift,
    });
    println!("\nCtrl-C to stop.");
    println!("ready");

    stopped().await?;
    proxy.shutdown().await;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stopped() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// The address to bind for a demo backend: its fixed one, or a free port.
fn bind_addr(fixed: &str, ephemeral: bool) -> anyhow::Result<std::net::SocketAddr> {
    let addr: std::net::SocketAddr = fixed.parse()?;
    Ok(if ephemeral {
        std::net::SocketAddr::new(addr.ip(), 0)
    } else {
        addr
    })
}
