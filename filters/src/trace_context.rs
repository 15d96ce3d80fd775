//! `trace_context`: one trace across protocols. A request that carries a
//! W3C `traceparent` (HTTP header, Dubbo attachment, THeader header) keeps
//! it; one that does not gets a new one, written into the request sent
//! upstream. `x-request-id` is kept or created the same way, and can be
//! echoed on the response.
//!
//! ```yaml
//! filters:
//!   - trace_context: { request_id: true, echo_request_id: true }
//! ```
//!
//! Thrift: the headers travel only over THeader; a framed or unframed
//! cluster cannot carry them (the request then fails with an encode error),
//! so use this filter on Thrift listeners only in front of THeader clusters.

use std::sync::Arc;

use async_trait::async_trait;
use metaproxy_core::PluginError;
use metaproxy_core::filter::{Filter, FilterAction, FilterContext, FilterFactory, RequestContext};
use metaproxy_core::metadata::MetadataView;
use serde::Deserialize;

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";
/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Also keep or create `x-request-id` (default true).
    #[serde(default)]
    request_id: Option<bool>,
    /// Echo `x-request-id` on the response (default false).
    #[serde(default)]
    echo_request_id: bool,
}

/// The filter.
#[derive(Debug)]
pub struct TraceContext {
    request_id: bool,
    echo_request_id: bool,
}

fn hex(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        s.push_str(&format!("{:02x}", fastrand::u8(..)));
    }
    s
}

/// A new `traceparent`: version 00, random trace and span ids, sampled.
pub fn new_traceparent() -> String {
    format!("00-{}-{}-01", hex(16), hex(8))
}

/// Whether `v` is a well-formed version-00 `traceparent`.
pub fn is_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() == 4
        && parts[0].len() == 2
        && parts[1].len() == 32
        && parts[2].len() == 16
        && parts[3].len() == 2
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
        && parts[1] != "00000000000000000000000000000000"
        && parts[2] != "0000000000000000"
}

#[async_trait]
impl Filter for TraceContext {
    fn name(&self) -> &'static str {
        "trace_context"
    }

    async fn on_request(&self, request: &mut RequestContext) -> FilterAction {
        if !request
            .metadata
            .get(TRACEPARENT)
            .is_some_and(is_traceparent)
        {
            let tp = new_traceparent();
            request.request_mutation.set(TRACEPARENT, tp.as_str());
            request.metadata.insert(TRACEPARENT, tp);
        }
        if self.request_id {
            let id = match request.lookup(REQUEST_ID) {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => {
                    let id = hex(16);
                    request.request_mutation.set(REQUEST_ID, id.as_str());
                    request.metadata.insert(REQUEST_ID, id.as_str());
                    id
                }
            };
            if self.echo_request_id {
                request.response_mutation.set(REQUEST_ID, id);
            }
        }
        FilterAction::Continue
    }
}

/// Builds [`TraceContext`].
#[derive(Debug)]
pub struct TraceContextFactory;

impl FilterFactory for TraceContextFactory {
    fn name(&self) -> &'static str {
        "trace_context"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        _context: &FilterContext<'_>,
    ) -> Result<Arc<dyn Filter>, PluginError> {
        let config = if config.is_null() {
            Config {
                request_id: None,
                echo_request_id: false,
            }
        } else {
            Config::deserialize(config)?
        };
        Ok(Arc::new(TraceContext {
            request_id: config.request_id.unwrap_or(true),
            echo_request_id: config.echo_request_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaproxy_core::message::MessageKind;
    use metaproxy_core::{Metadata, MutationOp};

    const CTX: FilterContext<'static> = FilterContext {
        listener: "t",
        protocol: "dubbo",
        route: None,
    };

    #[tokio::test]
    async fn creates_missing_context_and_keeps_existing() {
        let f = TraceContextFactory
            .build(&serde_json::json!({"echo_request_id": true}), &CTX)
            .unwrap();
        let mut req = RequestContext::new(
            "dubbo",
            MessageKind::Request,
            Metadata::new(),
            Arc::new(Metadata::new()),
        );
        f.on_request(&mut req).await;
        let tp = req.metadata.get(TRACEPARENT).unwrap().to_string();
        assert!(is_traceparent(&tp), "{tp}");
        assert!(
            req.request_mutation
                .ops()
                .contains(&MutationOp::Set(TRACEPARENT.into(), tp.as_str().into()))
        );
        assert_eq!(req.response_mutation.ops().len(), 1);

        let given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let md: Metadata = [(TRACEPARENT, given), (REQUEST_ID, "abc")]
            .into_iter()
            .collect();
        let mut req =
            RequestContext::new("dubbo", MessageKind::Request, md, Arc::new(Metadata::new()));
        f.on_request(&mut req).await;
        assert!(
            req.request_mutation.is_empty(),
            "nothing to add: {:?}",
            req.request_mutation
        );
        assert!(!is_traceparent(
            "00-00000000000000000000000000000000-b7ad6b7169203331-01"
        ));
    }
}
