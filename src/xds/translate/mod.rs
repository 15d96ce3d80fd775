//! Envoy's resources as the proxy's config: each translator takes one
//! resource, carries over what the proxy honours, and refuses (with the
//! resource and the field named) anything else it sets.

// Control planes still send fields Envoy deprecated (exact header matches,
// `route_config` lists of dubbo_proxy, ...): they are read like the rest.
#![allow(deprecated)]

mod cluster;
pub(crate) mod common;
pub mod endpoint;
pub mod generic_routes;
pub mod http_routes;
mod listener;
pub mod rpc_routes;
mod tls;
mod uses;

pub use cluster::{XdsCluster, translate as cluster};
pub use listener::{RouteSource, XdsListener, translate as listener};
pub use uses::Uses;
