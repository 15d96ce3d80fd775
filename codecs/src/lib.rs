//! metaproxy protocol codecs.
//!
//! Each protocol lives in its own module and implements the
//! `metaproxy_core::codec` contract: a shared [`metaproxy_core::Codec`], a
//! per-connection [`metaproxy_core::Decoder`] and a
//! [`metaproxy_core::ProtocolCodecFactory`].

pub mod auto;
pub mod declarative;
pub mod dubbo;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod passthrough;
pub mod thrift;

use metaproxy_core::registry::Registry;

/// Registers every built-in codec under its protocol name.
pub fn register_all(registry: &mut Registry) {
    registry.register_codec(declarative::DeclarativeCodecFactory::new());
    registry.register_codec(dubbo::DubboCodecFactory::new());
    http::register(registry);
    passthrough::register(registry);
    registry.register_codec(thrift::ThriftCodecFactory::new());
    auto::register(registry);
}
