//! metaproxy protocol codecs.
