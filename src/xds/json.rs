//! Envoy's JSON mapping of the discovery messages, for the REST transport:
//! a `DiscoveryRequest` is written as JSON and a `DiscoveryResponse` read
//! from it (`Any` resources by their `"@type"`) through the descriptors
//! `envoy-types` ships, then handed on as the same prost messages the gRPC
//! transport carries.

use std::sync::OnceLock;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions,
};

/// The descriptor set of every message `envoy-types` generates (located
/// by `build.rs`).
static DESCRIPTOR_SET: &[u8] = include_bytes!(env!("ENVOY_DESCRIPTOR_SET"));

const REQUEST: &str = "envoy.service.discovery.v3.DiscoveryRequest";
const RESPONSE: &str = "envoy.service.discovery.v3.DiscoveryResponse";

/// Why a message could not be mapped to or from JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The shipped descriptors did not load (a build fault).
    #[error("the protobuf descriptors did not load: {0}")]
    Descriptors(String),
    /// The JSON is not a message of the expected type (a field unknown,
    /// an `"@type"` no descriptor names, a value of the wrong kind).
    #[error("not a valid {message} in JSON: {reason}")]
    Invalid {
        /// The message type expected.
        message: &'static str,
        /// What was wrong, as the JSON reader said it.
        reason: String,
    },
}

/// The descriptor pool, decoded once, on first use.
fn pool() -> Result<&'static DescriptorPool, JsonError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTOR_SET).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| JsonError::Descriptors(e.clone()))
}

fn descriptor(name: &str) -> Result<MessageDescriptor, JsonError> {
    pool()?
        .get_message_by_name(name)
        .ok_or_else(|| JsonError::Descriptors(format!("no descriptor for `{name}`")))
}

/// Loads the descriptors now (a REST client starting), so that a fault
/// shows at start rather than at the first poll.
pub fn preload() -> Result<(), JsonError> {
    descriptor(REQUEST).map(|_| ())
}

/// `request` in Envoy's JSON mapping, with proto field names
/// (`version_info`, `resource_names`), as Envoy's REST clients send it.
pub fn request_to_json(request: &DiscoveryRequest) -> Result<Vec<u8>, JsonError> {
    let invalid = |reason: String| JsonError::Invalid {
        message: REQUEST,
        reason,
    };
    let dynamic = DynamicMessage::decode(descriptor(REQUEST)?, request.encode_to_vec().as_slice())
        .map_err(|e| invalid(e.to_string()))?;
    let mut out = serde_json::Serializer::new(Vec::new());
    dynamic
        .serialize_with_options(
            &mut out,
            &SerializeOptions::new().use_proto_field_name(true),
        )
        .map_err(|e| invalid(e.to_string()))?;
    Ok(out.into_inner())
}

/// Reads a `DiscoveryResponse` from JSON; a field the message does not
/// have is an error, as it is for Envoy.
pub fn response_from_json(body: &[u8]) -> Result<DiscoveryResponse, JsonError> {
    message_from_json(RESPONSE, body)
}

/// Reads the message `name` (its full protobuf name) from JSON.
pub fn message_from_json<M: Message + Default>(
    name: &'static str,
    body: &[u8],
) -> Result<M, JsonError> {
    let invalid = |reason: String| JsonError::Invalid {
        message: name,
        reason,
    };
    let mut reader = serde_json::Deserializer::from_slice(body);
    let dynamic = DynamicMessage::deserialize_with_options(
        descriptor(name)?,
        &mut reader,
        &DeserializeOptions::new(),
    )
    .map_err(|e| invalid(e.to_string()))?;
    reader.end().map_err(|e| invalid(e.to_string()))?;
    M::decode(dynamic.encode_to_vec().as_slice()).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::envoy::config::listener::v3::Listener;

    use super::*;

    #[test]
    fn a_request_is_written_with_proto_field_names() {
        let request = DiscoveryRequest {
            version_info: "v1".into(),
            node: Some(Node {
                id: "gw-1".into(),
                ..Default::default()
            }),
            resource_names: vec!["routes-a".into()],
            type_url: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration".into(),
            ..Default::default()
        };
        let json: serde_json::Value =
            serde_json::from_slice(&request_to_json(&request).unwrap()).unwrap();
        assert_eq!(json["version_info"], "v1");
        assert_eq!(json["node"]["id"], "gw-1");
        assert_eq!(json["resource_names"][0], "routes-a");
        assert_eq!(json["type_url"], request.type_url);
    }

    #[test]
    fn a_response_carries_its_resources_by_their_type() {
        let body = br#"{
            "version_info": "7",
            "type_url": "type.googleapis.com/envoy.config.listener.v3.Listener",
            "resources": [{
                "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
                "name": "web",
                "address": { "socket_address": { "address": "127.0.0.1", "port_value": 8080 } },
                "filter_chains": [{ "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "in",
                        "rds": { "route_config_name": "r", "config_source": { "ads": {} } }
                    }
                }]}]
            }]
        }"#;
        let resp = response_from_json(body).unwrap();
        assert_eq!(resp.version_info, "7");
        assert_eq!(resp.resources.len(), 1);
        let listener = Listener::decode(resp.resources[0].value.as_slice()).unwrap();
        assert_eq!(listener.name, "web");
        let filter = &listener.filter_chains[0].filters[0];
        assert_eq!(filter.name, "envoy.filters.network.http_connection_manager");
    }

    #[test]
    fn an_unknown_field_or_type_is_refused_by_name() {
        let unknown_field = br#"{ "version_info": "1", "resourcez": [] }"#;
        let e = response_from_json(unknown_field).unwrap_err().to_string();
        assert!(e.contains("resourcez"), "{e}");
        let unknown_type = br#"{ "resources": [{ "@type": "type.googleapis.com/acme.Nope" }] }"#;
        let e = response_from_json(unknown_type).unwrap_err().to_string();
        assert!(e.contains("acme.Nope"), "{e}");
        assert!(response_from_json(b"{} trailing").is_err());
    }
}
