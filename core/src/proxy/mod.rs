//! Starting, reloading and stopping a proxy: bind every listener of a
//! snapshot, run their accept loops, swap snapshots atomically on reload,
//! drain on shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

mod cpu_bound;
mod discovery;

pub use cpu_bound::cpu_bound;

use discovery::spawn_discovery;

use crate::build::BuildContext;
use crate::config::{ConfigErrors, LoadedConfig};
use crate::health_check::spawn_health_checks;
use crate::listener::{ListenerContext, run_accept_loop};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::snapshot::Snapshot;

/// Why a proxy could not start or reload.
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

/// A listener bound by a start or a reload, not accepting yet.
struct NewListener {
    listener: TcpListener,
    ctx: Arc<ListenerContext>,
    /// The address in the config (`bound` may differ: port 0).
    configured: SocketAddr,
}

/// A bound listener's accept loop.
struct ListenerHandle {
    configured: SocketAddr,
    bound: SocketAddr,
    stop: CancellationToken,
    /// The running registration: its section's key and its stop token.
    registration: Option<(String, CancellationToken)>,
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// The config version now serving.
    pub version: u64,
    /// Listeners bound by this reload.
    pub added: Vec<String>,
    /// Listeners stopped by this reload.
    pub removed: Vec<String>,
}

/// A running proxy.
pub struct RunningProxy {
    snapshot: Arc<ArcSwap<Snapshot>>,
    registry: Registry,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    connections: TaskTracker,
    accept_loops: TaskTracker,
    registrations: TaskTracker,
    listeners: Mutex<HashMap<Arc<str>, ListenerHandle>>,
    /// Held through a reload: two reloads (admin, file watch, xDS) never
    /// interleave their bind, swap and start steps.
    reloading: Mutex<()>,
    version: std::sync::atomic::AtomicU64,
    loaded_at: std::sync::Mutex<SystemTime>,
    last_error: std::sync::Mutex<Option<String>>,
    ready: std::sync::atomic::AtomicBool,
}

impl RunningProxy {
    /// Validates `config`, binds every listener and starts serving.
    pub async fn start(config: &LoadedConfig, registry: &Registry) -> Result<Self, StartError> {
        let metrics = Arc::new(Metrics::new());
        let first = Snapshot::build_with(
            config,
            registry,
            BuildContext {
                metrics: Some(metrics.clone()),
                previous: None,
            },
        )?;
        let proxy = Self {
            snapshot: Arc::new(ArcSwap::from_pointee(first)),
            registry: registry.clone(),
            metrics,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
            accept_loops: TaskTracker::new(),
            registrations: TaskTracker::new(),
            listeners: Mutex::new(HashMap::new()),
            reloading: Mutex::new(()),
            version: std::sync::atomic::AtomicU64::new(1),
            loaded_at: std::sync::Mutex::new(SystemTime::now()),
            last_error: std::sync::Mutex::new(None),
            ready: std::sync::atomic::AtomicBool::new(false),
        };
        let current = proxy.snapshot.load_full();
        let new = proxy.bind_new_listeners(&current).await?;
        proxy.start_accepting(new).await;
        proxy.sync_registrations(&current).await;
        for cluster in current.clusters.values() {
            spawn_health_checks(cluster, proxy.shutdown.clone(), &proxy.metrics);
            spawn_discovery(cluster, proxy.shutdown.clone(), &proxy.metrics);
        }
        proxy.ready.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(proxy)
    }

    /// Binds the listeners of `snapshot` not bound yet (or whose address
    /// changed). They accept nothing until [`Self::start_accepting`], called
    /// once `snapshot` is the current one (an accept loop reads its
    /// listener's limit and handler from the current snapshot; until then,
    /// connections wait in the socket's backlog).
    async fn bind_new_listeners(
        &self,
        snapshot: &Arc<Snapshot>,
    ) -> Result<Vec<NewListener>, StartError> {
        let bound = self.listeners.lock().await;
        let mut added = Vec::new();
        for name in &snapshot.listener_order {
            let l = &snapshot.listeners[name];
            if bound.get(name).is_some_and(|h| h.configured == l.address) {
                continue;
            }
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
            let stop = self.shutdown.child_token();
            let ctx = Arc::new(ListenerContext {
                name: name.clone(),
                snapshot: self.snapshot.clone(),
                shutdown: stop.clone(),
                local_addr,
            });
            added.push(NewListener {
                listener,
                ctx,
                configured: l.address,
            });
        }
        Ok(added)
    }

    /// Starts the accept loops of listeners bound by
    /// [`Self::bind_new_listeners`] (one that replaces a listener of the
    /// same name stops the old one); returns their names.
    async fn start_accepting(&self, new: Vec<NewListener>) -> Vec<String> {
        let mut bound = self.listeners.lock().await;
        let mut names = Vec::with_capacity(new.len());
        for NewListener {
            listener,
            ctx,
            configured,
        } in new
        {
            let handle = ListenerHandle {
                configured,
                bound: ctx.local_addr,
                stop: ctx.shutdown.clone(),
                registration: None,
            };
            if let Some(old) = bound.insert(ctx.name.clone(), handle) {
                old.stop.cancel();
            }
            names.push(ctx.name.to_string());
            self.accept_loops
                .spawn(run_accept_loop(listener, ctx, self.connections.clone()));
        }
        names
    }

