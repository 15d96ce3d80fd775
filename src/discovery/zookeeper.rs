//! Providers from a Dubbo registry in ZooKeeper: the children of
//! `/<root>/<interface>/providers`, watched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metaproxy_core::config::ConfigDuration;
use metaproxy_core::discovery::{
    DiscoveredEndpoint, DiscoveryContext, DiscoveryError, DiscoveryFactory, DiscoverySource,
    FeedWriter, SourceFuture,
};
use serde::Deserialize;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::backoff::{Backoff, connect_zookeeper, wait_or_stop};
use super::provider_nodes::ProviderNodes;

/// The `zookeeper:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZookeeperSettings {
    /// `host:port` of the ensemble's servers.
    servers: Vec<String>,
    /// The Dubbo interface whose providers are read.
    interface: String,
    /// The registry root (Dubbo's default `/dubbo`).
    #[serde(default = "default_root")]
    root: String,
    /// ZooKeeper session timeout (default 10s).
    #[serde(default)]
    session_timeout: Option<ConfigDuration>,
    /// URL schemes taken (default `[dubbo]`).
    #[serde(default = "default_protocols")]
    protocols: Vec<String>,
    /// Shortest time between two reads of the provider list (default
    /// 100ms): a lone change is read at once, a burst in batches.
    #[serde(default)]
    min_interval: Option<ConfigDuration>,
}

fn default_root() -> String {
    "/dubbo".into()
}

fn default_protocols() -> Vec<String> {
    vec!["dubbo".into()]
}

/// Builds [`ZookeeperSource`]s.
pub(super) struct ZookeeperFactory;

impl DiscoveryFactory for ZookeeperFactory {
    fn name(&self) -> &'static str {
        "zookeeper"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        _context: &DiscoveryContext,
    ) -> Result<Arc<dyn DiscoverySource>, DiscoveryError> {
        let s: ZookeeperSettings = super::settings("zookeeper", config)?;
        if s.servers.is_empty() {
            return Err(DiscoveryError::invalid("zookeeper", "`servers` is empty"));
        }
        if s.interface.is_empty() || s.interface.contains('/') {
            return Err(DiscoveryError::invalid(
                "zookeeper",
                "`interface` is a Dubbo interface name such as org.apache.dubbo.samples.DemoService",
            ));
        }
        if !s.root.starts_with('/') {
            return Err(DiscoveryError::invalid(
                "zookeeper",
                "`root` starts with `/`",
            ));
        }
        let root = s.root.trim_end_matches('/');
        Ok(Arc::new(ZookeeperSource {
            connect: s.servers.join(","),
            path: format!("{root}/{}/providers", s.interface),
            interface: s.interface.clone(),
            session_timeout: s
                .session_timeout
                .map_or(Duration::from_secs(10), |d| d.get()),
            protocols: s.protocols,
            min_interval: s.min_interval.map_or(DEFAULT_MIN_INTERVAL, |d| d.get()),
        }))
    }
}

/// Watches one interface's providers.
#[derive(Debug)]
pub(super) struct ZookeeperSource {
    connect: String,
    path: String,
    interface: String,
    session_timeout: Duration,
    protocols: Vec<String>,
    min_interval: Duration,
}

/// Default shortest time between two reads of the provider list.
const DEFAULT_MIN_INTERVAL: Duration = Duration::from_millis(100);

/// How one watch round ended.
enum Round {
    /// The session is gone: connect again.
    Reconnect,
    /// The source must stop.
    Stop,
}

impl DiscoverySource for ZookeeperSource {
    fn kind(&self) -> &'static str {
        "zookeeper"
    }

    fn run(self: Arc<Self>, feed: FeedWriter) -> SourceFuture {
        Box::pin(async move {
            let mut backoff = Backoff::new(Duration::from_secs(5));
            // Kept across sessions: node names are the whole provider URLs.
            let mut nodes = ProviderNodes::new(&self.interface, &self.protocols);
            loop {
                let Some(client) =
                    connect_zookeeper(&self.connect, self.session_timeout, feed.cancelled()).await
                else {
                    return;
                };
                let client = match client {
                    Ok(c) => c,
                    Err(e) => {
                        feed.failed(format!("connecting to ZooKeeper {}: {e}", self.connect));
                        if sleep_or_stop(&feed, backoff.delay()).await {
                            return;
                        }
                        continue;
                    }
                };
                info!(cluster = feed.cluster(), servers = %self.connect, path = %self.path, "watching Dubbo providers in ZooKeeper");
                match self.watch(&client, &feed, &mut backoff, &mut nodes).await {
                    Round::Stop => return,
                    Round::Reconnect => {
                        feed.failed("ZooKeeper session expired; reconnecting");
                    }
                }
            }
        })
    }
}

