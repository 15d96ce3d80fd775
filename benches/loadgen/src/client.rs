//! The load loop: N connections, each keeping up to M requests in flight,
//! closed loop (send when an answer arrives) or open loop at a fixed rate
//! (latency measured from each request's scheduled time, so a stalled
//! server cannot hide its queue: no coordinated omission).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::proto::ClientProto;
use crate::report::Stats;

/// What one load run does.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Target address.
    pub addr: SocketAddr,
    /// Connections.
    pub connections: usize,
    /// Requests in flight per connection (closed loop), or the most allowed (open loop).
    pub in_flight: usize,
    /// Measured window after the warm-up (ignored when `requests` is set).
    pub duration: Duration,
    /// Run until this many requests have been answered (over all connections), without warm-up.
    pub requests: Option<u64>,
    /// Time before the measured window whose answers are not counted.
    pub warmup: Duration,
    /// Open loop: requests per second over all connections.
    pub rate: Option<f64>,
    /// Longest wait for an answer before the connection is counted failed and reopened.
    pub timeout: Duration,
}

/// A new histogram of nanoseconds, 1 ns .. 100 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Runs the load and returns the merged statistics.
pub async fn run(cfg: RunConfig, make: impl Fn() -> Box<dyn ClientProto>) -> Stats {
    let cfg = Arc::new(cfg);
    let t0 = Instant::now();
    let per_conn = cfg.requests.map(|n| {
        let c = cfg.connections as u64;
        (0..c).map(move |i| n / c + u64::from(i < n % c))
    });
    let mut quotas: Vec<Option<u64>> = match per_conn {
        Some(q) => q.map(Some).collect(),
        None => vec![None; cfg.connections],
    };
    let mut tasks = Vec::with_capacity(cfg.connections);
    for (i, quota) in quotas.drain(..).enumerate() {
        let (cfg, proto) = (cfg.clone(), make());
        tasks.push(tokio::spawn(connection(i, cfg, proto, t0, quota)));
    }
    let mut total = Stats::new(histogram());
    for t in tasks {
        if let Ok(s) = t.await {
            total.merge(&s);
        }
    }
    total.elapsed = if cfg.requests.is_some() {
        t0.elapsed()
    } else {
        cfg.duration
    };
    total
}

/// One connection's loop.
async fn connection(
    index: usize,
    cfg: Arc<RunConfig>,
    mut proto: Box<dyn ClientProto>,
    t0: Instant,
    mut quota: Option<u64>,
) -> Stats {
    let mut stats = Stats::new(histogram());
    let counting = quota.is_some();
    let measure_from = if counting { t0 } else { t0 + cfg.warmup };
    let end = if counting {
        None
    } else {
        Some(measure_from + cfg.duration)
    };
    let interval = cfg
        .rate
        .map(|r| Duration::from_secs_f64(cfg.connections as f64 / r.max(1e-9)));
    // Spread the connections' schedules over one interval.
    let mut next_due = t0
        + interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(index as f64 / cfg.connections as f64)
        });
    let mut wbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    // (request id, time it counts from), oldest first.
    let mut pending: VecDeque<(u32, Instant)> = VecDeque::with_capacity(cfg.in_flight);
    let mut next_id: u32 = 1;
    // Open loop: since when every slot has been taken while a send was due,
    // and the last such stretch.
    let mut full_since: Option<Instant> = None;
    let mut last_full: Option<(Instant, Instant)> = None;
    'reconnect: loop {
        if end.is_some_and(|e| Instant::now() >= e) || quota == Some(0) {
            return stats;
        }
        let mut stream = match TcpStream::connect(cfg.addr).await {
            Ok(s) => s,
            Err(_) => {
                stats.connect_errors += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue 'reconnect;
            }
        };
        let _ = stream.set_nodelay(true);
        rbuf.clear();
        pending.clear();
        let mut last_progress = Instant::now();
        loop {
            let now = Instant::now();
            let stopping = end.is_some_and(|e| now >= e);
            if pending.is_empty() {
                last_progress = now;
            }
            // Send what the loop allows.
            while !stopping
                && pending.len() < cfg.in_flight
                && quota.is_none_or(|q| q > pending.len() as u64)
            {
                let counts_from = match interval {
                    Some(i) => {
                        if next_due > now {
                            break;
                        }
                        let due = next_due;
                        next_due += i;
                        // Late because every slot was taken: the server's
                        // delay, counted from the schedule. Late only by
                        // this loop's own timer (1 ms ticks): not counted.
                        let was_full = full_since.is_some()
                            || last_full.is_some_and(|(a, b)| due >= a && due <= b);
                        if was_full { due } else { now }
                    }
                    None => now,
                };
                proto.write_request(next_id, &mut wbuf);
                pending.push_back((next_id, counts_from));
                next_id = next_id.wrapping_add(1).max(1);
            }
            if interval.is_some()
                && pending.len() >= cfg.in_flight
                && next_due <= now
                && full_since.is_none()
            {
                full_since = Some(next_due);
            }
            if !wbuf.is_empty() {
                if stream.write_all(&wbuf).await.is_err() {
                    wbuf.clear();
                    stats.io_errors += 1;
                    continue 'reconnect;
                }
                wbuf.clear();
            }
            if pending.is_empty() && (stopping || quota == Some(0)) {
                return stats;
            }
            // Wait for bytes, the next scheduled send, the end, or a timeout.
            let mut wake = last_progress + cfg.timeout;
            if let Some(e) = end {
                wake = wake.min(if stopping {
                    e + cfg.timeout.min(Duration::from_secs(1))
                } else {
                    e
                });
            }
            if interval.is_some() && pending.len() < cfg.in_flight && !stopping {
                wake = wake.min(next_due);
            }
            let read = tokio::select! {
                r = stream.read_buf(&mut rbuf) => Some(r),
                _ = tokio::time::sleep_until(wake) => None,
            };
            let now = Instant::now();
            match read {
                Some(Ok(0)) | Some(Err(_)) => {
                    stats.io_errors += 1;
                    if !stopping {
                        stats.errors += pending.len() as u64;
                    }
                    continue 'reconnect;
                }
                Some(Ok(_)) => {}
                None => {
                    if stopping
                        && end.is_some_and(|e| now >= e + cfg.timeout.min(Duration::from_secs(1)))
                    {
                        return stats;
                    }
                    if !pending.is_empty() && now >= last_progress + cfg.timeout {
                        stats.timeouts += pending.len() as u64;
                        continue 'reconnect;
                    }
                    continue;
                }
            }
            // Take every complete answer.
            loop {
                let r = match proto.parse_response(&rbuf) {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(_) => {
                        stats.io_errors += 1;
                        stats.errors += pending.len() as u64;
                        continue 'reconnect;
                    }
                };
                rbuf.advance(r.len);
                last_progress = now;
                let slot = match r.id {
                    None => Some(0),
                    Some(id) => pending.iter().position(|(p, _)| *p == id),
                };
                let Some((_, from)) = slot.and_then(|i| pending.remove(i)) else {
                    stats.unexpected += 1;
                    continue;
                };
                if let Some(since) = full_since.take() {
                    last_full = Some((since, now));
                }
                stats.answered += 1;
                if let Some(q) = quota.as_mut() {
                    *q -= 1;
                }
                let in_window = now >= measure_from && end.is_none_or(|e| now <= e);
                if !in_window {
                    continue;
                }
                if r.ok {
                    stats.ok += 1;
                    let ns = now.saturating_duration_since(from).as_nanos() as u64;
                    stats.latency.saturating_record(ns.max(1));
                } else {
                    stats.errors += 1;
                }
            }
        }
    }
}
