//! A proxy binary with a codec plugin: metaproxy's built-in protocols plus
//! ToyRPC (`toyrpc.rs`), without touching metaproxy's own crates.
//!
//! ```sh
//! cargo run --example custom_codec            # demo calls, then exit
//! cargo run --example custom_codec -- --serve # keep serving until Ctrl-C
//! ```
//!
//! Starts three demo ToyRPC servers on ephemeral ports, then the proxy with
//! the config below, sends a few requests through it and prints what came
//! back. The walkthrough is docs/codec-plugin.md.

mod toyrpc;

use metaproxy::core::config::parse_str;
use metaproxy::core::proxy::RunningProxy;
use tokio::net::{TcpListener, TcpStream};

use toyrpc::{Frame, ToyRpcFactory};

/// The proxy's config; `{V1}`, `{V2}` and `{BILLING}` are the demo servers' addresses.
const CONFIG: &str = r#"
listeners:
  - name: toy-in
    address: 127.0.0.1:0
    protocol: toyrpc                 # the plugin's name
    options: { max_headers: 32 }     # the plugin's own options
    routes:
      - name: billing                # route by a header
        match: [ { key: service, exact: billing } ]
        route: { cluster: billing, timeout: 2s }
        request_headers: { set: { x-routed-by: metaproxy } }   # written into the header block
      - name: canary                 # split by weight
        match: [ { key: service, exact: orders } ]
        route:
          weighted:
            - { cluster: orders, subset: v1, weight: 80 }
            - { cluster: orders, subset: v2, weight: 20 }
        response_headers: { set: { x-canary: "true" } }
clusters:
  - name: orders
    protocol: toyrpc
    endpoints:
      - { address: "{V1}", labels: { version: v1 } }
      - { address: "{V2}", labels: { version: v2 } }
    subsets: { v1: { version: v1 }, v2: { version: v2 } }
  - name: billing
    protocol: toyrpc
    endpoints: [ { address: "{BILLING}" } ]
"#;

async fn demo_server(tag: &'static str) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(toyrpc::serve_upstream(listener, tag));
    Ok(addr)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let serve = std::env::args().any(|a| a == "--serve");

    // 1. The demo upstreams.
    let config = CONFIG
        .replace("{V1}", &demo_server("orders-v1").await?)
        .replace("{V2}", &demo_server("orders-v2").await?)
        .replace("{BILLING}", &demo_server("billing").await?);

    // 2. The registry: everything built in, plus the plugin.
    let mut registry = metaproxy::default_registry();
    registry.register_codec(ToyRpcFactory);

    // 3. Load the config (every error has a line and column) and start.
    let loaded = parse_str(&config, "custom_codec.yaml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let proxy = RunningProxy::start(&loaded, &registry)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let addr = proxy
        .listener_address("toy-in")
        .await
        .ok_or_else(|| anyhow::anyhow!("listener toy-in is not bound"))?;
    println!("toyrpc listener on {addr}");

    // 4. A few calls through the proxy.
    let mut conn = TcpStream::connect(addr).await?;
    let calls = [
        Frame::request(1, &[("service", "billing")], b"charge 10"),
        Frame::request(2, &[("service", "orders"), ("user", "alice")], b"list"),
        Frame::request(3, &[("service", "nothing")], b"?"),
    ];
    for request in &calls {
        let answer = toyrpc::call(&mut conn, request)
            .await
            .ok_or_else(|| anyhow::anyhow!("no answer"))?;
        println!(
            "request {} {:?} -> served by {} flags {:#04x} headers {:?} payload {:?}",
            request.id,
            request.headers,
            answer.header("served-by").unwrap_or("the proxy"),
            answer.flags,
            answer.headers,
            String::from_utf8_lossy(&answer.payload)
        );
    }

    if serve {
        println!("serving on {addr}; Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    }
    proxy.shutdown().await;
    Ok(())
}
