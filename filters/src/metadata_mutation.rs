//! `metadata_mutation`: set and remove protocol headers (HTTP headers, Dubbo
//! attachments, THeader headers) on requests and responses. Values may use
//! `%key%` placeholders filled from the request's metadata.
//!
//! ```yaml
//! filters:
//!   - metadata_mutation:
//!       request:  { set: { x-client-ip: "%source.ip%" }, remove: [debug] }
//!       response: { set: { x-served-by: metaproxy } }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use metaproxy_core::filter::{
    Filter, FilterAction, FilterContext, FilterFactory, RequestContext, ResponseContext,
};
use metaproxy_core::mutation::Mutation;
use serde::Deserialize;

use crate::template::Template;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SideConfig {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    request: SideConfig,
    #[serde(default)]
    response: SideConfig,
}

#[derive(Debug, Default)]
struct Side {
    set: Vec<(String, Template)>,
    remove: Vec<String>,
}

impl Side {
    fn build(config: SideConfig) -> Result<Self, String> {
        let set = config
            .set
            .into_iter()
            .map(|(k, v)| Template::parse(&v).map(|t| (k, t)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            set,
            remove: config.remove,
        })
    }

    fn apply(&self, request: &RequestContext, out: &mut Mutation) {
        for k in &self.remove {
            out.remove(k.as_str());
        }
        for (k, v) in &self.set {
            out.set(k.as_str(), v.render(request));
        }
    }
}

/// The filter.
#[derive(Debug)]
pub struct MetadataMutation {
    request: Side,
    response: Side,
}

#[async_trait]
impl Filter for MetadataMutation {
    fn name(&self) -> &'static str {
        "metadata_mutation"
    }

    async fn on_request(&self, request: &mut RequestContext) -> FilterAction {
        let mut m = std::mem::take(&mut request.request_mutation);
        self.request.apply(request, &mut m);
        request.request_mutation = m;
        let mut m = std::mem::take(&mut request.response_mutation);
        self.response.apply(request, &mut m);
        request.response_mutation = m;
        FilterAction::Continue
    }

    async fn on_response(
        &self,
        _request: &mut RequestContext,
        _response: &ResponseContext,
    ) -> FilterAction {
        FilterAction::Continue
    }
}

/// Builds [`MetadataMutation`] from config.
#[derive(Debug)]
pub struct MetadataMutationFactory;

impl FilterFactory for MetadataMutationFactory {
    fn name(&self) -> &'static str {
        "metadata_mutation"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        _context: &FilterContext<'_>,
    ) -> Result<Arc<dyn Filter>, String> {
        let config = Config::deserialize(config).map_err(|e| e.to_string())?;
        Ok(Arc::new(MetadataMutation {
            request: Side::build(config.request)?,
            response: Side::build(config.response)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaproxy_core::message::MessageKind;
    use metaproxy_core::{Metadata, MutationOp};

    const CTX: FilterContext<'static> = FilterContext {
        listener: "test",
        protocol: "dubbo",
        route: None,
    };

    #[tokio::test]
    async fn sets_templated_values_and_removes() {
        let filter = MetadataMutationFactory
            .build(
                &serde_json::json!({
                "request": {"set": {"x-caller": "%method%-%source.ip%"}, "remove": ["debug"]},
                "response": {"set": {"x-served-by": "metaproxy"}}
                }),
                &CTX,
            )
            .unwrap();
        let conn: Metadata = [("source.ip", "127.0.0.1")].into_iter().collect();
        let md: Metadata = [("method", "sayHello")].into_iter().collect();
        let mut req = RequestContext::new("dubbo", MessageKind::Request, md, Arc::new(conn));
        assert!(matches!(
            filter.on_request(&mut req).await,
            FilterAction::Continue
        ));
        assert_eq!(
            req.request_mutation.ops(),
            &[
                MutationOp::Remove("debug".into()),
                MutationOp::Set("x-caller".into(), "sayHello-127.0.0.1".into())
            ]
        );
        assert_eq!(req.response_mutation.ops().len(), 1);
    }

    #[test]
    fn rejects_unknown_fields() {
        let Err(err) = MetadataMutationFactory.build(&serde_json::json!({"requets": {}}), &CTX) else {
            panic!("a misspelt field must be refused");
        };
        assert!(err.contains("unknown field"), "{err}");
    }
}
