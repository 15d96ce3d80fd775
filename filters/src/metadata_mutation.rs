//! `metadata_mutation`: set and remove protocol headers (HTTP headers, Dubbo
//! attachments, THeader headers) on requests and responses. Values may use
//! `%key%` placeholders filled from the request's metadata. `append` adds a
//! value after an existing one (joined by `separator`, default `", "`), or
//! sets it when the key is absent.
//!
//! ```yaml
//! filters:
//!   - metadata_mutation:
//!       request:  { set: { x-client-ip: "%source.ip%" }, remove: [debug], append: { via: metaproxy } }
//!       response: { set: { x-served-by: metaproxy } }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use metaproxy_core::Metadata;
use metaproxy_core::PluginError;
use metaproxy_core::filter::{
    Filter, FilterAction, FilterContext, FilterFactory, RequestContext, ResponseContext,
};
use metaproxy_core::mutation::{Mutation, MutationOp};
use serde::Deserialize;

use crate::template::Template;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SideConfig {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    append: BTreeMap<String, String>,
    #[serde(default)]
    separator: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    request: SideConfig,
    #[serde(default)]
    response: SideConfig,
}

/// The separator `append` uses when none is given.
const DEFAULT_SEPARATOR: &str = ", ";

#[derive(Debug, Default)]
struct Side {
    set: Vec<(String, Template)>,
    remove: Vec<String>,
    append: Vec<(String, Template)>,
    separator: String,
}

/// The values of `map` (the option at path `option`) as templates; the
/// error names the key whose value does not parse.
fn templates(
    option: &str,
    map: BTreeMap<String, String>,
) -> Result<Vec<(String, Template)>, PluginError> {
    map.into_iter()
        .map(|(k, v)| match Template::parse(&v) {
            Ok(t) => Ok((k, t)),
            Err(e) => Err(PluginError::invalid_option(format!("{option}.{k}"), e)),
        })
        .collect()
}

/// The value `key` will have: the last op on it in `pending`, else the message's own.
fn current<'a>(key: &str, pending: &'a Mutation, original: &'a Metadata) -> Option<&'a str> {
    match pending.ops().iter().rev().find(|op| match op {
        MutationOp::Set(k, _) | MutationOp::Remove(k) => &**k == key,
    }) {
        Some(MutationOp::Set(_, v)) => Some(&**v),
        Some(MutationOp::Remove(_)) => None,
        None => original.get(key),
    }
}

impl Side {
    /// Builds the side `side` (`request` or `response`) of the config.
    fn build(
        side: &str,
        config: SideConfig,
        context: &FilterContext<'_>,
    ) -> Result<Self, PluginError> {
        let key = |k: String| crate::conditions::metadata_key(&k, context);
        let lower = |v: Vec<(String, Template)>| v.into_iter().map(|(k, t)| (key(k), t)).collect();
        Ok(Self {
            set: lower(templates(&format!("{side}.set"), config.set)?),
            remove: config.remove.into_iter().map(key).collect(),
            append: lower(templates(&format!("{side}.append"), config.append)?),
            separator: config
                .separator
                .unwrap_or_else(|| DEFAULT_SEPARATOR.to_string()),
        })
    }

    /// Removes and sets (the request phase for both sides).
    fn apply(&self, request: &RequestContext, out: &mut Mutation) {
        for k in &self.remove {
            out.remove(k.as_str());
        }
        for (k, v) in &self.set {
            out.set(k.as_str(), v.render(request));
        }
    }

    /// Appends to the values `original` (the message's metadata) has, after removes and sets.
    fn apply_append(&self, request: &RequestContext, original: &Metadata, out: &mut Mutation) {
        for (k, v) in &self.append {
            let add = v.render(request);
            let value = match current(k, out, original) {
                Some(old) if !old.is_empty() => format!("{old}{}{add}", self.separator),
                _ => add,
            };
            out.set(k.as_str(), value);
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
        self.request
            .apply_append(request, &request.metadata, &mut m);
        request.request_mutation = m;
        let mut m = std::mem::take(&mut request.response_mutation);
        self.response.apply(request, &mut m);
        request.response_mutation = m;
        FilterAction::Continue
    }

    async fn on_response(
        &self,
        request: &mut RequestContext,
        response: &ResponseContext,
    ) -> FilterAction {
        // Response appends need the response's own values, known only now.
        if !self.response.append.is_empty() {
            let mut m = std::mem::take(&mut request.response_mutation);
            self.response
                .apply_append(request, &response.metadata, &mut m);
            request.response_mutation = m;
        }
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
        context: &FilterContext<'_>,
    ) -> Result<Arc<dyn Filter>, PluginError> {
        let config = Config::deserialize(config)?;
        Ok(Arc::new(MetadataMutation {
            request: Side::build("request", config.request, context)?,
            response: Side::build("response", config.response, context)?,
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

    #[tokio::test]
    async fn appends_to_existing_values_or_sets() {
        let filter = MetadataMutationFactory
            .build(
                &serde_json::json!({
                "request": {"append": {"via": "metaproxy", "hops": "%source.ip%"}, "separator": ","},
                "response": {"append": {"via": "metaproxy"}}
                }),
                &CTX,
            )
            .unwrap();
        let conn: Metadata = [("source.ip", "10.0.0.1")].into_iter().collect();
        let md: Metadata = [("via", "edge")].into_iter().collect();
        let mut req = RequestContext::new("dubbo", MessageKind::Request, md, Arc::new(conn));
        assert!(matches!(
            filter.on_request(&mut req).await,
            FilterAction::Continue
        ));
        assert_eq!(
            req.request_mutation.ops(),
            &[
                MutationOp::Set("hops".into(), "10.0.0.1".into()),
                MutationOp::Set("via".into(), "edge,metaproxy".into()),
            ]
        );
        let response = ResponseContext {
            kind: MessageKind::Response,
            metadata: [("via", "upstream")].into_iter().collect(),
        };
        assert!(matches!(
            filter.on_response(&mut req, &response).await,
            FilterAction::Continue
        ));
        assert_eq!(
            req.response_mutation.ops(),
            &[MutationOp::Set("via".into(), "upstream, metaproxy".into())]
        );
    }

    #[tokio::test]
    async fn http_keys_are_lower_cased() {
        let http = FilterContext {
            listener: "h",
            protocol: "http",
            route: None,
        };
        let filter = MetadataMutationFactory
            .build(
                &serde_json::json!({"request": {"set": {"X-Served-By": "m"}, "remove": ["X-Debug"]}}),
                &http,
            )
            .unwrap();
        let mut req = RequestContext::new(
            "http",
            MessageKind::Request,
            Metadata::new(),
            Arc::new(Metadata::new()),
        );
        let _ = filter.on_request(&mut req).await;
        assert_eq!(
            req.request_mutation.ops(),
            &[
                MutationOp::Remove("x-debug".into()),
                MutationOp::Set("x-served-by".into(), "m".into())
            ]
        );
    }

    #[test]
    fn rejects_unknown_fields() {
        let Err(err) = MetadataMutationFactory.build(&serde_json::json!({"requets": {}}), &CTX)
        else {
            panic!("a misspelt field must be refused");
        };
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
