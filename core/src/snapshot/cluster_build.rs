//! Building clusters (endpoints, subsets, balancers, codecs) from config.

use std::sync::Arc;

use crate::cluster::{Cluster, Endpoint, PoolSettings, Subset, balancer_for};
use crate::codec::{CodecOptions, UpstreamMode};
use crate::config::load::ErrorSink;
use crate::config::validate::socket_addr;
use crate::config::{ClusterConfig, DEFAULT_MAX_FRAME_BYTES};
use crate::registry::Registry;

use super::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_CONNECTIONS_PER_ENDPOINT, DEFAULT_EXCLUSIVE_CONNECTIONS,
    MAX_CONNECTIONS_PER_ENDPOINT,
};

pub(super) fn build_cluster(
    sink: &mut ErrorSink,
    c: &ClusterConfig,
    registry: &Registry,
) -> Option<Cluster> {
    let protocol = match registry.protocol(&c.protocol.value) {
        Some(p) => p,
        None => {
            sink.on(
                &c.protocol,
                format!(
                    "unknown protocol `{}` (known: {})",
                    c.protocol.value,
                    registry.protocol_names().join(", ")
                ),
            );
            return None;
        }
    };
    let options = CodecOptions {
        max_frame_bytes: c.max_frame_bytes.unwrap_or(DEFAULT_MAX_FRAME_BYTES),
        extra: protocol_section(
            sink,
            &c.protocol.value,
            c.thrift.as_ref(),
            c.options.as_ref(),
        ),
    };
    if options.max_frame_bytes < 16 {
        sink.on(&c.name, "max_frame_bytes must be at least 16");
    }
    let codec = match protocol.cluster_codec(&options) {
        Ok(codec) => Some(codec),
        Err(e) => {
            sink.on(&c.protocol, e);
            None
        }
    };
    let mut endpoints = Vec::new();
    for e in &c.endpoints {
        let ep = &e.value;
        if ep.weight == Some(0) {
            sink.on(e, "endpoint weight must be at least 1");
        }
        if let Some(addr) = socket_addr(sink, &ep.address, "endpoint address") {
            endpoints.push(Arc::new(Endpoint::new(
                addr,
                ep.labels.clone(),
                ep.weight.unwrap_or(1),
            )));
        }
    }
    let mode = c
        .mode
        .or(codec.as_ref().map(|cc| cc.default_mode))
        .unwrap_or(UpstreamMode::Multiplex);
    let connections = c.connections_per_endpoint.unwrap_or(match mode {
        UpstreamMode::Exclusive => DEFAULT_EXCLUSIVE_CONNECTIONS,
        _ => DEFAULT_CONNECTIONS_PER_ENDPOINT,
    });
    if !(1..=MAX_CONNECTIONS_PER_ENDPOINT).contains(&connections) {
        sink.on(
            &c.name,
            format!(
                "connections_per_endpoint must be between 1 and {MAX_CONNECTIONS_PER_ENDPOINT}"
            ),
        );
    }
    let mut subsets = vec![Subset {
        name: String::new(),
        balancer: balancer_for(c.lb, &endpoints),
        endpoints: endpoints.clone(),
    }];
    for (name, selector) in &c.subsets {
        if name.is_empty() {
            sink.on(selector, "subset name must not be empty");
        }
        let members: Vec<_> = endpoints
            .iter()
            .filter(|e| e.has_labels(&selector.value))
            .cloned()
            .collect();
        subsets.push(Subset {
            name: name.clone(),
            balancer: balancer_for(c.lb, &members),
            endpoints: members,
        });
    }
    Some(Cluster {
        name: Arc::from(c.name.value.as_str()),
        protocol: c.protocol.value.clone(),
        subsets,
        pool: PoolSettings {
            mode,
            connections_per_endpoint: connections.clamp(1, MAX_CONNECTIONS_PER_ENDPOINT),
            connect_timeout: c
                .connect_timeout
                .map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.get()),
        },
        codec: codec?.codec,
    })
}

/// The protocol's own config section: `thrift:` for Thrift, `options:` for
/// any other protocol (plugins); `thrift:` elsewhere is an error.
pub(super) fn protocol_section(
    sink: &mut ErrorSink,
    protocol: &str,
    thrift: Option<&serde_saphyr::Spanned<serde_json::Value>>,
    options: Option<&serde_saphyr::Spanned<serde_json::Value>>,
) -> serde_json::Value {
    if let Some(t) = thrift
        && protocol != "thrift"
    {
        sink.on(
            t,
            format!("`thrift` options apply only to `protocol: thrift`, not `{protocol}`"),
        );
    }
    match (protocol, thrift, options) {
        ("thrift", Some(t), _) => t.value.clone(),
        (_, _, Some(o)) => o.value.clone(),
        _ => serde_json::Value::Null,
    }
}
