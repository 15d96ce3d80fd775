//! EDS through the proxy's discovery machinery: an EDS cluster becomes a
//! cluster with `discovery: { xds: { service: NAME } }`, and the `xds`
//! source publishes the endpoints the control plane sends for `NAME`.
//! Endpoint sets are then swapped in place, exactly as for ZooKeeper or
//! DNS: no reload, pools and health kept for endpoints that stay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use metaproxy_core::discovery::{
    DiscoveredEndpoint, DiscoveryContext, DiscoveryError, DiscoveryFactory, DiscoverySource,
    FeedWriter, SourceFuture,
};
use serde::Deserialize;
use tokio::sync::watch;

/// The last endpoint list of one EDS name (none before the first).
type Lists = watch::Sender<Option<Arc<Vec<DiscoveredEndpoint>>>>;

/// The endpoint lists of every EDS name, as last sent by the control plane.
#[derive(Debug, Default)]
pub struct EdsHub {
    services: Mutex<HashMap<String, Lists>>,
}

impl EdsHub {
    /// The process's hub (one control plane per process).
    pub fn global() -> Arc<EdsHub> {
        static HUB: OnceLock<Arc<EdsHub>> = OnceLock::new();
        HUB.get_or_init(Arc::default).clone()
    }

    fn sender(&self, service: &str) -> Lists {
        let mut map = self.services.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(service.to_string())
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }

    /// The control plane sent `list` for `service`.
    pub fn publish(&self, service: &str, list: Vec<DiscoveredEndpoint>) {
        self.sender(service).send_replace(Some(Arc::new(list)));
    }

    /// The lists of `service`, current one first.
    fn subscribe(&self, service: &str) -> watch::Receiver<Option<Arc<Vec<DiscoveredEndpoint>>>> {
        self.sender(service).subscribe()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XdsDiscoverySettings {
    /// The EDS resource name.
    service: String,
}

/// Builds `xds` sources.
pub struct XdsDiscoveryFactory;

impl DiscoveryFactory for XdsDiscoveryFactory {
    fn name(&self) -> &'static str {
        "xds"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        _: &DiscoveryContext,
    ) -> Result<Arc<dyn DiscoverySource>, DiscoveryError> {
        let s: XdsDiscoverySettings = serde_json::from_value(config.clone())
            .map_err(|e| DiscoveryError::invalid("xds", e.to_string()))?;
        Ok(Arc::new(XdsSource {
            service: s.service,
            hub: EdsHub::global(),
        }))
    }
}

/// The endpoints of one EDS name.
struct XdsSource {
    service: String,
    hub: Arc<EdsHub>,
}

impl DiscoverySource for XdsSource {
    fn kind(&self) -> &'static str {
        "xds"
    }

    fn run(self: Arc<Self>, feed: FeedWriter) -> SourceFuture {
        Box::pin(async move {
            let mut lists = self.hub.subscribe(&self.service);
            loop {
                let current = lists.borrow_and_update().clone();
                if let Some(list) = current {
                    feed.publish(list.to_vec());
                }
                tokio::select! {
                    _ = feed.cancelled() => return,
                    changed = lists.changed() => if changed.is_err() { return },
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscriber_sees_the_last_list_and_the_next() {
        let hub = EdsHub::default();
        let a = DiscoveredEndpoint::at("127.0.0.1:1".parse().unwrap());
        hub.publish("svc", vec![a.clone()]);
        let mut rx = hub.subscribe("svc");
        assert_eq!(rx.borrow_and_update().as_deref(), Some(&vec![a]));
        hub.publish("svc", Vec::new());
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow().as_deref(), Some(&Vec::new()));
    }
}
