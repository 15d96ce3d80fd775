//! The `options:` of `protocol: thrift` listeners and clusters, owned and
//! parsed here (core passes the section through untouched):
//! `{ transport: framed|unframed|buffered|header|auto, protocol: binary|compact|auto }`.

use serde::Deserialize;

use super::wire::{Protocol, Transport};

/// `transport:` as written in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TransportOption {
    /// Listeners: sniff each connection. Clusters: the request's own transport.
    #[default]
    Auto,
    /// `TFramedTransport`.
    Framed,
    /// `TBufferedTransport` (no framing); `buffered` is accepted as an alias.
    #[serde(alias = "buffered")]
    Unframed,
    /// `THeaderTransport`.
    Header,
}

impl TransportOption {
    /// The fixed transport, if any.
    pub fn fixed(self) -> Option<Transport> {
        match self {
            TransportOption::Auto => None,
            TransportOption::Framed => Some(Transport::Framed),
            TransportOption::Unframed => Some(Transport::Unframed),
            TransportOption::Header => Some(Transport::Header),
        }
    }
}

/// `protocol:` as written in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolOption {
    /// Listeners: accept either. Clusters: the request's own protocol.
    #[default]
    Auto,
    /// `TBinaryProtocol` (strict and non-strict headers are both read).
    Binary,
    /// `TCompactProtocol`.
    Compact,
}

impl ProtocolOption {
    /// The fixed protocol, if any (binary means strict when writing).
    pub fn fixed(self) -> Option<Protocol> {
        match self {
            ProtocolOption::Auto => None,
            ProtocolOption::Binary => Some(Protocol::BINARY),
            ProtocolOption::Compact => Some(Protocol::Compact),
        }
    }
}

/// Why a Thrift `options:` section was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// The section does not deserialize: an unknown key, a bad value or a
    /// section that is not a mapping.
    #[error(
        "bad Thrift `options`: {0} (expected `transport: framed|unframed|header|auto`, `protocol: binary|compact|auto`)"
    )]
    Invalid(String),
}

/// The parsed `options:` section of a Thrift listener or cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ThriftOptions {
    /// The transport.
    #[serde(default)]
    pub transport: TransportOption,
    /// The protocol.
    #[serde(default)]
    pub protocol: ProtocolOption,
}

impl ThriftOptions {
    /// Parses the section (`null` means all defaults).
    pub fn parse(extra: &serde_json::Value) -> Result<Self, OptionsError> {
        if extra.is_null() {
            return Ok(Self::default());
        }
        serde_json::from_value(extra.clone()).map_err(|e| OptionsError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_defaults_values_and_aliases() {
        assert_eq!(
            ThriftOptions::parse(&serde_json::Value::Null),
            Ok(ThriftOptions::default())
        );
        let o =
            ThriftOptions::parse(&json!({"transport": "buffered", "protocol": "compact"})).unwrap();
        assert_eq!(o.transport.fixed(), Some(Transport::Unframed));
        assert_eq!(o.protocol.fixed(), Some(Protocol::Compact));
        let o = ThriftOptions::parse(&json!({"transport": "header"})).unwrap();
        assert_eq!(o.transport, TransportOption::Header);
        assert_eq!(o.protocol, ProtocolOption::Auto);
    }

    #[test]
    fn rejects_unknown_values_and_fields() {
        let e = ThriftOptions::parse(&json!({"transport": "zlib"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("zlib") && e.contains("framed|unframed"), "{e}");
        let e = ThriftOptions::parse(&json!({"transprot": "framed"}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad Thrift `options`"), "{e}");
        assert!(e.contains("transprot"), "{e}");
        assert!(ThriftOptions::parse(&json!("framed")).is_err());
    }
}
