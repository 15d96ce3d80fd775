//! Registering a Dubbo listener in a ZooKeeper registry: one ephemeral
//! provider node per interface under `/<root>/<interface>/providers`, with
//! the listener's address, kept across session losses and removed when the
//! listener stops, so consumers that read the registry call the proxy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metaproxy_core::config::ConfigDuration;
use metaproxy_core::registration::{
    ListenerRegistration, Registrar, RegistrarContext, RegistrarFactory, RegistrationError,
    RegistrationFuture,
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use zookeeper_client as zk;

use super::backoff::{Backoff, connect_zookeeper, wait_or_stop};
use super::dubbo_url::provider_node;

/// How long deregistering may take at shutdown before the session is
/// simply closed (which removes ephemeral nodes too).
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(2);

/// Protocols a registration may front.
const REGISTRABLE_PROTOCOLS: [&str; 2] = ["dubbo", "auto"];

/// The `register: { zookeeper: ... }` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationSettings {
    /// `host:port` of the ensemble's servers.
    servers: Vec<String>,
    /// The Dubbo interfaces the listener serves.
    interfaces: Vec<String>,
    /// The registry root (Dubbo's default `/dubbo`).
    #[serde(default = "default_root")]
    root: String,
    /// ZooKeeper session timeout (default 10s): how long the nodes outlive
    /// a proxy that dies without deregistering.
    #[serde(default)]
    session_timeout: Option<ConfigDuration>,
    /// The `ip:port` consumers reach the listener at (default: the bound
    /// address; required when the listener binds an unspecified IP).
    #[serde(default)]
    address: Option<String>,
    /// Query parameters of the provider URL (`application`, `group`,
    /// `version`, `methods`, ...), over the defaults.
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

fn default_root() -> String {
    "/dubbo".into()
}

/// Builds [`ZookeeperRegistrar`]s.
pub(super) struct ZookeeperRegistrarFactory;

impl RegistrarFactory for ZookeeperRegistrarFactory {
    fn name(&self) -> &'static str {
        "zookeeper"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        context: &RegistrarContext,
    ) -> Result<Arc<dyn Registrar>, RegistrationError> {
        let invalid = |m: String| RegistrationError::invalid("zookeeper", m);
        let s: RegistrationSettings =
            serde_json::from_value(config.clone()).map_err(|e| invalid(e.to_string()))?;
        if !REGISTRABLE_PROTOCOLS.contains(&context.protocol.as_str()) {
            return Err(invalid(format!(
                "a ZooKeeper (Dubbo registry) registration needs a `dubbo` or `auto` listener, not `{}`",
                context.protocol
            )));
        }
        if s.servers.is_empty() {
            return Err(invalid("`servers` is empty".into()));
        }
        if s.interfaces.is_empty() {
            return Err(invalid("`interfaces` is empty".into()));
        }
        if let Some(bad) = s
            .interfaces
            .iter()
            .find(|i| i.is_empty() || !i.bytes().all(is_name_byte))
        {
            return Err(invalid(format!(
                "interface `{bad}` is not a Dubbo interface name such as org.apache.dubbo.samples.DemoService"
            )));
        }
        if !s.root.starts_with('/') {
            return Err(invalid("`root` starts with `/`".into()));
        }
        if let Some((k, v)) = s
            .parameters
            .iter()
            .find(|(k, v)| k.is_empty() || !k.bytes().all(is_name_byte) || !is_value(v))
        {
            return Err(invalid(format!(
                "parameter `{k}: {v}`: keys are letters, digits, `.`, `-` and `_`; values have no `&`, `=`, `?`, `#`, spaces or controls"
            )));
        }
        let advertised = match &s.address {
            Some(a) => Some(
                a.parse::<SocketAddr>()
                    .map_err(|_| invalid(format!("`address` is an `ip:port`, not `{a}`")))?,
            ),
            None if context.address.ip().is_unspecified() => {
                return Err(invalid(format!(
                    "listener `{}` binds {}: set `address` to the ip:port consumers reach it at",
                    context.listener, context.address
                )));
            }
            None => None,
        };
        let root = s.root.trim_end_matches('/').to_string();
        Ok(Arc::new(ZookeeperRegistrar {
            connect: s.servers.join(","),
            root,
            interfaces: s.interfaces,
            session_timeout: s
                .session_timeout
                .map_or(Duration::from_secs(10), |d| d.get()),
            advertised,
            parameters: s.parameters,
        }))
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'$')
}

fn is_value(v: &str) -> bool {
    !v.chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '&' | '=' | '?' | '#'))
}

/// Keeps a listener registered as the provider of its interfaces.
#[derive(Debug)]
pub(super) struct ZookeeperRegistrar {
    connect: String,
    root: String,
    interfaces: Vec<String>,
    session_timeout: Duration,
    advertised: Option<SocketAddr>,
    parameters: BTreeMap<String, String>,
}

