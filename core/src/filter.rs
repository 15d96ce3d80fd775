//! The L7 filter chain: ordered filters that see every request's metadata
//! (whatever the protocol) and may continue or answer locally.
//!
//! A filter implements only the phases it needs; both default to continue.
//! Filters are built from config by a [`FilterFactory`] registered by name.

use crate::error::PluginError;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::ProxyError;
use crate::message::MessageKind;
use crate::metadata::{Metadata, MetadataView};
use crate::mutation::Mutation;

/// What a filter decided.
#[derive(Debug)]
pub enum FilterAction {
    /// Go on to the next filter (then the router).
    Continue,
    /// Stop and answer the client with this error, in its protocol's form.
    Reply(ProxyError),
    /// Stop and answer with this exact response (HTTP only, e.g. a CORS
    /// preflight). Other protocols answer with an internal error instead;
    /// filters that use it refuse non-HTTP listeners at config time.
    Respond(LocalResponse),
}

/// A complete HTTP response produced by a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body (may be empty).
    pub body: String,
}

/// Per-request state the filters and the router work on.
#[derive(Debug)]
pub struct RequestContext {
    /// The protocol name.
    pub protocol: &'static str,
    /// Request, or oneway.
    pub kind: MessageKind,
    /// The request's metadata as the codec decoded it.
    pub metadata: Metadata,
    /// The connection's metadata (`source.ip`, `destination.port`, ...).
    pub connection: Arc<Metadata>,
    /// Changes to apply to the request on its way upstream.
    pub request_mutation: Mutation,
    /// Changes to apply to the response on its way downstream.
    pub response_mutation: Mutation,
    /// The matched route's name, once routed.
    pub route: Option<Arc<str>>,
    /// Set by a filter that changed `metadata` in a way that may change the
    /// route: the router matches again after the chain.
    pub reroute: bool,
    /// The endpoint of the last try, once sent.
    pub upstream: Option<std::net::SocketAddr>,
    /// Typed per-request state filters share (key: filter-chosen name).
    pub extensions: HashMap<&'static str, Box<dyn std::any::Any + Send + Sync>>,
}

impl RequestContext {
    /// A context for a freshly decoded request.
    pub fn new(
        protocol: &'static str,
        kind: MessageKind,
        metadata: Metadata,
        connection: Arc<Metadata>,
    ) -> Self {
        Self {
            protocol,
            kind,
            metadata,
            connection,
            request_mutation: Mutation::new(),
            response_mutation: Mutation::new(),
            route: None,
            reroute: false,
            upstream: None,
            extensions: HashMap::new(),
        }
    }
}

impl MetadataView for RequestContext {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).or_else(|| self.connection.get(key))
    }
}

/// The response as the response phase sees it.
#[derive(Debug)]
pub struct ResponseContext {
    /// Response, error, or a local reply's kind.
    pub kind: MessageKind,
    /// The response's metadata (e.g. `status`).
    pub metadata: Metadata,
}

/// One filter. Implement only the phases you need.
#[async_trait]
pub trait Filter: Send + Sync + 'static {
    /// The filter's registered name.
    fn name(&self) -> &'static str;

    /// Runs before routing. May add request/response mutations or answer locally.
    async fn on_request(&self, request: &mut RequestContext) -> FilterAction {
        let _ = request;
        FilterAction::Continue
    }

    /// Runs when the upstream's response arrives (not for oneway requests or local replies).
    async fn on_response(
        &self,
        request: &mut RequestContext,
        response: &ResponseContext,
    ) -> FilterAction {
        let _ = (request, response);
        FilterAction::Continue
    }
}

/// Where a filter is being built: lets a factory refuse listeners it cannot serve.
#[derive(Debug, Clone, Copy)]
pub struct FilterContext<'a> {
    /// The listener's name.
    pub listener: &'a str,
    /// The listener's protocol (`dubbo`, `thrift`, `http`, ...).
    pub protocol: &'a str,
    /// The route whose override is being built, if any.
    pub route: Option<&'a str>,
}

/// Builds a filter from its config section.
pub trait FilterFactory: Send + Sync + 'static {
    /// The name used in config (`local_ratelimit`).
    fn name(&self) -> &'static str;
    /// Builds a filter; an error message names the bad field.
    fn build(
        &self,
        config: &serde_json::Value,
        context: &FilterContext<'_>,
    ) -> Result<Arc<dyn Filter>, PluginError>;
}

/// A listener's ordered filters.
#[derive(Clone, Default)]
pub struct FilterChain {
    filters: Vec<Arc<dyn Filter>>,
}

impl fmt::Debug for FilterChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.filters.iter().map(|x| x.name()))
            .finish()
    }
}

impl FilterChain {
    /// A chain of `filters` in order.
    pub fn new(filters: Vec<Arc<dyn Filter>>) -> Self {
        Self { filters }
    }

    /// Whether the chain has no filter (the engine then skips both phases).
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The filters in order.
    pub fn filters(&self) -> &[Arc<dyn Filter>] {
        &self.filters
    }

    /// Runs the request phase; stops at the first local reply.
    pub async fn on_request(&self, request: &mut RequestContext) -> FilterAction {
        for f in &self.filters {
            match f.on_request(request).await {
                FilterAction::Continue => {}
                stop => return stop,
            }
        }
        FilterAction::Continue
    }

    /// Runs the response phase in reverse order; stops at the first local reply.
    pub async fn on_response(
        &self,
        request: &mut RequestContext,
        response: &ResponseContext,
    ) -> FilterAction {
        for f in self.filters.iter().rev() {
            match f.on_response(request, response).await {
                FilterAction::Continue => {}
                stop => return stop,
            }
        }
        FilterAction::Continue
    }
}
