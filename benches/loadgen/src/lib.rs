//! Benchmark tools for metaproxy.
//!
//! - `loadgen`: a load generator for Dubbo (hessian2), Thrift (framed or
//!   THeader, binary or compact) and HTTP/1.1: N connections × M requests in
//!   flight, closed loop or open loop at a fixed rate, for a duration or a
//!   request count; reports requests/s, errors and HDR-histogram
//!   percentiles as text or JSON.
//! - `echo-upstream`: echo servers for the same protocols (plus h2c), small
//!   and fast, for the benchmarks only (correctness tests use real peers).
//!
//! Requests are built once and only their ids patched; reads and writes
//! reuse one buffer per connection, so the tools stay far from being the
//! bottleneck (docs/benchmarks.md shows the direct numbers).

pub mod client;
pub mod echo;
pub mod hessian;
pub mod http1_wire;
pub mod idle;
pub mod proto;
pub mod report;
pub mod thrift_wire;

/// A deterministic ASCII payload of `len` bytes.
pub fn payload(len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|i| ALPHABET[i % ALPHABET.len()]).collect()
}

/// Parses `5s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {text:?} (use 5s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {text:?} (ms, s, m)")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("bad duration {text:?}"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("3").unwrap().as_secs(), 3);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert!(parse_duration("x").is_err());
        assert_eq!(payload(40).len(), 40);
    }
}
