//! A filter of your own in about thirty lines: refuse calls that lack a
//! `tenant` header (Dubbo attachment, THeader header, HTTP header), then
//! register it next to the built-in ones and run a proxy with it.
//!
//! ```sh
//! cargo run --example custom_filter     # a Dubbo listener on 127.0.0.1:20890 → a provider on :20881
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use metaproxy::core::error::{ErrorKind, Origin, PluginError, ProxyError};
use metaproxy::core::filter::{Filter, FilterAction, FilterContext, FilterFactory, RequestContext};

/// Refuses requests without the configured header.
pub struct RequireHeader {
    key: String,
}

#[async_trait]
impl Filter for RequireHeader {
    fn name(&self) -> &'static str {
        "require_header"
    }

    async fn on_request(&self, request: &mut RequestContext) -> FilterAction {
        if request.metadata.get(&self.key).is_some() {
            return FilterAction::Continue;
        }
        let why = format!("`{}` is required", self.key);
        FilterAction::Reply(ProxyError::new(
            ErrorKind::PermissionDenied,
            Origin::Downstream,
            why,
        ))
    }
}

/// Builds it from `- require_header: { key: tenant }`.
pub struct RequireHeaderFactory;

impl FilterFactory for RequireHeaderFactory {
    fn name(&self) -> &'static str {
        "require_header"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        _: &FilterContext<'_>,
    ) -> Result<Arc<dyn Filter>, PluginError> {
        let key = config["key"]
            .as_str()
            .ok_or("`key` (a string) is required")?;
        Ok(Arc::new(RequireHeader {
            key: key.to_string(),
        }))
    }
}

/// The example's config: the custom filter in front of a Dubbo provider.
pub const CONFIG: &str = r#"
listeners:
  - name: dubbo-in
    address: 127.0.0.1:20890
    protocol: dubbo
    filters:
      - require_header: { key: tenant }
    routes:
      - route: { cluster: demo }
clusters:
  - name: demo
    protocol: dubbo
    endpoints: [ { address: 127.0.0.1:20881 } ]
"#;

#[allow(dead_code)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut registry = metaproxy::default_registry();
    registry.register_filter(Arc::new(RequireHeaderFactory));
    let loaded = metaproxy::core::config::parse_str(CONFIG, "custom_filter.yaml")?;
    let proxy = metaproxy::core::proxy::RunningProxy::start(&loaded, &registry)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (name, addr) in proxy.bound_addresses().await {
        println!("listening name={name} address={addr}");
    }
    tokio::signal::ctrl_c().await?;
    proxy.shutdown().await;
    Ok(())
}
