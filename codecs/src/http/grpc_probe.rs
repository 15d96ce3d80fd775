//! `health_check: { kind: grpc, service }` on HTTP clusters: the gRPC
//! health checking protocol, one `grpc.health.v1.Health/Check` call over
//! HTTP/2 (h2c, or TLS with the cluster's settings), passing when the
//! server answers `SERVING` for `service`.
//!
//! `HealthCheckRequest { string service = 1 }` and `HealthCheckResponse {
//! ServingStatus status = 1 }` have the wire form of protobuf's
//! `StringValue` and `Int32Value`, which prost implements for `String` and
//! `i32`: no generated code is needed.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use metaproxy_core::health_check::{Probe, ProbeError, ProbeFuture, ProbeTarget};
use prost::Message;

/// The method called.
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// `ServingStatus.SERVING`.
const SERVING: i32 = 1;
/// The largest answer read (a health answer is a few bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Healthy when the server says `SERVING` for `service` (`""`: the server).
#[derive(Debug)]
pub struct GrpcProbe {
    /// The service asked about.
    pub service: String,
}

impl Probe for GrpcProbe {
    fn probe(&self, target: ProbeTarget) -> ProbeFuture {
        let request = frame(&self.service.encode_to_vec());
        Box::pin(async move {
            let (mut sender, driver, origin) = super::probe::h2_connect(target).await?;
            let result = async {
                let req = http::Request::post(format!("{origin}{CHECK_PATH}"))
                    .header(http::header::CONTENT_TYPE, "application/grpc")
                    .header(http::header::TE, "trailers")
                    .header(http::header::USER_AGENT, "metaproxy-health-check")
                    .body(Full::new(request))
                    .map_err(|e| ProbeError::BadAnswer(format!("request: {e}")))?;
                let resp = sender
                    .send_request(req)
                    .await
                    .map_err(|e| ProbeError::BadAnswer(format!("exchange: {e}")))?;
                if !resp.status().is_success() {
                    return Err(ProbeError::Unhealthy(format!(
                        "HTTP status {}",
                        resp.status().as_u16()
                    )));
                }
                // A trailers-only answer carries grpc-status in its head.
                check_status(resp.headers())?;
                let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                    .collect()
                    .await
                    .map_err(|e| ProbeError::BadAnswer(format!("answer: {e}")))?;
                if let Some(trailers) = body.trailers() {
                    check_status(trailers)?;
                }
                serving_status(body.to_bytes())
            }
            .await;
            driver.abort();
            match result? {
                SERVING => Ok(()),
                other => Err(ProbeError::Unhealthy(format!(
                    "status {} ({other})",
                    status_name(other)
                ))),
            }
        })
    }
}

/// `message` in a gRPC length-prefixed frame (uncompressed).
fn frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message);
    out.freeze()
}

/// Fails on a `grpc-status` other than 0 (`UNIMPLEMENTED`: the server has
/// no health service; `NOT_FOUND`: it does not know the service).
fn check_status(headers: &http::HeaderMap) -> Result<(), ProbeError> {
    match headers.get("grpc-status").map(|v| v.as_bytes()) {
        None | Some(b"0") => Ok(()),
        Some(code) => {
            let message = headers
                .get("grpc-message")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Err(ProbeError::Unhealthy(format!(
                "grpc-status {} {message}",
                String::from_utf8_lossy(code)
            )))
        }
    }
}

/// The `status` of the one `HealthCheckResponse` frame in `body`.
fn serving_status(mut body: Bytes) -> Result<i32, ProbeError> {
    let bad = |why: String| ProbeError::BadAnswer(why);
    if body.len() < 5 {
        return Err(bad("no answer message".into()));
    }
    let compressed = body.get_u8();
    let length = body.get_u32() as usize;
    if compressed != 0 {
        return Err(bad("compressed answer".into()));
    }
    if body.len() < length {
        return Err(bad("truncated answer message".into()));
    }
    i32::decode(body.slice(..length)).map_err(|e| bad(format!("answer message: {e}")))
}

fn status_name(status: i32) -> &'static str {
    match status {
        0 => "UNKNOWN",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "unexpected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_health_protocol_wire_form() {
        // HealthCheckRequest { service: "demo.Echo" }: field 1, length 9.
        let req = "demo.Echo".to_string().encode_to_vec();
        assert_eq!(&req[..2], &[0x0a, 9]);
        assert_eq!(&frame(&req)[..5], &[0, 0, 0, 0, 11]);
        // The whole server: an empty message.
        assert!(String::new().encode_to_vec().is_empty());
        // HealthCheckResponse { status: SERVING } and NOT_SERVING.
        assert_eq!(serving_status(frame(&[0x08, 1])).ok(), Some(SERVING));
        assert_eq!(serving_status(frame(&[0x08, 2])).ok(), Some(2));
        // An empty message is status 0 (UNKNOWN), not healthy.
        assert_eq!(serving_status(frame(&[])).ok(), Some(0));
        assert!(matches!(
            serving_status(Bytes::from_static(&[0, 0, 0, 0, 9, 8])),
            Err(ProbeError::BadAnswer(_))
        ));
    }
}
