//! The feed between one running source and the clusters that use it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{DiscoveredEndpoint, DiscoverySource};
use crate::metrics::{DiscoveryLabels, Metrics};

/// A published endpoint list.
pub type EndpointList = Arc<[DiscoveredEndpoint]>;

/// Where a source stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Nothing published and nothing failed yet.
    Starting,
    /// The last attempt succeeded.
    Ok,
    /// The last attempt failed; the last published list stays in use.
    Failing,
}

/// What `/clusters` shows of a source.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedStatus {
    /// The source kind.
    pub source: &'static str,
    /// Where it stands.
    pub state: SourceState,
    /// Endpoints in the last published list.
    pub endpoints: usize,
    /// When a list was last published (seconds since the Unix epoch).
    pub last_update: Option<u64>,
    /// The last failure, kept until the next success.
    pub last_error: Option<String>,
    /// Lists published that changed something.
    pub updates: u64,
    /// Failed attempts.
    pub failures: u64,
}

struct Shared {
    list: watch::Sender<Option<EndpointList>>,
    status: Mutex<FeedStatus>,
    max_endpoints: usize,
    counters: std::sync::OnceLock<(Counter, Counter)>,
    name: String,
}

/// One source's findings, shared by every cluster (of this and later
/// config versions) whose `discovery:` section is the same.
pub struct Feed {
    shared: Arc<Shared>,
    source: Arc<dyn DiscoverySource>,
    key: String,
    started: AtomicBool,
    stop: CancellationToken,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("source", &self.source.kind())
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Feed {
    /// A feed of `source`, not started; `key` identifies its config (a
    /// reload with the same key keeps the feed); lists longer than
    /// `max_endpoints` are cut to that length.
    pub fn new(
        cluster: &str,
        source: Arc<dyn DiscoverySource>,
        key: String,
        max_endpoints: usize,
    ) -> Self {
        let (list, _) = watch::channel(None);
        Self {
            shared: Arc::new(Shared {
                list,
                status: Mutex::new(FeedStatus {
                    source: source.kind(),
                    state: SourceState::Starting,
                    endpoints: 0,
                    last_update: None,
                    last_error: None,
                    updates: 0,
                    failures: 0,
                }),
                max_endpoints,
                counters: std::sync::OnceLock::new(),
                name: cluster.to_string(),
            }),
            source,
            key,
            started: AtomicBool::new(false),
            stop: CancellationToken::new(),
        }
    }

    /// The config it was built from.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The source kind.
    pub fn kind(&self) -> &'static str {
        self.source.kind()
    }

    /// The last published list, if any.
    pub fn latest(&self) -> Option<EndpointList> {
        self.shared.list.borrow().clone()
    }

    /// Lists as they are published.
    pub fn subscribe(&self) -> watch::Receiver<Option<EndpointList>> {
        self.shared.list.subscribe()
    }

    /// Where the source stands.
    pub fn status(&self) -> FeedStatus {
        self.shared
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Starts the source task, once; later calls do nothing. It stops when
    /// the feed is dropped (no cluster uses it any more) or on `shutdown`.
    pub fn start(&self, metrics: &Metrics, shutdown: &CancellationToken) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let counter = |result: &str| {
            metrics
                .discovery_updates
                .get_or_create(&DiscoveryLabels {
                    cluster: self.shared.name.clone(),
                    source: self.source.kind().into(),
                    result: result.into(),
                })
                .clone()
        };
        let _ = self.shared.counters.set((counter("ok"), counter("error")));
        let stop = self.stop.clone();
        let shutdown = shutdown.clone();
        // Shutdown stops the source too; this task ends with the feed either way.
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => stop.cancel(),
                _ = stop.cancelled() => {}
            }
        });
        let writer = FeedWriter {
            shared: self.shared.clone(),
            stop: self.stop.clone(),
        };
        tokio::spawn(self.source.clone().run(writer));
    }
}

/// What a running source publishes through.
pub struct FeedWriter {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl std::fmt::Debug for FeedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedWriter")
            .field("cluster", &self.shared.name)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl FeedWriter {
    /// A writer for tests and embedders, not tied to a started feed.
    pub fn of(feed: &Feed) -> Self {
        Self {
            shared: feed.shared.clone(),
            stop: feed.stop.clone(),
        }
    }

    /// The cluster the source feeds (for logs).
    pub fn cluster(&self) -> &str {
        &self.shared.name
    }

    /// Resolves when the source must stop.
    pub async fn cancelled(&self) {
        self.stop.cancelled().await
    }

    /// Whether the source must stop.
    pub fn is_cancelled(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Publishes the whole current list. A list equal to the last one
    /// counts as a success but wakes no cluster.
    pub fn publish(&self, mut list: Vec<DiscoveredEndpoint>) {
        if list.len() > self.shared.max_endpoints {
            warn!(
                cluster = %self.shared.name,
                found = list.len(),
                max = self.shared.max_endpoints,
                "discovery found more endpoints than max_endpoints; the rest are ignored"
            );
            list.truncate(self.shared.max_endpoints);
        }
        let count = list.len();
        let changed = self.shared.list.send_if_modified(|current| {
            if current.as_deref() == Some(&list[..]) {
                return false;
            }
            *current = Some(list.into());
            true
        });
        self.succeeded(Some(count), changed);
    }

    /// Records a successful attempt that found the list unchanged (an HTTP
    /// 304, say): the source is healthy again, the list stays.
    pub fn unchanged(&self) {
        self.succeeded(None, false);
    }

    fn succeeded(&self, count: Option<usize>, changed: bool) {
        if let Some((ok, _)) = self.shared.counters.get() {
            ok.inc();
        }
        let mut status = self.shared.status.lock().unwrap_or_else(|p| p.into_inner());
        let recovered = status.state == SourceState::Failing;
        status.state = SourceState::Ok;
        if let Some(count) = count {
            status.endpoints = count;
        }
        status.last_update = Some(now_secs());
        status.last_error = None;
        if changed {
            status.updates += 1;
        }
        let count = status.endpoints;
        drop(status);
        if recovered {
            info!(cluster = %self.shared.name, endpoints = count, "discovery recovered");
        }
    }

    /// Records a failed attempt: the last list stays in use.
    pub fn failed(&self, why: impl std::fmt::Display) {
        if let Some((_, error)) = self.shared.counters.get() {
            error.inc();
        }
        let why = why.to_string();
        let mut status = self.shared.status.lock().unwrap_or_else(|p| p.into_inner());
        let first = status.state != SourceState::Failing;
        status.state = SourceState::Failing;
        status.failures += 1;
        status.last_error = Some(why.clone());
        let kept = status.endpoints;
        drop(status);
        if first {
            warn!(cluster = %self.shared.name, error = %why, kept, "discovery failed; keeping the last known endpoints");
        }
    }
}
