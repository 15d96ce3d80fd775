//! metaproxy-filters: L7 filters that work on the metadata of every protocol.
//!
//! Each filter is one module with a [`FilterFactory`](metaproxy_core::filter::FilterFactory)
//! registered by name; [`register_all`] adds every filter of this crate to a registry.

pub mod authz;
pub mod cors;
pub mod fault;
pub mod global_ratelimit;
pub mod local_ratelimit;
pub mod metadata_mutation;
pub mod trace_context;

mod bucket;
mod cidr;
mod conditions;
mod keyed;
mod resp;
mod template;

use std::sync::Arc;

use metaproxy_core::registry::Registry;

/// Registers every filter of this crate.
pub fn register_all(registry: &mut Registry) {
    registry.register_filter(Arc::new(metadata_mutation::MetadataMutationFactory));
    registry.register_filter(Arc::new(local_ratelimit::LocalRateLimitFactory::new()));
    registry.register_filter(Arc::new(authz::AuthzFactory));
    registry.register_filter(Arc::new(fault::FaultFactory));
    registry.register_filter(Arc::new(global_ratelimit::GlobalRateLimitFactory));
    registry.register_filter(Arc::new(cors::CorsFactory));
    registry.register_filter(Arc::new(trace_context::TraceContextFactory));
}
