//! gRPC: grpcio servers (`tests/peers/http/grpc_server.py`) as upstreams,
//! grpcio's client as the third-party client, and unary calls over one
//! HTTP/2 connection from hyper.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::{SendRequest, handshake};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::peer::PeerProcess;
use super::{CallResult, Client, Failure, FailureKind, Flavor, Spec, Tally};
use crate::common::repo_root;
use crate::http_peers::{grpc_client, python};

/// gRPC over HTTP/2 (h2c) to `http2` clusters.
pub struct Grpc;

impl Flavor for Grpc {
    const NAME: &'static str = "grpc";
    const LISTENER: &'static str = "http";
    const CLUSTER: &'static str = "http2";
    /// Request bodies are streamed upstream and kept (up to 256 KiB) for retries.
    const REPLAYABLE: bool = true;
    type Upstream = PeerProcess;
    type Client = GrpcClient;

    fn start(specs: &[Spec]) -> Vec<PeerProcess> {
        let script = repo_root().join("tests/peers/http/grpc_server.py");
        let command = || {
            let mut c = Command::new(python());
            c.arg(&script);
            c
        };
        PeerProcess::start_all(specs, command, "\"method\": \"Unary\"")
    }

    fn client(proxy: SocketAddr, source: Option<IpAddr>) -> GrpcClient {
        GrpcClient {
            proxy,
            source,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            sender: None,
        }
    }

    fn third_party_calls(proxy: SocketAddr, key: &str, count: usize) -> Tally {
        let v = grpc_client(
            proxy,
            &[
                "--call",
                "unary",
                "--count",
                &count.to_string(),
                "--meta",
                &format!("user-id={key}"),
            ],
        );
        let mut tally = Tally::default();
        for (answer, n) in v["results"].as_object().unwrap() {
            let tag = answer.split(':').next().unwrap_or("").to_string();
            *tally.tags.entry(tag).or_default() += n.as_u64().unwrap() as usize;
        }
        for (code, n) in v["errors"].as_object().unwrap() {
            tally
                .failures
                .insert(code.clone(), n.as_u64().unwrap() as usize);
        }
        tally
    }

    /// grpcio resets an HTTP/2 `GET /health` (the `protocol` probe of
    /// `http2` clusters), so gRPC clusters check with a TCP connect.
    fn adapt(config: String) -> String {
        config.replace("health_check: {", "health_check: { kind: tcp,")
    }
}

/// Unary calls on one HTTP/2 connection, reopened after errors.
pub struct GrpcClient {
    proxy: SocketAddr,
    source: Option<IpAddr>,
    runtime: tokio::runtime::Runtime,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl GrpcClient {
    fn unary(&mut self, method: &str, payload: &str, key: Option<&str>) -> CallResult {
        let (proxy, source) = (self.proxy, self.source);
        let sender = &mut self.sender;
        let mut frame = BytesMut::with_capacity(5 + payload.len());
        frame.put_u8(0);
        frame.put_u32(payload.len() as u32);
        frame.put_slice(payload.as_bytes());
        let mut request = hyper::Request::post(format!("http://{proxy}/demo.Echo/{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(k) = key {
            request = request.header("user-id", k);
        }
        let request = request.body(Full::new(frame.freeze())).unwrap();
        let result = self.runtime.block_on(async move {
            if sender.is_none() {
                let stream = super::net::connect_async(proxy, source)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                let (s, conn) = handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                tokio::spawn(conn);
                *sender = Some(s);
            }
            let s = sender.as_mut().unwrap();
            s.ready().await.map_err(|e| format!("not ready: {e}"))?;
            let response = s
                .send_request(request)
                .await
                .map_err(|e| format!("send: {}", with_causes(&e)))?;
            let head = response.headers().clone();
            let collected = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?;
            let trailers = collected.trailers().cloned().unwrap_or_default();
            let read = |name: &str| {
                trailers
                    .get(name)
                    .or_else(|| head.get(name))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let status = read("grpc-status").unwrap_or_else(|| "missing".into());
            let message = read("grpc-message").unwrap_or_default();
            Ok::<_, String>((status, message, collected.to_bytes()))
        });
        let (status, message, body) = result.map_err(|e: String| {
            self.sender = None;
            Failure::new(FailureKind::of_transport_error(&e), e)
        })?;
        let kind = match status.as_str() {
            "0" => {
                let answer = String::from_utf8_lossy(body.get(5..).unwrap_or_default());
                return Ok(answer.split(':').next().unwrap_or("").to_string());
            }
            // The proxy ends an answer it had begun, and could not finish,
            // with status trailers when it broke off between two messages.
            "4" | "14" if message.starts_with("metaproxy: answer cut") => FailureKind::MidAnswer,
            "4" => FailureKind::Timeout,
            "8" => FailureKind::OverLimit,
            "14" => FailureKind::Unavailable,
            _ => FailureKind::Other,
        };
        Err(Failure::new(
            kind,
            format!("grpc-status {status}: {message}"),
        ))
    }
}

/// hyper's error followed by its causes (`http2 error: stream error
/// received: unexpected internal error encountered`): the reset's reason
/// tells a relayed answer that broke off from other failures.
fn with_causes(e: &hyper::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl Client for GrpcClient {
    fn call(&mut self, key: Option<&str>) -> CallResult {
        self.unary("Unary", "hello", key)
    }

    fn slow_call(&mut self, ms: u64) -> CallResult {
        self.unary("Sleep", &ms.to_string(), None)
    }
}
