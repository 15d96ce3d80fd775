//! metaproxy filters.
