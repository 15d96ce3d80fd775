//! `health_check: { kind: protocol }` on HTTP clusters: a GET of
//! [`DEFAULT_PATH`] that passes on a 2xx or 3xx answer, over HTTP/1.1 for
//! `http` and `http1` clusters (the core's [`HttpProbe`]) and over h2c for
//! `http2` clusters.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use metaproxy_core::config::HealthCheckKind;
use metaproxy_core::health_check::{HttpProbe, Probe, ProbeError, ProbeFuture, ProbeTarget};
use metaproxy_core::registry::ProbeMaker;

use super::UpstreamVersion;

/// The path a protocol probe asks for.
pub const DEFAULT_PATH: &str = "/health";

/// Healthy when `GET path` over HTTP/2 (prior knowledge) answers 2xx or 3xx.
#[derive(Debug)]
pub struct H2Probe {
    /// The path.
    pub path: String,
}

/// An HTTP/2 (prior knowledge, or TLS with the cluster's settings)
/// connection to a probe's target: the sender, the task driving the
/// connection (abort it when done), and the target's origin
/// (`http://ip:port` or `https://ip:port`).
pub(super) async fn h2_connect<B>(
    target: ProbeTarget,
) -> Result<(http2::SendRequest<B>, tokio::task::JoinHandle<()>, String), ProbeError>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let scheme = if target.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let origin = format!("{scheme}://{}", target.address);
    let stream = target.connect().await?;
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ProbeError::BadAnswer(format!("h2 handshake: {e}")))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, driver, origin))
}

impl Probe for H2Probe {
    fn probe(&self, target: ProbeTarget) -> ProbeFuture {
        let path = self.path.clone();
        Box::pin(async move {
            let (mut sender, driver, origin) = h2_connect(target).await?;
            let req = http::Request::get(format!("{origin}{path}"))
                .header(http::header::USER_AGENT, "metaproxy-health-check")
                .body(Empty::<Bytes>::new())
                .map_err(|e| ProbeError::BadAnswer(format!("request: {e}")))?;
            let result = sender.send_request(req).await;
            driver.abort();
            let status = result
                .map_err(|e| ProbeError::BadAnswer(format!("exchange: {e}")))?
                .status();
            if status.is_success() || status.is_redirection() {
                Ok(())
            } else {
                Err(ProbeError::Unhealthy(format!("status {}", status.as_u16())))
            }
        })
    }
}

/// The probe maker of a cluster speaking `version`: `GET path` (default
/// [`DEFAULT_PATH`]) over that version (the `method` setting means nothing for HTTP).
pub(crate) fn maker(version: UpstreamVersion) -> ProbeMaker {
    Box::new(move |check| {
        if check.kind == HealthCheckKind::Grpc {
            let service = check.service.clone().unwrap_or_default();
            return Some(Arc::new(super::grpc_probe::GrpcProbe { service }) as Arc<dyn Probe>);
        }
        let path = check.path.clone().unwrap_or_else(|| DEFAULT_PATH.into());
        let probe: Arc<dyn Probe> = match version {
            UpstreamVersion::Http2 => Arc::new(H2Probe { path }),
            UpstreamVersion::Http1 | UpstreamVersion::Downstream => Arc::new(HttpProbe {
                path,
                expected: check.expected_statuses.clone().unwrap_or_default(),
            }),
        };
        Some(probe)
    })
}
