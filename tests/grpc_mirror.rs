//! gRPC calls mirrored through the release binary, between grpcio servers:
//! the shadow server gets a copy of every unary call, request body and
//! metadata included, while the client only ever sees the live answers.

mod common;
#[path = "common/http.rs"]
mod http_peers;

use std::time::Duration;

use common::{Proxy, example_config};
use http_peers::{GrpcServer, grpc_client};

#[test]
fn grpc_calls_are_mirrored_with_their_bodies_and_the_copies_answers_dropped() {
    let live = GrpcServer::start("live");
    let shadow = GrpcServer::start("shadow");
    let config = example_config(
        "examples/grpc_mirror/config.yaml",
        &[
            ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
            ("127.0.0.1:50051", live.address()),
            ("127.0.0.1:50052", shadow.address()),
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ],
    );
    let proxy = Proxy::start("grpc-mirror", &config);
    let v = grpc_client(
        proxy.addr("grpc-in"),
        &[
            "--call",
            "unary",
            "--count",
            "5",
            "--payload",
            "copy-me",
            "--meta",
            "x-user=ann",
        ],
    );
    assert_eq!(v["ok"], 5, "{v}");
    assert_eq!(
        v["results"]["live:copy-me"], 5,
        "only live answers reach the client: {v}"
    );
    // The shadow got five calls of its own, with the caller's metadata.
    for i in 0..5 {
        let call = shadow
            .calls
            .next(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("mirror call {i} never arrived; logs:\n{}", proxy.logs()));
        let call: serde_json::Value = serde_json::from_str(&call).unwrap();
        assert_eq!(call["method"], "Unary", "{call}");
        assert_eq!(call["request"], "copy-me", "the body was copied: {call}");
        assert_eq!(call["metadata"]["x-user"], "ann", "{call}");
    }
}