    /// Starts the registrations of `snapshot`'s listeners that are not
    /// running yet, and restarts those whose `register:` section changed.
    /// A registration ends with its listener (its token is a child of the
    /// listener's).
    async fn sync_registrations(&self, snapshot: &Arc<Snapshot>) {
        let mut bound = self.listeners.lock().await;
        for (name, handle) in bound.iter_mut() {
            let Some(l) = snapshot.listeners.get(name) else {
                continue;
            };
            let wanted = l.registration.as_ref();
            let running = handle.registration.as_ref().map(|(key, _)| key);
            if running == wanted.map(|w| &w.key) {
                continue;
            }
            if let Some((_, stop)) = handle.registration.take() {
                stop.cancel();
            }
            if let Some(w) = wanted {
                let stop = handle.stop.child_token();
                info!(listener = %name, registry = w.registrar.kind(), address = %handle.bound, "registering listener");
                self.registrations.spawn(w.registrar.clone().run(
                    crate::registration::ListenerRegistration {
                        listener: name.clone(),
                        bound: handle.bound,
                        stop: stop.clone(),
                    },
                ));
                handle.registration = Some((w.key.clone(), stop));
            }
        }
    }

    /// Validates `config` and, if it is valid, swaps it in atomically: new
    /// requests use it, requests in flight finish on the old one; listeners
    /// are added and removed without touching the others; clusters whose
    /// pool settings are unchanged keep their endpoints (pools, health and
    /// outlier state) and breakers. An invalid config changes nothing.
    pub async fn reload(&self, config: &LoadedConfig) -> Result<ReloadSummary, StartError> {
        let _serial = self.reloading.lock().await;
        let previous = self.snapshot.load_full();
        let built = cpu_bound(|| {
            Snapshot::build_with(
                config,
                &self.registry,
                BuildContext {
                    metrics: Some(self.metrics.clone()),
                    previous: Some(&previous),
                },
            )
        });
        let next = match built {
            Ok(s) => Arc::new(s),
            Err(e) => {
                self.reload_failed(&e.to_string());
                return Err(e.into());
            }
        };
        // Bind first: a listener that cannot bind rejects the whole reload.
        let new = match self.bind_new_listeners(&next).await {
            Ok(b) => b,
            Err(e) => {
                self.reload_failed(&e.to_string());
                return Err(e);
            }
        };
        self.snapshot.store(next.clone());
        // Only now: a loop started earlier could read the previous
        // snapshot, without this listener (its limit and handler).
        let added = self.start_accepting(new).await;
        self.sync_registrations(&next).await;
        let mut removed = Vec::new();
        {
            let mut bound = self.listeners.lock().await;
            bound.retain(|name, handle| {
                let keep = next.listeners.contains_key(name);
                if !keep {
                    handle.stop.cancel();
                    removed.push(name.to_string());
                }
                keep
            });
        }
        for cluster in next.clusters.values() {
            spawn_health_checks(cluster, self.shutdown.clone(), &self.metrics);
            spawn_discovery(cluster, self.shutdown.clone(), &self.metrics);
        }
        let version = self
            .version
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if let Ok(mut at) = self.loaded_at.lock() {
            *at = SystemTime::now();
        }
        if let Ok(mut last) = self.last_error.lock() {
            *last = None;
        }
        self.metrics.reload(true);
        info!(version, ?added, ?removed, file = %config.file, "config reloaded");
        Ok(ReloadSummary {
            version,
            added,
            removed,
        })
    }

    fn reload_failed(&self, why: &str) {
        self.metrics.reload(false);
        warn!("config reload rejected; the previous config keeps serving:\n{why}");
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(why.to_string());
        }
    }

    /// The address each listener is bound to, in config order.
    pub async fn bound_addresses(&self) -> Vec<(Arc<str>, SocketAddr)> {
        let snapshot = self.snapshot.load_full();
        let bound = self.listeners.lock().await;
        snapshot
            .listener_order
            .iter()
            .filter_map(|n| bound.get(n).map(|h| (n.clone(), h.bound)))
            .collect()
    }

    /// The address of listener `name`.
    pub async fn listener_address(&self, name: &str) -> Option<SocketAddr> {
        self.bound_addresses()
            .await
            .into_iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, a)| a)
    }

    /// The current config snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The config version (1 at start, +1 per successful reload).
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// When the current config was loaded.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at.lock().map_or(SystemTime::UNIX_EPOCH, |t| *t)
    }

    /// Why the last reload was rejected, if it was.
    pub fn last_reload_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Ready: listeners bound and clusters initialised, not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::SeqCst) && !self.shutdown.is_cancelled()
    }

    /// The token cancelled when shutdown starts.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, lets in-flight requests finish for up to the drain
    /// timeout, then returns. Returns whether everything drained in time.
    pub async fn shutdown(&self) -> bool {
        let deadline = self.snapshot.load().drain_timeout;
        self.shutdown.cancel();
        self.accept_loops.close();
        self.accept_loops.wait().await;
        self.connections.close();
        self.registrations.close();
        // Registrations are removed while connections drain.
        let drained = tokio::time::timeout(deadline, async {
            tokio::join!(self.connections.wait(), self.registrations.wait())
        })
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
