//! metaproxy-filters: L7 filters that work on the metadata of every protocol.
//!
//! Each filter is one module with a [`FilterFactory`](metaproxy_core::filter::FilterFactory)
//! registered by name; [`register_all`] adds every filter of this crate to a registry.

pub mod metadata_mutation;
mod template;

use std::sync::Arc;

use metaproxy_core::registry::Registry;

/// Registers every filter of this crate.
pub fn register_all(registry: &mut Registry) {
    registry.register_filter(Arc::new(metadata_mutation::MetadataMutationFactory));
}
