//! The health probes of HTTP clusters, made from their `health_check`
//! section: `kind: protocol` or `kind: http` is a GET of `path` (default
//! [`DEFAULT_PATH`]) that passes on `expected_statuses` (default 2xx and
//! 3xx), over HTTP/1.1 for `http` and `http1` clusters ([`HttpProbe`]) and
//! over h2c for `http2` clusters ([`H2Probe`]); `kind: grpc` is the gRPC
//! health check (`super::grpc_probe`).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use metaproxy_core::PluginError;
use metaproxy_core::config::HealthCheckConfig;
use metaproxy_core::health_check::{Probe, ProbeError, ProbeFuture, ProbeTarget};
use metaproxy_core::registry::ProbeMaker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::UpstreamVersion;

/// The path a protocol probe asks for.
pub const DEFAULT_PATH: &str = "/health";

/// Healthy when `GET path` over HTTP/1.1 answers with an expected status.
#[derive(Debug)]
pub struct HttpProbe {
    /// The path.
    pub path: String,
    /// Statuses that pass (empty: 200-399).
    pub expected: Vec<u16>,
}

/// Healthy when `GET path` over HTTP/2 (prior knowledge) answers with an
/// expected status.
#[derive(Debug)]
pub struct H2Probe {
    /// The path.
    pub path: String,
    /// Statuses that pass (empty: 200-399).
    pub expected: Vec<u16>,
}

/// Whether `status` passes: one of `expected`, or 200-399 when it is empty.
fn passes(status: u16, expected: &[u16]) -> bool {
    if expected.is_empty() {
        (200..400).contains(&status)
    } else {
        expected.contains(&status)
    }
}

impl Probe for HttpProbe {
    fn probe(&self, target: ProbeTarget) -> ProbeFuture {
        let address = target.address;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: metaproxy-health-check\r\nConnection: close\r\n\r\n",
            self.path
        );
        let expected = self.expected.clone();
        Box::pin(async move {
            let mut s = target.connect().await?;
            s.write_all(request.as_bytes())
                .await
                .map_err(ProbeError::io("write"))?;
            let mut head = Vec::with_capacity(256);
            let mut chunk = [0u8; 256];
            while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
                let n = s.read(&mut chunk).await.map_err(ProbeError::io("read"))?;
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&chunk[..n]);
            }
            let line = String::from_utf8_lossy(&head);
            let status: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    ProbeError::BadAnswer(format!(
                        "not HTTP: {:?}",
                        line.lines().next().unwrap_or("")
                    ))
                })?;
            if passes(status, &expected) {
                Ok(())
            } else {
                Err(ProbeError::Unhealthy(format!("status {status}")))
            }
        })
    }
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
        let expected = self.expected.clone();
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
            if passes(status.as_u16(), &expected) {
                Ok(())
            } else {
                Err(ProbeError::Unhealthy(format!("status {}", status.as_u16())))
            }
        })
    }
}

/// The probe maker of a cluster speaking `version`: `protocol` and `http`
/// (`path`, `expected_statuses`) over that version, `grpc` (`service`).
pub(crate) fn maker(version: UpstreamVersion) -> ProbeMaker {
    Box::new(move |check| {
        let probe: Arc<dyn Probe> = match check.kind.name() {
            "grpc" => {
                check.only_options(&["service"])?;
                let service = check.option_str("service")?.unwrap_or_default().to_string();
                Arc::new(super::grpc_probe::GrpcProbe { service })
            }
            "protocol" | "http" => {
                check.only_options(&["path", "expected_statuses"])?;
                let path = check
                    .option_str("path")?
                    .unwrap_or(DEFAULT_PATH)
                    .to_string();
                if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    return Err(PluginError::invalid_option(
                        "path",
                        format!("`{path}` is not an origin-form path"),
                    ));
                }
                let expected = expected_statuses(check)?;
                match version {
                    UpstreamVersion::Http2 => Arc::new(H2Probe { path, expected }),
                    UpstreamVersion::Http1 | UpstreamVersion::Downstream => {
                        Arc::new(HttpProbe { path, expected })
                    }
                }
            }
            other => {
                return Err(PluginError::Invalid(format!(
                    "no `kind: {other}` health check on HTTP clusters (known: protocol, tcp, http, grpc)"
                )));
            }
        };
        Ok(Some(probe))
    })
}

/// `expected_statuses`: a list of statuses 100-599 (empty when not given).
fn expected_statuses(check: &HealthCheckConfig) -> Result<Vec<u16>, PluginError> {
    let Some(value) = check.options.get("expected_statuses") else {
        return Ok(Vec::new());
    };
    let bad = |why: &str| PluginError::invalid_option("expected_statuses", why);
    let list: Vec<u16> = serde_json::from_value(value.clone())
        .map_err(|_| bad("must be a list of HTTP statuses"))?;
    if list.iter().any(|s| !(100..600).contains(s)) {
        return Err(bad("statuses are 100-599"));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaproxy_core::config::HealthCheckKind;

    fn check(kind: &str, options: serde_json::Value) -> HealthCheckConfig {
        HealthCheckConfig {
            interval: None,
            timeout: None,
            unhealthy_threshold: None,
            healthy_threshold: None,
            kind: serde_json::from_value::<HealthCheckKind>(kind.into()).unwrap(),
            options: options.as_object().cloned().unwrap_or_default(),
        }
    }

    fn made(version: UpstreamVersion, kind: &str, options: serde_json::Value) -> String {
        match maker(version)(&check(kind, options)) {
            Ok(Some(_)) => String::new(),
            Ok(None) => "no probe".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_http_protocol_makes_its_probes_and_refuses_what_they_do_not_take() {
        use serde_json::json;
        for v in [UpstreamVersion::Http1, UpstreamVersion::Http2] {
            assert_eq!(made(v, "protocol", json!({})), "");
            let ok = json!({"path": "/ready", "expected_statuses": [200, 204]});
            assert_eq!(made(v, "http", ok), "");
            assert_eq!(made(v, "grpc", json!({"service": "demo.Echo"})), "");
        }
        let v = UpstreamVersion::Http1;
        let e = made(v, "redis", json!({}));
        assert!(
            e.contains("no `kind: redis` health check on HTTP clusters"),
            "{e}"
        );
        let e = made(v, "http", json!({"method": "ping"}));
        assert!(e.contains("unknown field `method` for `kind: http`"), "{e}");
        let e = made(v, "grpc", json!({"path": "/x"}));
        assert!(e.contains("unknown field `path` for `kind: grpc`"), "{e}");
        let e = made(v, "http", json!({"path": "health"}));
        assert!(e.starts_with("`path`: "), "{e}");
        let e = made(v, "http", json!({"path": 7}));
        assert_eq!(e, "`path`: must be a string");
        let e = made(v, "http", json!({"expected_statuses": [700]}));
        assert_eq!(e, "`expected_statuses`: statuses are 100-599");
        let e = made(v, "http", json!({"expected_statuses": "200"}));
        assert!(e.contains("must be a list"), "{e}");
    }

    #[test]
    fn statuses_pass_by_the_list_or_else_2xx_and_3xx() {
        assert!(passes(204, &[]) && passes(302, &[]) && !passes(404, &[]));
        assert!(passes(404, &[404]) && !passes(200, &[404]));
    }
}
