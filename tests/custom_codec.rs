//! The codec plugin guide's ToyRPC codec (examples/custom_codec/toyrpc.rs),
//! registered on an embedding proxy built in-process: routing by a header,
//! weighted split, mutations written into the header block, local replies
//! as error frames, bad frames closing only their connection.

#[allow(dead_code)]
#[path = "../examples/custom_codec/toyrpc.rs"]
mod toyrpc;

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::BytesMut;
use metaproxy::core::config::parse_str;
use metaproxy::core::proxy::RunningProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use toyrpc::{ERROR, Frame, RESPONSE, ToyRpcFactory};

async fn upstream(tag: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(toyrpc::serve_upstream(listener, tag));
    addr
}

async fn start() -> (RunningProxy, SocketAddr) {
    let (v1, v2, billing) = (
        upstream("v1").await,
        upstream("v2").await,
        upstream("billing").await,
    );
    let config = format!(
        r#"
listeners:
  - name: toy
    address: 127.0.0.1:0
    protocol: toyrpc
    limits: {{ max_frame_bytes: 4096 }}
    filters:
      - metadata_mutation: {{ request: {{ set: {{ x-proxy: metaproxy }} }} }}
    routes:
      - name: billing
        match: [ {{ key: service, exact: billing }} ]
        route: {{ cluster: billing }}
        request_headers: {{ set: {{ x-routed-by: billing-route }}, remove: [ secret ] }}
        response_headers: {{ set: {{ x-answered: "yes" }} }}
      - name: canary
        match: [ {{ key: service, exact: orders }} ]
        route:
          weighted:
            - {{ cluster: orders, subset: v1, weight: 75 }}
            - {{ cluster: orders, subset: v2, weight: 25 }}
clusters:
  - name: orders
    protocol: toyrpc
    endpoints:
      - {{ address: "{v1}", labels: {{ version: v1 }} }}
      - {{ address: "{v2}", labels: {{ version: v2 }} }}
    subsets: {{ v1: {{ version: v1 }}, v2: {{ version: v2 }} }}
  - name: billing
    protocol: toyrpc
    endpoints: [ {{ address: "{billing}" }} ]
"#
    );
    let mut registry = metaproxy::default_registry();
    registry.register_codec(ToyRpcFactory);
    let loaded = parse_str(&config, "custom_codec.yaml").unwrap();
    let proxy = RunningProxy::start(&loaded, &registry)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = proxy.listener_address("toy").await.unwrap();
    (proxy, addr)
}

async fn call(conn: &mut TcpStream, req: Frame) -> Frame {
    toyrpc::call(conn, &req).await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_header_and_applies_mutations() {
    let (proxy, addr) = start().await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let r = call(
        &mut conn,
        Frame::request(
            41,
            &[("service", "billing"), ("secret", "x"), ("user", "ann")],
            b"pay",
        ),
    )
    .await;
    assert_eq!((r.flags, r.id), (RESPONSE, 41));
    assert_eq!(r.payload, b"billing: pay");
    // The upstream echoes the headers it received: the route's and the filter's mutations are there.
    assert_eq!(r.header("served-by"), Some("billing"));
    assert_eq!(r.header("x-routed-by"), Some("billing-route"));
    assert_eq!(r.header("x-proxy"), Some("metaproxy"));
    assert_eq!(r.header("user"), Some("ann"));
    assert_eq!(r.header("secret"), None);
    // The response mutation.
    assert_eq!(r.header("x-answered"), Some("yes"));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_by_weight() {
    let (proxy, addr) = start().await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let n = 400;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for id in 0..n {
        let r = call(&mut conn, Frame::request(id, &[("service", "orders")], b"")).await;
        assert_eq!(r.id, id);
        *counts
            .entry(r.header("served-by").unwrap_or("?").to_string())
            .or_default() += 1;
    }
    // 25% of 400 = 100, standard deviation ≈ 8.7: allow five.
    let v2 = counts.get("v2").copied().unwrap_or(0);
    assert!((56..=144).contains(&v2), "{counts:?}");
    assert_eq!(counts.get("v1").copied().unwrap_or(0) + v2, n as usize);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_toyrpc_error_frames() {
    let (proxy, addr) = start().await;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    // No route: an error frame with the request's id.
    let r = call(&mut conn, Frame::request(7, &[("service", "nope")], b"")).await;
    assert_eq!((r.flags, r.id), (RESPONSE | ERROR, 7));
    assert_eq!(r.header("error"), Some("route not found"));
    assert!(String::from_utf8_lossy(&r.payload).starts_with("metaproxy: route not found"));

    // Too large: an error frame, then only that connection closes.
    let mut big = TcpStream::connect(addr).await.unwrap();
    let mut frame = Frame::request(9, &[], b"").to_bytes();
    frame[11..15].copy_from_slice(&100_000u32.to_be_bytes());
    big.write_all(&frame[..15]).await.unwrap();
    let mut buf = BytesMut::new();
    let r = Frame::read(&mut big, &mut buf).await.expect("error frame");
    assert_eq!((r.flags, r.id), (RESPONSE | ERROR, 9));
    assert!(Frame::read(&mut big, &mut buf).await.is_none());

    // Bad magic: closed.
    let mut bad = TcpStream::connect(addr).await.unwrap();
    bad.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    let _ = bad.read_to_end(&mut rest).await;
    assert!(rest.is_empty());

    // The first connection still works.
    let r = call(&mut conn, Frame::request(8, &[("service", "billing")], b"")).await;
    assert_eq!((r.flags, r.id), (RESPONSE, 8));
    proxy.shutdown().await;
}
