//! Active health checks: a probe per endpoint every interval (with jitter),
//! verdicts flipped after `unhealthy_threshold` failures or
//! `healthy_threshold` passes in a row. Probes: TCP connect, HTTP/1.1 GET,
//! or the protocol's own (Dubbo heartbeat, Thrift call).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cluster::Cluster;
use crate::codec::{Codec, Decoder};
use crate::config::HealthCheckConfig;
use crate::metrics::{HealthLabels, Metrics};

/// The future a probe returns: `Ok` when healthy, else why not.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// One kind of health probe.
pub trait Probe: Send + Sync + 'static {
    /// Checks `address`; the caller bounds it with the check's timeout.
    fn probe(&self, address: SocketAddr) -> ProbeFuture;
}

/// Healthy when a TCP connection opens.
#[derive(Debug)]
pub struct TcpProbe;

impl Probe for TcpProbe {
    fn probe(&self, address: SocketAddr) -> ProbeFuture {
        Box::pin(async move {
            TcpStream::connect(address)
                .await
                .map(drop)
                .map_err(|e| format!("connect: {e}"))
        })
    }
}

/// Healthy when `GET path` answers with an expected status.
#[derive(Debug)]
pub struct HttpProbe {
    /// The path.
    pub path: String,
    /// Statuses that pass (empty: 200-399).
    pub expected: Vec<u16>,
}

impl Probe for HttpProbe {
    fn probe(&self, address: SocketAddr) -> ProbeFuture {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: metaproxy-health-check\r\nConnection: close\r\n\r\n",
            self.path
        );
        let expected = self.expected.clone();
        Box::pin(async move {
            let mut s = TcpStream::connect(address)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            s.write_all(request.as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            let mut head = Vec::with_capacity(256);
            let mut chunk = [0u8; 256];
            while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
                let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
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
                    format!(
                        "not an HTTP answer: {:?}",
                        line.lines().next().unwrap_or("")
                    )
                })?;
            let ok = if expected.is_empty() {
                (200..400).contains(&status)
            } else {
                expected.contains(&status)
            };
            if ok {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        })
    }
}

/// Healthy when the protocol's probe frame gets a passing answer.
pub struct CodecProbe<C: Codec> {
    codec: Arc<C>,
    frame: bytes::Bytes,
}

impl<C: Codec> CodecProbe<C> {
    /// A probe using `codec`'s health-check frame, if the protocol has one.
    pub fn new(codec: Arc<C>, method: Option<&str>) -> Option<Self> {
        let frame = codec.health_check_frame(method)?.freeze();
        Some(Self { codec, frame })
    }
}

impl<C: Codec> Probe for CodecProbe<C> {
    fn probe(&self, address: SocketAddr) -> ProbeFuture {
        let codec = self.codec.clone();
        let frame = self.frame.clone();
        Box::pin(async move {
            let mut s = TcpStream::connect(address)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            s.write_all(&frame)
                .await
                .map_err(|e| format!("write: {e}"))?;
            let mut decoder = codec.decoder();
            let mut buf = BytesMut::with_capacity(1024);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(answer)) => {
                        return if codec.health_check_passed(&answer) {
                            Ok(())
                        } else {
                            Err(format!("unhealthy answer ({:?})", answer.kind))
                        };
                    }
                    Ok(None) => {}
                    Err(e) => return Err(format!("bad answer: {e}")),
                }
                let n = s
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("closed before answering".into());
                }
            }
        })
    }
}

/// Resolved settings of a cluster's checks.
#[derive(Clone)]
pub struct HealthChecker {
    /// The probe.
    pub probe: Arc<dyn Probe>,
    /// Between checks.
    pub interval: Duration,
    /// Per check.
    pub timeout: Duration,
    /// Failures in a row to mark unhealthy.
    pub unhealthy_threshold: u32,
    /// Passes in a row to mark healthy.
    pub healthy_threshold: u32,
}

impl std::fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecker")
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HealthChecker {
    /// Settings from config with a probe chosen by the caller.
    pub fn new(config: &HealthCheckConfig, probe: Arc<dyn Probe>) -> Self {
        Self {
            probe,
            interval: config.interval.map_or(Duration::from_secs(5), |d| d.get()),
            timeout: config.timeout.map_or(Duration::from_secs(1), |d| d.get()),
            unhealthy_threshold: config.unhealthy_threshold.unwrap_or(3),
            healthy_threshold: config.healthy_threshold.unwrap_or(2),
        }
    }
}

/// Checks every endpoint of `cluster` until shutdown or until the cluster
/// is dropped (a reload that replaced it).
pub fn spawn_health_checks(cluster: &Arc<Cluster>, shutdown: CancellationToken, metrics: &Metrics) {
    let Some(checker) = cluster.health_checker.clone() else {
        return;
    };
    let label = |result: &str| {
        metrics
            .health_checks
            .get_or_create(&HealthLabels {
                cluster: cluster.name.to_string(),
                result: result.into(),
            })
            .clone()
    };
    let (passes, failures) = (label("pass"), label("fail"));
    for (index, endpoint) in cluster.subsets[0].endpoints.iter().enumerate() {
        let (passes, failures) = (passes.clone(), failures.clone());
        let weak: Weak<Cluster> = Arc::downgrade(cluster);
        let address = endpoint.address;
        let checker = checker.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let jitter = checker.interval.mul_f64(0.9 + fastrand::f64() * 0.2);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(jitter) => {}
                }
                let result = tokio::time::timeout(checker.timeout, checker.probe.probe(address))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {:?}", checker.timeout)));
                if result.is_ok() {
                    passes.inc();
                } else {
                    failures.inc();
                }
                let Some(cluster) = weak.upgrade() else {
                    return;
                };
                let Some(endpoint) = cluster.subsets[0].endpoints.get(index) else {
                    return;
                };
                let changed = endpoint.health.record_check(
                    result.is_ok(),
                    checker.healthy_threshold,
                    checker.unhealthy_threshold,
                );
                if changed {
                    match &result {
                        Ok(()) => {
                            info!(cluster = %cluster.name, %address, "health check: endpoint is healthy again")
                        }
                        Err(why) => {
                            warn!(cluster = %cluster.name, %address, %why, "health check: endpoint is unhealthy")
                        }
                    }
                }
            }
        });
    }
}
