//! The `thrift:` config section of listeners and clusters:
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

/// The parsed `thrift:` section.
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
    pub fn parse(extra: &serde_json::Value) -> Result<Self, String> {
        if extra.is_null() {
            return Ok(Self::default());
        }
        serde_json::from_value(extra.clone()).map_err(|e| {
            format!(
                "bad `thrift` options: {e} (expected `transport: framed|unframed|header|auto`, `protocol: binary|compact|auto`)"
            )
        })
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
        let e = ThriftOptions::parse(&json!({"transport": "zlib"})).unwrap_err();
        assert!(e.contains("zlib") && e.contains("framed|unframed"), "{e}");
        let e = ThriftOptions::parse(&json!({"transprot": "framed"})).unwrap_err();
        assert!(e.contains("transprot"), "{e}");
        assert!(ThriftOptions::parse(&json!("framed")).is_err());
    }
}
