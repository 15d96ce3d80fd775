//! Results of a run: counts, the latency histogram, and their text and
//! JSON renderings.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Counts and latencies of a run (or of one connection, before merging).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Successful answers inside the measured window.
    pub ok: u64,
    /// Every answer, warm-up and drain included (to divide a server's CPU time by).
    pub answered: u64,
    /// Error answers inside the window, plus requests lost with a connection.
    pub errors: u64,
    /// Requests that got no answer within the timeout.
    pub timeouts: u64,
    /// Failed connection attempts.
    pub connect_errors: u64,
    /// Connections lost (closed, reset, or sent bytes that do not parse).
    pub io_errors: u64,
    /// Answers to no pending request.
    pub unexpected: u64,
    /// Latency of successful answers, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Length of the measured window.
    pub elapsed: Duration,
}

impl Stats {
    /// Empty stats around `latency`.
    pub fn new(latency: Histogram<u64>) -> Self {
        Self {
            ok: 0,
            answered: 0,
            errors: 0,
            timeouts: 0,
            connect_errors: 0,
            io_errors: 0,
            unexpected: 0,
            latency,
            elapsed: Duration::ZERO,
        }
    }

    /// Adds `other`'s counts and latencies.
    pub fn merge(&mut self, other: &Stats) {
        self.ok += other.ok;
        self.answered += other.answered;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.connect_errors += other.connect_errors;
        self.io_errors += other.io_errors;
        self.unexpected += other.unexpected;
        let _ = self.latency.add(&other.latency);
    }

    /// The summary to print.
    pub fn summary(&self, what: &Describe) -> Summary {
        let us = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        Summary {
            describe: what.clone(),
            seconds: secs,
            requests: self.ok,
            requests_per_sec: self.ok as f64 / secs,
            answered: self.answered,
            errors: self.errors,
            timeouts: self.timeouts,
            connect_errors: self.connect_errors,
            io_errors: self.io_errors,
            unexpected: self.unexpected,
            latency_us: Latency {
                mean: self.latency.mean() / 1000.0,
                p50: us(0.50),
                p90: us(0.90),
                p99: us(0.99),
                p999: us(0.999),
                max: self.latency.max() as f64 / 1000.0,
            },
        }
    }
}

/// What was run, echoed into the report.
#[derive(Debug, Clone, Serialize)]
pub struct Describe {
    /// Protocol label (`dubbo`, `thrift-framed-binary`, `http1`).
    pub protocol: String,
    /// Target address.
    pub address: String,
    /// Connections.
    pub connections: usize,
    /// Requests in flight per connection.
    pub in_flight: usize,
    /// Payload bytes per request.
    pub payload: usize,
    /// Open-loop rate (requests/s), if any.
    pub rate: Option<f64>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

/// A run's report, printed as text or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The run.
    #[serde(flatten)]
    pub describe: Describe,
    /// Measured window.
    pub seconds: f64,
    /// Successful answers in the window.
    pub requests: u64,
    /// `requests / seconds`.
    pub requests_per_sec: f64,
    /// Every answer, warm-up and drain included.
    pub answered: u64,
    /// Error answers and requests lost with a connection.
    pub errors: u64,
    /// Requests unanswered within the timeout.
    pub timeouts: u64,
    /// Failed connection attempts.
    pub connect_errors: u64,
    /// Connections lost.
    pub io_errors: u64,
    /// Answers that matched no request.
    pub unexpected: u64,
    /// Latency of successful answers.
    pub latency_us: Latency,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.describe;
        let mode = match d.rate {
            Some(r) => format!("open loop at {r:.0} req/s"),
            None => "closed loop".to_string(),
        };
        writeln!(
            f,
            "{} -> {}: {} connections x {} in flight, {} B payload, {mode}",
            d.protocol, d.address, d.connections, d.in_flight, d.payload
        )?;
        writeln!(
            f,
            "  {:.0} req/s ({} ok in {:.2}s), errors {}, timeouts {}, connect errors {}, connections lost {}",
            self.requests_per_sec,
            self.requests,
            self.seconds,
            self.errors,
            self.timeouts,
            self.connect_errors,
            self.io_errors
        )?;
        let l = &self.latency_us;
        write!(
            f,
            "  latency us: mean {:.1}  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
            l.mean, l.p50, l.p90, l.p99, l.p999, l.max
        )
    }
}
