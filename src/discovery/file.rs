//! Endpoints from a file (YAML or JSON) that another tool writes, re-read
//! when its modification time or size changes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metaproxy_core::config::ConfigDuration;
use metaproxy_core::discovery::{
    DiscoveryContext, DiscoveryError, DiscoveryFactory, DiscoverySource, FeedWriter, SourceFuture,
};
use serde::Deserialize;
use tracing::warn;

use super::endpoint_list::parse_endpoint_list;

/// Largest endpoint file read.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    path: PathBuf,
    /// How often the file's stamp is checked (default 1s).
    #[serde(default)]
    interval: Option<ConfigDuration>,
}

/// Builds [`FileSource`]s.
pub(super) struct FileFactory;

impl DiscoveryFactory for FileFactory {
    fn name(&self) -> &'static str {
        "file"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        context: &DiscoveryContext,
    ) -> Result<Arc<dyn DiscoverySource>, DiscoveryError> {
        let s: FileSettings = super::settings("file", config)?;
        let path = match &context.base_dir {
            Some(dir) if s.path.is_relative() => dir.join(&s.path),
            _ => s.path,
        };
        Ok(Arc::new(FileSource {
            path,
            interval: s.interval.map_or(Duration::from_secs(1), |d| d.get()),
        }))
    }
}

/// Watches one file.
#[derive(Debug)]
struct FileSource {
    path: PathBuf,
    interval: Duration,
}

impl FileSource {
    fn stamp(&self) -> std::io::Result<(std::time::SystemTime, u64)> {
        let meta = std::fs::metadata(&self.path)?;
        Ok((meta.modified()?, meta.len()))
    }

    fn read(&self, feed: &FeedWriter) -> Result<(), String> {
        let (_, len) = self.stamp().map_err(|e| e.to_string())?;
        if len > MAX_FILE_BYTES {
            return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| e.to_string())?;
        let (list, skipped) = parse_endpoint_list(&text).map_err(|e| e.to_string())?;
        if skipped > 0 {
            warn!(cluster = feed.cluster(), skipped, file = %self.path.display(), "skipped endpoints without an ip:port address");
        }
        feed.publish(list);
        Ok(())
    }
}

impl DiscoverySource for FileSource {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn run(self: Arc<Self>, feed: FeedWriter) -> SourceFuture {
        Box::pin(async move {
            let mut seen = None;
            loop {
                let stamp = self.stamp().ok();
                if stamp.is_none() || stamp != seen {
                    match self.read(&feed) {
                        Ok(()) => seen = stamp,
                        Err(e) => {
                            feed.failed(format!("reading {}: {e}", self.path.display()));
                            seen = None;
                        }
                    }
                }
                tokio::select! {
                    _ = feed.cancelled() => return,
                    _ = tokio::time::sleep(self.interval) => {}
                }
            }
        })
    }
}
