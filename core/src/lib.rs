//! metaproxy-core: the protocol-agnostic heart of metaproxy.
//!
//! A codec turns bytes into a [`Message`] whose [`Metadata`] map is what the
//! [`filter`] chain and the [`router`] act on. The router picks a [`cluster`],
//! the cluster picks an endpoint, and the endpoint's [`upstream`] pool carries
//! the request on a connection shared with many downstream connections.
//! [`listener`] ties it together for every framed request/response protocol.
//!
//! This crate never depends on concrete codecs or filters: they plug in
//! through [`registry::Registry`].

pub mod access_log;
pub mod build;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod deadline;
pub mod discovery;
pub mod downstream;
pub mod error;
pub mod filter;
pub mod health_check;
pub mod inert_protocol;
pub mod listener;
pub mod message;
pub mod metadata;
pub mod metrics;
pub mod mutation;
pub mod pipeline;
pub mod proxy;
pub mod registration;
pub mod registry;
pub mod router;
pub mod snapshot;
pub mod tls;
pub mod upstream;
pub mod workers;

pub use codec::{
    Codec, CodecError, CodecErrorKind, CodecOptions, Decoder, ProtocolCodecFactory, ReplyContext,
    ResponseClass, UpstreamMode,
};
pub use error::{ErrorKind, Origin, PluginError, ProxyError, Retry};
pub use message::{Message, MessageKind};
pub use metadata::{Metadata, keys};
pub use mutation::{Mutation, MutationOp};
