//! Access logs: one line per request, JSON or a `%placeholder%` template,
//! to stdout or a file, optionally sampled. The request path only formats
//! the line and hands it to a bounded queue; a writer task does the I/O, and
//! lines are dropped (and counted) rather than ever blocking a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tracing::warn;

use crate::metadata::MetadataView;

/// Lines queued before new ones are dropped.
const QUEUE: usize = 8192;

/// `access_log:` on a listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// `stdout` (default) or a file path (appended to).
    #[serde(default)]
    pub path: Option<String>,
    /// `json` (default) or a template with `%placeholders%`.
    #[serde(default)]
    pub format: Option<String>,
    /// Share of requests logged, 0.0-1.0 (default 1.0).
    #[serde(default)]
    pub sample: Option<f64>,
}

/// What one log line says.
#[derive(Debug)]
pub struct Entry<'a, V: MetadataView> {
    /// The request's metadata (and connection keys).
    pub metadata: &'a V,
    /// Listener name.
    pub listener: &'a str,
    /// Protocol.
    pub protocol: &'a str,
    /// Matched route, if any.
    pub route: Option<&'a str>,
    /// Target cluster, if any.
    pub cluster: Option<&'a str>,
    /// Endpoint of the last try, if any.
    pub upstream_host: Option<std::net::SocketAddr>,
    /// From decode to answer.
    pub duration: Duration,
    /// `success`, `error` (the upstream answered with an error), a local reply reason, or `oneway`.
    pub outcome: &'a str,
    /// The protocol's status of the answer, when it has one (`status` response metadata).
    pub status: Option<&'a str>,
}

enum Format {
    Json,
    Template(Vec<Part>),
}

enum Part {
    Text(String),
    Key(String),
}

/// A listener's access log.
pub struct AccessLog {
    format: Format,
    sample: f64,
    tx: mpsc::Sender<String>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("sample", &self.sample)
            .finish_non_exhaustive()
    }
}

/// Why an access log config was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccessLogError {
    /// A `%` in the format that no later `%` closes.
    #[error("access_log.format: unclosed `%` in `{0}`")]
    UnclosedField(String),
    /// `sample` outside 0.0..=1.0.
    #[error("access_log.sample is a share between 0.0 and 1.0, not {0}")]
    BadSample(f64),
}

impl AccessLog {
    /// Checks a config (for validation) without starting a writer.
    pub fn check(config: &AccessLogConfig) -> Result<(), AccessLogError> {
        parse_format(config.format.as_deref())?;
        if let Some(s) = config.sample
            && !(0.0..=1.0).contains(&s)
        {
            return Err(AccessLogError::BadSample(s));
        }
        Ok(())
    }

    /// Starts the writer task (needs a tokio runtime).
    pub fn start(config: &AccessLogConfig) -> Result<Self, AccessLogError> {
        let format = parse_format(config.format.as_deref())?;
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        let path = config.path.clone().unwrap_or_else(|| "stdout".into());
        tokio::spawn(async move {
            let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = if path == "stdout" {
                Box::new(tokio::io::stdout())
            } else {
                match tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .await
                {
                    Ok(f) => Box::new(f),
                    Err(e) => {
                        warn!(%path, error = %e, "cannot open the access log; lines are dropped");
                        while rx.recv().await.is_some() {}
                        return;
                    }
                }
            };
            let mut batch = String::new();
            while let Some(line) = rx.recv().await {
                batch.push_str(&line);
                while let Ok(more) = rx.try_recv() {
                    batch.push_str(&more);
                    if batch.len() > 64 * 1024 {
                        break;
                    }
                }
                if out.write_all(batch.as_bytes()).await.is_err() {
                    return;
                }
                let _ = out.flush().await;
                batch.clear();
            }
        });
        Ok(Self {
            format,
            sample: config.sample.unwrap_or(1.0),
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Logs one request (if sampled); never waits.
    pub fn log<V: MetadataView>(&self, e: &Entry<'_, V>) {
        if self.sample < 1.0 && fastrand::f64() >= self.sample {
            return;
        }
        let line = match &self.format {
            Format::Json => json_line(e),
            Format::Template(parts) => template_line(parts, e),
        };
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn parse_format(format: Option<&str>) -> Result<Format, AccessLogError> {
    let Some(text) = format.filter(|f| *f != "json") else {
        return Ok(Format::Json);
    };
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 1..];
        let end = after
            .find('%')
            .ok_or_else(|| AccessLogError::UnclosedField(text.to_string()))?;
        parts.push(if end == 0 {
            Part::Text("%".into())
        } else {
            Part::Key(after[..end].to_string())
        });
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    Ok(Format::Template(parts))
}

fn field<'a, V: MetadataView>(e: &'a Entry<'_, V>, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    use std::borrow::Cow;
    Some(match key {
        "start_time" | "time" => Cow::Owned(unix_seconds()),
        "listener" => Cow::Borrowed(e.listener),
        "protocol" => Cow::Borrowed(e.protocol),
        "route" => Cow::Borrowed(e.route?),
        "cluster" => Cow::Borrowed(e.cluster?),
        "upstream_host" => Cow::Owned(e.upstream_host?.to_string()),
        "duration_ms" => Cow::Owned(format!("{:.3}", e.duration.as_secs_f64() * 1000.0)),
        "outcome" => Cow::Borrowed(e.outcome),
        "response_code" | "status" => Cow::Borrowed(e.status?),
        other => Cow::Borrowed(e.metadata.lookup(other)?),
    })
}

fn unix_seconds() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", t.as_secs(), t.subsec_millis())
}

fn template_line<V: MetadataView>(parts: &[Part], e: &Entry<'_, V>) -> String {
    let mut line = String::with_capacity(128);
    for p in parts {
        match p {
            Part::Text(t) => line.push_str(t),
            Part::Key(k) => line.push_str(field(e, k).as_deref().unwrap_or("-")),
        }
    }
    line.push('\n');
    line
}

fn json_line<V: MetadataView>(e: &Entry<'_, V>) -> String {
    let mut obj = serde_json::Map::new();
    for key in [
        "time",
        "listener",
        "protocol",
        "service",
        "method",
        "route",
        "cluster",
        "upstream_host",
        "duration_ms",
        "outcome",
        "status",
        "source.ip",
        "request_id",
    ] {
        if let Some(v) = field(e, key) {
            obj.insert(key.to_string(), serde_json::Value::String(v.into_owned()));
        }
    }
    let mut line = serde_json::Value::Object(obj).to_string();
    line.push('\n');
    line
}