/// How one session ended.
enum Session {
    /// Expired or closed by the server: register again in a new one.
    Lost,
    /// The registration must end.
    Stop,
}

impl Registrar for ZookeeperRegistrar {
    fn kind(&self) -> &'static str {
        "zookeeper"
    }

    fn run(self: Arc<Self>, registration: ListenerRegistration) -> RegistrationFuture {
        Box::pin(async move {
            let address = self.advertised.unwrap_or(registration.bound);
            let nodes = self.nodes(address);
            let stop = &registration.stop;
            let mut backoff = Backoff::new(Duration::from_secs(5));
            loop {
                let Some(connected) =
                    connect_zookeeper(&self.connect, self.session_timeout, stop.cancelled()).await
                else {
                    return;
                };
                let client = match connected {
                    Ok(c) => c,
                    Err(e) => {
                        warn!(listener = %registration.listener, servers = %self.connect, error = %e, "cannot reach ZooKeeper to register; retrying");
                        if wait_or_stop(backoff.delay(), stop.cancelled()).await {
                            return;
                        }
                        continue;
                    }
                };
                if let Err(e) = self.register(&client, &nodes).await {
                    warn!(listener = %registration.listener, error = %e, "registering in ZooKeeper failed; retrying");
                    if wait_or_stop(backoff.delay(), stop.cancelled()).await {
                        return;
                    }
                    continue;
                }
                backoff.reset();
                info!(listener = %registration.listener, %address, interfaces = ?self.interfaces, "registered in ZooKeeper");
                match hold(&client, stop).await {
                    Session::Lost => {
                        warn!(listener = %registration.listener, "ZooKeeper session lost; registering again");
                    }
                    Session::Stop => {
                        deregister(&client, &nodes).await;
                        info!(listener = %registration.listener, "deregistered from ZooKeeper");
                        return;
                    }
                }
            }
        })
    }
}

impl ZookeeperRegistrar {
    /// The node path of each interface for a provider at `address`.
    fn nodes(&self, address: SocketAddr) -> Vec<(String, String)> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        self.interfaces
            .iter()
            .map(|interface| {
                let mut params: BTreeMap<String, String> = [
                    ("anyhost", "false".to_string()),
                    ("application", "metaproxy".to_string()),
                    ("category", "providers".to_string()),
                    ("dubbo", "2.0.2".to_string()),
                    ("interface", interface.clone()),
                    ("metaproxy", super::instance_id().to_string()),
                    ("pid", std::process::id().to_string()),
                    ("side", "provider".to_string()),
                    ("timestamp", timestamp.to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                params.extend(self.parameters.clone());
                let dir = format!("{}/{interface}/providers", self.root);
                let node = format!(
                    "{dir}/{}",
                    provider_node("dubbo", address, interface, &params)
                );
                (dir, node)
            })
            .collect()
    }

    /// Creates the persistent parents and the ephemeral provider nodes; a
    /// node left by an earlier session of ours is replaced, so its expiry
    /// cannot remove the new registration.
    async fn register(
        &self,
        client: &zk::Client,
        nodes: &[(String, String)],
    ) -> Result<(), zk::Error> {
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        for (dir, node) in nodes {
            let mut path = String::new();
            for part in dir.split('/').filter(|p| !p.is_empty()) {
                path.push('/');
                path.push_str(part);
                match client.create(&path, &[], &persistent).await {
                    Ok(_) | Err(zk::Error::NodeExists) => {}
                    Err(e) => return Err(e),
                }
            }
            match client.create(node, &[], &ephemeral).await {
                Ok(_) => {}
                Err(zk::Error::NodeExists) => {
                    match client.delete(node, None).await {
                        Ok(()) | Err(zk::Error::NoNode) => {}
                        Err(e) => return Err(e),
                    }
                    client.create(node, &[], &ephemeral).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Waits until the session is lost or `stop` is cancelled. While
/// disconnected the session (and its nodes) may still be alive; only its
/// expiry needs a new registration.
async fn hold(client: &zk::Client, stop: &CancellationToken) -> Session {
    let mut states = client.state_watcher();
    loop {
        if client.state().is_terminated() {
            return Session::Lost;
        }
        tokio::select! {
            _ = stop.cancelled() => return Session::Stop,
            state = states.changed() => {
                if state.is_terminated() {
                    return Session::Lost;
                }
            }
        }
    }
}

/// Deletes the provider nodes (bounded in time); dropping the client then
/// closes the session.
async fn deregister(client: &zk::Client, nodes: &[(String, String)]) {
    let deletes = async {
        for (_, node) in nodes {
            if let Err(e) = client.delete(node, None).await
                && e != zk::Error::NoNode
            {
                warn!(%node, error = %e, "could not delete a provider node; the session's end removes it");
            }
        }
    };
    if tokio::time::timeout(DEREGISTER_TIMEOUT, deletes)
        .await
        .is_err()
    {
        warn!("deregistering timed out; the session's end removes the nodes");
    }
}