async fn sleep_or_stop(feed: &FeedWriter, delay: Duration) -> bool {
    wait_or_stop(delay, feed.cancelled()).await
}

impl ZookeeperSource {
    /// Lists and watches until the session ends or the feed stops.
    async fn watch(
        &self,
        client: &zk::Client,
        feed: &FeedWriter,
        backoff: &mut Backoff,
        nodes: &mut ProviderNodes,
    ) -> Round {
        let mut states = client.state_watcher();
        let mut last_list: Option<Instant> = None;
        loop {
            if client.state().is_terminated() {
                return Round::Reconnect;
            }
            // A burst of changes (a fleet registering at once) is read in
            // lists at most `min_interval` apart; a lone change at once.
            if let Some(wait) = last_list.and_then(|at| self.min_interval.checked_sub(at.elapsed()))
                && wait_or_stop(wait, feed.cancelled()).await
            {
                return Round::Stop;
            }
            last_list = Some(Instant::now());
            let listed = tokio::select! {
                _ = feed.cancelled() => return Round::Stop,
                l = client.list_and_watch_children(&self.path) => l,
            };
            let watcher = match listed {
                Ok((children, watcher)) => {
                    if let Some(list) = self.providers(feed, nodes, children).await {
                        feed.publish(list);
                        backoff.reset();
                    }
                    Some(watcher)
                }
                Err(zk::Error::NoNode) => {
                    // No provider has registered yet: wait for the node.
                    match client.check_and_watch_stat(&self.path).await {
                        Ok((Some(_), _)) => continue,
                        Ok((None, exists)) => {
                            feed.publish(Vec::new());
                            backoff.reset();
                            tokio::select! {
                                _ = feed.cancelled() => return Round::Stop,
                                _ = exists.changed() => continue,
                            }
                        }
                        Err(e) => {
                            feed.failed(format!("watching {}: {e}", self.path));
                            None
                        }
                    }
                }
                Err(e) => {
                    feed.failed(format!("listing {}: {e}", self.path));
                    None
                }
            };
            let Some(watcher) = watcher else {
                if sleep_or_stop(feed, backoff.delay()).await {
                    return Round::Stop;
                }
                continue;
            };
            // Wait for a change of the children, or of the session: while
            // disconnected the last list stays in use; on reconnection the
            // server replays what changed and the list is read again.
            let changed = watcher.changed();
            tokio::pin!(changed);
            loop {
                tokio::select! {
                    _ = feed.cancelled() => return Round::Stop,
                    event = &mut changed => {
                        debug!(cluster = feed.cluster(), ?event.event_type, "providers changed");
                        if event.session_state.is_terminated() {
                            return Round::Reconnect;
                        }
                        break;
                    }
                    state = states.changed() => {
                        if state.is_terminated() {
                            return Round::Reconnect;
                        }
                        if state == zk::SessionState::Disconnected {
                            feed.failed(format!("disconnected from ZooKeeper {}", self.connect));
                        } else if state == zk::SessionState::SyncConnected {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// The serving providers among `children`, malformed ones and this
    /// proxy's own registrations skipped. Only nodes not read before are
    /// parsed; a long list is read off the request workers.
    async fn providers(
        &self,
        feed: &FeedWriter,
        nodes: &mut ProviderNodes,
        children: Vec<String>,
    ) -> Option<Vec<DiscoveredEndpoint>> {
        let list = if children.len() > INLINE_READ_LIMIT {
            let mut taken = std::mem::take(nodes);
            let read = tokio::task::spawn_blocking(move || {
                let list = taken.read(children);
                (taken, list)
            })
            .await;
            match read {
                Ok((back, list)) => {
                    *nodes = back;
                    list
                }
                Err(e) => {
                    *nodes = ProviderNodes::new(&self.interface, &self.protocols);
                    feed.failed(format!("reading the provider list: {e}"));
                    return None;
                }
            }
        } else {
            nodes.read(children)
        };
        if list.malformed > 0 {
            warn!(cluster = feed.cluster(), skipped = list.malformed, path = %self.path, "skipped malformed provider URLs");
        }
        Some(list.endpoints)
    }
}

/// Lists longer than this are read on a blocking thread.
const INLINE_READ_LIMIT: usize = 64;
