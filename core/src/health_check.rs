//! Active health checks: a probe per endpoint every interval (with jitter),
//! verdicts flipped after `unhealthy_threshold` failures or
//! `healthy_threshold` passes in a row. Probes: a TCP connect, a codec's
//! probe frame ([`CodecProbe`]), or any probe a protocol makes
//! ([`crate::registry::ProbeMaker`]).

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use crate::cluster::checker::{HealthChecker, Probe, ProbeError, ProbeFuture, ProbeTarget};
use crate::cluster::{Cluster, Endpoint};
use crate::codec::{Codec, Decoder};
use crate::config::HealthCheckConfig;
use crate::metrics::{HealthLabels, Metrics};
use crate::upstream::UpstreamStream;

impl ProbeTarget {
    /// Opens a connection as the cluster's traffic would (TCP, then TLS).
    /// The caller bounds the time (the check's timeout).
    pub async fn connect(&self) -> Result<UpstreamStream, ProbeError> {
        crate::upstream::connect(self.address, UNBOUNDED, self.tls.as_deref())
            .await
            .map_err(ProbeError::Connect)
    }
}

/// The connect step's own bound inside a probe (the check's timeout is
/// the real one).
const UNBOUNDED: Duration = Duration::from_secs(3600);

/// Healthy when a TCP connection opens.
#[derive(Debug)]
pub struct TcpProbe;

impl Probe for TcpProbe {
    fn probe(&self, target: ProbeTarget) -> ProbeFuture {
        Box::pin(async move { target.connect().await.map(drop) })
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
    fn probe(&self, target: ProbeTarget) -> ProbeFuture {
        let codec = self.codec.clone();
        let frame = self.frame.clone();
        Box::pin(async move {
            let mut s = target.connect().await?;
            s.write_all(&frame).await.map_err(ProbeError::io("write"))?;
            let mut decoder = codec.decoder();
            let mut buf = BytesMut::with_capacity(1024);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(answer)) => {
                        return if codec.health_check_passed(&answer) {
                            Ok(())
                        } else {
                            Err(ProbeError::Unhealthy(format!("{:?} answer", answer.kind)))
                        };
                    }
                    Ok(None) => {}
                    Err(e) => return Err(ProbeError::BadAnswer(e.to_string())),
                }
                let n = s.read_buf(&mut buf).await.map_err(ProbeError::io("read"))?;
                if n == 0 {
                    return Err(ProbeError::Closed);
                }
            }
        })
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
    let endpoints = cluster.endpoints().all().to_vec();
    spawn_endpoint_checks(cluster, &endpoints, shutdown, metrics);
}

