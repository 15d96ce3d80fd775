//! Certificate and key pairs loaded from PEM files, and what they say
//! about themselves (subject, names, expiry) for the admin endpoint.

use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::Serialize;
use x509_parser::extensions::GeneralName;

use super::error::TlsError;

/// What a loaded certificate says about itself.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CertInfo {
    /// The certificate file.
    pub cert_file: String,
    /// The key file.
    pub key_file: String,
    /// The leaf's subject, e.g. `CN=shop.example.com`.
    pub subject: String,
    /// The leaf's DNS and URI subject alternative names.
    pub sans: Vec<String>,
    /// The end of the leaf's validity, as the certificate writes it.
    pub not_after: String,
    /// The same instant, in seconds since the Unix epoch.
    pub not_after_unix: i64,
    /// The names this pair answers, as configured (empty: the default).
    pub server_names: Vec<String>,
}

/// A file's identity for change detection: modification time and length.
pub(crate) type Stamp = Option<(SystemTime, u64)>;

/// A file's modification time and length now, to tell when it changed
/// (`None` when it cannot be read).
pub fn stamp(path: &str) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// One pair as loaded: the key rustls signs with and its description.
#[derive(Debug, Clone)]
pub(crate) struct LoadedPair {
    pub key: Arc<CertifiedKey>,
    pub info: CertInfo,
    /// The files' stamps when they were read.
    pub stamps: (Stamp, Stamp),
}

/// Reads all certificates of a PEM file (at least one).
pub(crate) fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file = |why: String| TlsError::File {
        path: path.to_string(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file(e.to_string()))?;
    if certs.is_empty() {
        return Err(file("no certificate in the file".into()));
    }
    Ok(certs)
}

/// The CAs of a PEM file, as trust roots.
pub(crate) fn read_roots(path: &str) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::File {
            path: path.to_string(),
            why: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// Loads a certificate chain and its key, checking that they match.
pub(crate) fn load_pair(
    cert_file: &str,
    key_file: &str,
    server_names: &[String],
    provider: &CryptoProvider,
) -> Result<LoadedPair, TlsError> {
    // Stamped before reading: a change during the read is seen next time.
    let stamps = (stamp(cert_file), stamp(key_file));
    let chain = read_certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::File {
        path: key_file.to_string(),
        why: e.to_string(),
    })?;
    let info = describe(&chain[0], cert_file, key_file, server_names)?;
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Pair {
        cert: cert_file.to_string(),
        key: key_file.to_string(),
        why: e.to_string(),
    })?;
    Ok(LoadedPair {
        key: Arc::new(key),
        info,
        stamps,
    })
}

/// Subject, names and expiry of a leaf certificate.
fn describe(
    leaf: &CertificateDer<'_>,
    cert_file: &str,
    key_file: &str,
    server_names: &[String],
) -> Result<CertInfo, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| TlsError::File {
        path: cert_file.to_string(),
        why: format!("unreadable certificate: {e}"),
    })?;
    let not_after = cert.validity().not_after;
    Ok(CertInfo {
        cert_file: cert_file.to_string(),
        key_file: key_file.to_string(),
        subject: cert.subject().to_string(),
        sans: alternative_names(&cert),
        not_after: not_after.to_string(),
        not_after_unix: not_after.timestamp(),
        server_names: server_names.to_vec(),
    })
}

/// The DNS names and URIs among a certificate's subject alternative names.
pub(crate) fn alternative_names(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(s) | GeneralName::URI(s) => Some((*s).to_string()),
            _ => None,
        })
        .collect()
}
