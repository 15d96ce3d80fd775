//! What a finished handshake tells routes and filters: the server name,
//! the version, the ALPN protocol and the client certificate's identity.

use rustls::ServerConnection;
use x509_parser::extensions::GeneralName;

use crate::metadata::{Metadata, keys};

/// The facts of one TLS connection, as metadata values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFacts {
    /// The SNI the client sent.
    pub sni: Option<String>,
    /// `1.2` or `1.3`.
    pub version: Option<&'static str>,
    /// The protocol agreed by ALPN (`h2`, `http/1.1`, ...).
    pub alpn: Option<String>,
    /// The client certificate's subject (`CN=cart,O=shop`).
    pub peer_subject: Option<String>,
    /// The client certificate's first URI SAN (a SPIFFE id).
    pub peer_uri_san: Option<String>,
}

impl TlsFacts {
    /// Reads the facts of an established server connection.
    pub fn of(conn: &ServerConnection) -> Self {
        let version = conn.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "1.3",
            rustls::ProtocolVersion::TLSv1_2 => "1.2",
            _ => "other",
        });
        let mut facts = Self {
            sni: conn.server_name().map(str::to_string),
            version,
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            ..Self::default()
        };
        let leaf = conn.peer_certificates().and_then(|c| c.first());
        if let Some(Ok((_, cert))) = leaf.map(|c| x509_parser::parse_x509_certificate(c)) {
            facts.peer_subject = Some(cert.subject().to_string());
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                facts.peer_uri_san = san.value.general_names.iter().find_map(|n| match n {
                    GeneralName::URI(u) => Some((*u).to_string()),
                    _ => None,
                });
            }
        }
        facts
    }

    /// Adds the facts to a connection's metadata (`sni`, `tls.version`,
    /// `tls.alpn`, `tls.peer.subject`, `tls.peer.uri_san`).
    pub fn insert_into(&self, m: &mut Metadata) {
        if let Some(v) = &self.sni {
            m.insert(keys::SNI, v.as_str());
        }
        if let Some(v) = self.version {
            m.insert(keys::TLS_VERSION, v);
        }
        if let Some(v) = &self.alpn {
            m.insert(keys::TLS_ALPN, v.as_str());
        }
        if let Some(v) = &self.peer_subject {
            m.insert(keys::TLS_PEER_SUBJECT, v.as_str());
        }
        if let Some(v) = &self.peer_uri_san {
            m.insert(keys::TLS_PEER_URI_SAN, v.as_str());
        }
    }
}
