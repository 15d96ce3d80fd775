//! The routable key → value map a codec fills for each message.
//!
//! Keys keep the case the protocol sends, except HTTP header names which are
//! stored lower-case. Values are [`ByteString`]s, usually slices of the read
//! buffer, so filling the map copies nothing. Small maps are searched
//! linearly: faster than hashing for the dozen entries a request carries.

use bytes::Bytes;
use bytestring::ByteString;

/// Well-known metadata keys that every codec fills when it can.
pub mod keys {
    /// The protocol name (`dubbo`, `thrift`, `http`, ...).
    pub const PROTOCOL: &str = "protocol";
    /// The service (Dubbo interface, Thrift multiplexed service, HTTP authority).
    pub const SERVICE: &str = "service";
    /// The method name.
    pub const METHOD: &str = "method";
    /// The request id as the client sent it, in decimal.
    pub const REQUEST_ID: &str = "request_id";
    /// The client's IP address.
    pub const SOURCE_IP: &str = "source.ip";
    /// The client's port.
    pub const SOURCE_PORT: &str = "source.port";
    /// The listener's port the client connected to.
    pub const DESTINATION_PORT: &str = "destination.port";
    /// The TLS server name, when TLS is terminated.
    pub const SNI: &str = "sni";
    /// The TLS version: `1.2` or `1.3`.
    pub const TLS_VERSION: &str = "tls.version";
    /// The protocol agreed by ALPN.
    pub const TLS_ALPN: &str = "tls.alpn";
    /// The client certificate's subject.
    pub const TLS_PEER_SUBJECT: &str = "tls.peer.subject";
    /// The client certificate's first URI SAN (a SPIFFE id).
    pub const TLS_PEER_URI_SAN: &str = "tls.peer.uri_san";
}

/// An ordered map of metadata entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(ByteString, ByteString)>,
}

impl Metadata {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.value(key).map(|v| &**v)
    }

    /// The value of `key` as stored (a cheap clone keeps it), if present.
    pub fn value(&self, key: &str) -> Option<&ByteString> {
        self.entries
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v)
    }

    /// Sets `key` to `value`, replacing an existing entry.
    pub fn insert(&mut self, key: impl Into<ByteString>, value: impl Into<ByteString>) {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Appends an entry without checking for an existing key (the codec
    /// knows its keys are unique, or wants the first one to win on lookup).
    pub fn push(&mut self, key: ByteString, value: ByteString) {
        self.entries.push((key, value));
    }

    /// Inserts a key and a value that are slices of a read buffer, if both are valid UTF-8.
    /// Returns false (and inserts nothing) otherwise.
    pub fn push_bytes(&mut self, key: Bytes, value: Bytes) -> bool {
        match (ByteString::try_from(key), ByteString::try_from(value)) {
            (Ok(k), Ok(v)) => {
                self.entries.push((k, v));
                true
            }
            _ => false,
        }
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(k, _)| &**k != key);
        before != self.entries.len()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Iterates over `(key, value)` pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (&**k, &**v))
    }
}

impl<K: Into<ByteString>, V: Into<ByteString>> FromIterator<(K, V)> for Metadata {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut m = Metadata::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

/// Metadata lookup across the request's own map and its connection's map.
pub trait MetadataView {
    /// The value of `key`: the request's entry first, then the connection's.
    fn lookup(&self, key: &str) -> Option<&str>;
}

impl MetadataView for Metadata {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_and_keeps_case() {
        let mut m = Metadata::new();
        m.insert("batchJob", "true");
        m.insert("batchJob", "false");
        assert_eq!(m.get("batchJob"), Some("false"));
        assert_eq!(m.get("batchjob"), None);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn push_bytes_rejects_invalid_utf8() {
        let mut m = Metadata::new();
        assert!(!m.push_bytes(Bytes::from_static(b"k"), Bytes::from_static(&[0xff])));
        assert!(m.push_bytes(Bytes::from_static(b"k"), Bytes::from_static(b"v")));
        assert_eq!(m.get("k"), Some("v"));
        assert!(m.remove("k"));
        assert!(m.is_empty());
    }
}
