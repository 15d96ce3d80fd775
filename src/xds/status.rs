//! What the admin endpoint shows of the control plane: the connection,
//! each type's last accepted version and last refusal, and every resource
//! held with its version (`/config_dump`'s `xds` section), plus the
//! update counters in `/metrics`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use metaproxy_core::metrics::Metrics;
use serde_json::{Value, json};

use super::kind::Kind;

/// One resource held.
#[derive(Debug, Clone)]
pub struct ResourceStatus {
    /// Its type.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// The version it came in.
    pub version: String,
}

#[derive(Debug, Default)]
struct TypeStatus {
    accepted_version: String,
    accepted: u64,
    rejected: u64,
    last_update: Option<SystemTime>,
    last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    server: String,
    transport: &'static str,
    node: String,
    connected: bool,
    last_stream_error: Option<String>,
    types: BTreeMap<Kind, TypeStatus>,
    resources: Vec<ResourceStatus>,
}

/// The control plane's status (one per process).
#[derive(Debug, Default)]
pub struct XdsStatus {
    inner: Mutex<Inner>,
    metrics: OnceLock<Arc<Metrics>>,
}

impl XdsStatus {
    /// The process's status.
    pub fn global() -> Arc<XdsStatus> {
        static STATUS: OnceLock<Arc<XdsStatus>> = OnceLock::new();
        STATUS.get_or_init(Arc::default).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A control plane is configured: its address, the transport
    /// (`grpc`, `rest`) and this node's id; updates are counted in
    /// `metrics`.
    pub fn configure(
        &self,
        server: &str,
        transport: &'static str,
        node: &str,
        metrics: Arc<Metrics>,
    ) {
        let mut i = self.lock();
        i.server = server.to_string();
        i.transport = transport;
        i.node = node.to_string();
        let _ = self.metrics.set(metrics);
    }

    /// The stream is up (or down, and why); for REST, the last poll
    /// reached the server (or did not).
    pub fn connected(&self, up: bool, error: Option<String>) {
        let mut i = self.lock();
        i.connected = up;
        if error.is_some() {
            i.last_stream_error = error;
        }
    }

    /// An update of `kind` was accepted or rejected.
    pub fn updated(&self, kind: Kind, accepted: bool, version: &str, error: Option<&str>) {
        if let Some(m) = self.metrics.get() {
            m.config_update("xds", kind.short(), accepted);
        }
        let mut i = self.lock();
        let t = i.types.entry(kind).or_default();
        t.last_update = Some(SystemTime::now());
        if accepted {
            t.accepted += 1;
            t.accepted_version = version.to_string();
        } else {
            t.rejected += 1;
            t.last_error = error.map(str::to_string);
        }
    }

    /// Every resource now held.
    pub fn set_resources(&self, list: Vec<ResourceStatus>) {
        self.lock().resources = list;
    }

    /// The `xds` section of `/config_dump`, or `None` without a control plane.
    pub fn dump(&self) -> Option<Value> {
        let i = self.lock();
        if i.server.is_empty() {
            return None;
        }
        let types: serde_json::Map<String, Value> = i
            .types
            .iter()
            .map(|(k, t)| {
                let at = t
                    .last_update
                    .and_then(|at| at.duration_since(SystemTime::UNIX_EPOCH).ok());
                (
                    k.short().to_string(),
                    json!({
                        "version": t.accepted_version,
                        "accepted": t.accepted,
                        "rejected": t.rejected,
                        "last_update_unix": at.map(|d| d.as_secs()),
                        "last_error": t.last_error,
                    }),
                )
            })
            .collect();
        let resources: Vec<Value> = i
            .resources
            .iter()
            .map(|r| json!({ "type": r.kind.short(), "name": r.name, "version": r.version, "source": "xds" }))
            .collect();
        Some(json!({
            "server": i.server,
            "transport": i.transport,
            "node": i.node,
            "connected": i.connected,
            "last_stream_error": i.last_stream_error,
            "types": types,
            "resources": resources,
        }))
    }
}
