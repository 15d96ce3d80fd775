//! Starting and stopping a proxy: bind every listener of a snapshot, run
//! their accept loops, drain on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::{ConfigErrors, LoadedConfig};
use crate::health_check::spawn_health_checks;
use crate::listener::{ListenerContext, run_accept_loop};
use crate::registry::Registry;
use crate::snapshot::Snapshot;

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config is invalid.
    #[error("invalid config:\n{0}")]
    Config(#[from] ConfigErrors),
    /// A listener could not bind its address.
    #[error("listener `{listener}` cannot bind {address}: {source}")]
    Bind {
        /// The listener.
        listener: String,
        /// The address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running proxy.
pub struct RunningProxy {
    snapshot: Arc<ArcSwap<Snapshot>>,
    shutdown: CancellationToken,
    connections: TaskTracker,
    accept_loops: TaskTracker,
    bound: Vec<(Arc<str>, SocketAddr)>,
}

impl RunningProxy {
    /// Validates `config`, binds every listener and starts serving.
    pub async fn start(config: &LoadedConfig, registry: &Registry) -> Result<Self, StartError> {
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::build(config, registry)?));
        let shutdown = CancellationToken::new();
        let connections = TaskTracker::new();
        let accept_loops = TaskTracker::new();
        let mut bound = Vec::new();
        let current = snapshot.load_full();
        for name in &current.listener_order {
            let l = &current.listeners[name];
            let listener =
                TcpListener::bind(l.address)
                    .await
                    .map_err(|source| StartError::Bind {
                        listener: name.to_string(),
                        address: l.address,
                        source,
                    })?;
            let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
                listener: name.to_string(),
                address: l.address,
                source,
            })?;
            info!(listener = %name, protocol = %l.protocol, address = %local_addr, "listening");
            bound.push((name.clone(), local_addr));
            let ctx = Arc::new(ListenerContext {
                name: name.clone(),
                snapshot: snapshot.clone(),
                shutdown: shutdown.clone(),
                local_addr,
            });
            accept_loops.spawn(run_accept_loop(listener, ctx, connections.clone()));
        }
        for cluster in current.clusters.values() {
            spawn_health_checks(cluster, shutdown.clone());
        }
        if current.admin.is_some() {
            warn!("`admin` is parsed but the admin endpoint is not served yet");
        }
        Ok(Self {
            snapshot,
            shutdown,
            connections,
            accept_loops,
            bound,
        })
    }

    /// The address each listener is bound to, in config order.
    pub fn bound_addresses(&self) -> &[(Arc<str>, SocketAddr)] {
        &self.bound
    }

    /// The address of listener `name`.
    pub fn listener_address(&self, name: &str) -> Option<SocketAddr> {
        self.bound
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, a)| *a)
    }

    /// The current config snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Stops accepting, lets in-flight requests finish for up to the drain
    /// timeout, then returns. Returns whether everything drained in time.
    pub async fn shutdown(self) -> bool {
        let deadline = self.snapshot.load().drain_timeout;
        self.shutdown.cancel();
        self.accept_loops.close();
        self.accept_loops.wait().await;
        self.connections.close();
        let drained = tokio::time::timeout(deadline, self.connections.wait())
            .await
            .is_ok();
        if drained {
            info!("all connections drained");
        } else {
            warn!(
                still_open = self.connections.len(),
                deadline = ?deadline,
                "drain deadline passed; closing the remaining connections"
            );
        }
        drained
    }

    /// The default drain deadline, for callers that need one before a snapshot exists.
    pub fn default_drain_timeout() -> Duration {
        crate::snapshot::DEFAULT_DRAIN_TIMEOUT
    }
}