/// Checks each of `endpoints` (members of `cluster`) until shutdown, until
/// the cluster is dropped, or until discovery removes the endpoint.
pub fn spawn_endpoint_checks(
    cluster: &Arc<Cluster>,
    endpoints: &[Arc<Endpoint>],
    shutdown: CancellationToken,
    metrics: &Metrics,
) {
    let Some(checker) = cluster.parts.health_checker.clone() else {
        return;
    };
    let label = |result: &str| {
        metrics
            .health_checks
            .get_or_create(&HealthLabels {
                cluster: cluster.parts.name.to_string(),
                result: result.into(),
            })
            .clone()
    };
    let (passes, failures) = (label("pass"), label("fail"));
    let retired = cluster.retired();
    for endpoint in endpoints {
        let (passes, failures) = (passes.clone(), failures.clone());
        let weak: Weak<Endpoint> = Arc::downgrade(endpoint);
        let name = cluster.parts.name.clone();
        let target = ProbeTarget {
            address: endpoint.address,
            tls: cluster.parts.pool.tls.clone(),
        };
        let checker = checker.clone();
        let shutdown = shutdown.clone();
        let retired = retired.clone();
        tokio::spawn(async move {
            loop {
                let jitter = checker.interval.mul_f64(0.9 + fastrand::f64() * 0.2);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = retired.cancelled() => return,
                    _ = tokio::time::sleep(jitter) => {}
                }
                let result =
                    tokio::time::timeout(checker.timeout, checker.probe.probe(target.clone()))
                        .await
                        .unwrap_or(Err(ProbeError::Timeout(checker.timeout)));
                if retired.is_cancelled() {
                    return;
                }
                let Some(endpoint) = weak.upgrade().filter(|e| !e.is_removed()) else {
                    return;
                };
                if result.is_ok() {
                    passes.inc();
                } else {
                    failures.inc();
                }
                let changed = endpoint.health.record_check(
                    result.is_ok(),
                    checker.healthy_threshold,
                    checker.unhealthy_threshold,
                );
                if changed {
                    match &result {
                        Ok(()) => {
                            info!(cluster = %name, address = %target.address, "health check: endpoint is healthy again")
                        }
                        Err(why) => {
                            warn!(cluster = %name, address = %target.address, %why, "health check: endpoint is unhealthy")
                        }
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::testing;
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    use tokio::time::Instant;

    const PASS: u8 = 0;
    const FAIL: u8 = 1;
    const HANG: u8 = 2;

    /// A probe whose answer the test sets, counting its calls.
    struct Scripted {
        mode: Arc<AtomicU8>,
        calls: Arc<AtomicUsize>,
    }

    impl Probe for Scripted {
        fn probe(&self, _target: ProbeTarget) -> ProbeFuture {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mode = self.mode.load(Ordering::SeqCst);
            Box::pin(async move {
                match mode {
                    PASS => Ok(()),
                    FAIL => Err(ProbeError::Unhealthy("down".into())),
                    _ => std::future::pending().await,
                }
            })
        }
    }

    /// Waits (on the paused clock) until the probe ran `n` times and its
    /// verdict was recorded (same task poll); returns when that was.
    async fn after_check(calls: &AtomicUsize, n: usize) -> Instant {
        while calls.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Instant::now()
    }

    /// The check loop on tokio's paused clock: intervals with jitter,
    /// thresholds in both directions, the timeout counted as a failure.
    #[tokio::test(start_paused = true)]
    async fn verdicts_flip_after_threshold_checks_in_a_row() {
        let mode = Arc::new(AtomicU8::new(FAIL));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut cluster = testing::cluster(&[0]);
        cluster.parts.health_checker = Some(HealthChecker {
            probe: Arc::new(Scripted {
                mode: mode.clone(),
                calls: calls.clone(),
            }),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            unhealthy_threshold: 3,
            healthy_threshold: 2,
        });
        let cluster = Arc::new(cluster);
        let endpoint = cluster.endpoints().all()[0].clone();
        let shutdown = CancellationToken::new();
        let start = Instant::now();
        spawn_health_checks(&cluster, shutdown.clone(), &Metrics::default());

        let mut last = start;
        let mut gap = |at: Instant| {
            let d = at - last;
            last = at;
            d
        };
        // Two failures: still healthy; the third flips it.
        for n in 1..=2 {
            let at = after_check(&calls, n).await;
            let d = gap(at);
            assert!(
                (Duration::from_millis(4480)..=Duration::from_millis(5520)).contains(&d),
                "check {n} came {d:?} after the previous one (5s ± 10%)"
            );
            assert!(!endpoint.health.check_failed(), "after {n} failure(s)");
        }
        after_check(&calls, 3).await;
        assert!(endpoint.health.check_failed(), "three failures in a row");
        assert!(!endpoint.health.is_available(crate::cluster::now_ms()));

        // One pass is not enough to come back, two are.
        mode.store(PASS, Ordering::SeqCst);
        after_check(&calls, 4).await;
        assert!(endpoint.health.check_failed(), "one pass of two");
        after_check(&calls, 5).await;
        assert!(!endpoint.health.check_failed(), "two passes in a row");

        // A probe that never answers fails at the timeout; a pass in between
        // restarts the streak.
        mode.store(HANG, Ordering::SeqCst);
        after_check(&calls, 6).await;
        mode.store(PASS, Ordering::SeqCst);
        after_check(&calls, 7).await;
        mode.store(HANG, Ordering::SeqCst);
        let began = after_check(&calls, 8).await;
        after_check(&calls, 10).await;
        assert!(
            !endpoint.health.check_failed(),
            "the timeout has not passed yet"
        );
        tokio::time::sleep(Duration::from_millis(1010)).await;
        assert!(endpoint.health.check_failed(), "three timeouts in a row");
        assert!(
            Instant::now() - began >= Duration::from_secs(2) * 45 / 10 + Duration::from_secs(1)
        );
        shutdown.cancel();
    }
}
