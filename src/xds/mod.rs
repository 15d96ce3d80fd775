//! Configuration from a control plane (xDS): the config file's `xds:`
//! section names an ADS server; the listeners, routes, clusters and
//! endpoints it sends are translated into the proxy's own config, merged
//! with the static file by name, and applied as a hot reload does (EDS as
//! live endpoint swaps). Every update is ACKed, or NACKed with the
//! resource and field the proxy cannot honour. The reference is
//! `docs/xds.md`.

mod client;
mod compose;
mod delta;
mod eds;
mod json;
mod kind;
pub mod leftover;
mod rest;
mod settings;
mod state;
mod status;
mod translate;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use envoy_types::pb::envoy::config::core::v3::{Node, node};
use metaproxy_core::config::{LoadedConfig, parse_with_source};
use metaproxy_core::proxy::{RunningProxy, StartError};

pub use compose::{Composed, Refusal, Resources, compose};
pub use eds::{EdsHub, XdsDiscoveryFactory};
pub use kind::Kind;
pub use settings::{Transport, XdsSettings};
pub use state::{Apply, ApplyError, XdsState};
pub use status::XdsStatus;
pub(crate) use translate::common::regex_escape;

/// A proxy following a control plane.
pub struct Xds {
    state: tokio::sync::Mutex<XdsState>,
    status: Arc<XdsStatus>,
    proxy: Arc<RunningProxy>,
    file: String,
    base_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Xds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xds")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// The control plane this process follows, once started.
pub fn running() -> Option<Arc<Xds>> {
    RUNNING.get().cloned()
}

static RUNNING: OnceLock<Arc<Xds>> = OnceLock::new();

impl Xds {
    /// Starts following the control plane of `loaded`'s `xds:` section
    /// (none: `Ok(None)`). Changing the section later needs a restart.
    pub fn start(
        proxy: Arc<RunningProxy>,
        loaded: &LoadedConfig,
    ) -> Result<Option<Arc<Xds>>, String> {
        let Some(section) = &loaded.config.xds else {
            return Ok(None);
        };
        let settings = XdsSettings::from_value(&section.value).map_err(|e| format!("xds: {e}"))?;
        let status = XdsStatus::global();
        status.configure(
            &settings.server,
            settings.transport.name(),
            &settings.node_id,
            proxy.metrics().clone(),
        );
        let node = Node {
            id: settings.node_id.clone(),
            cluster: settings.cluster.clone().unwrap_or_default(),
            user_agent_name: "metaproxy".into(),
            user_agent_version_type: Some(node::UserAgentVersionType::UserAgentVersion(
                env!("CARGO_PKG_VERSION").into(),
            )),
            ..Default::default()
        };
        let base = loaded.source.as_deref().cloned().unwrap_or_default();
        let xds = Arc::new(Xds {
            state: tokio::sync::Mutex::new(XdsState::new(
                node,
                base,
                EdsHub::global(),
                status.clone(),
            )),
            status,
            proxy: proxy.clone(),
            file: format!("{} (with xDS resources)", loaded.file),
            base_dir: loaded.base_dir.clone(),
        });
        let _ = RUNNING.set(xds.clone());
        let stop = proxy.shutdown_token();
        match settings.transport {
            Transport::Grpc | Transport::DeltaGrpc => {
                tokio::spawn(client::run(xds.clone(), settings, stop));
            }
            Transport::Rest => {
                json::preload().map_err(|e| format!("xds: {e}"))?;
                tokio::spawn(rest::run(xds.clone(), settings, stop));
            }
        }
        Ok(Some(xds))
    }

    /// The static file changed: it is applied with the resources held.
    pub async fn reload_static(&self, loaded: &LoadedConfig) -> Result<(), String> {
        let base = loaded.source.as_deref().cloned().unwrap_or_default();
        self.state.lock().await.rebase(base, self).await
    }
}

impl Apply for Xds {
    async fn apply(&self, composed: &Composed) -> Result<(), ApplyError> {
        let first = |errors: &metaproxy_core::config::ConfigErrors| ApplyError {
            line: errors.0.first().map_or(0, |e| e.line as usize),
            message: errors
                .0
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
        };
        let source = || Some(composed.value.clone());
        let mut loaded = metaproxy_core::proxy::cpu_bound(|| {
            parse_with_source(&composed.text, &self.file, source)
        })
        .map_err(|e| first(&e))?;
        loaded.base_dir = self.base_dir.clone();
        match self.proxy.reload(&loaded).await {
            Ok(_) => Ok(()),
            Err(StartError::Config(errors)) => Err(first(&errors)),
            Err(e) => Err(ApplyError {
                line: 0,
                message: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
