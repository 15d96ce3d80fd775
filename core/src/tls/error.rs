//! What can go wrong loading TLS settings.

use thiserror::Error;

/// Why a TLS setting could not be loaded.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {why}")]
    File {
        /// The file as configured.
        path: String,
        /// What was wrong with it.
        why: String,
    },
    /// The certificate and key do not belong together, or the key type is
    /// not supported.
    #[error("{cert} with {key}: {why}")]
    Pair {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// rustls' reason.
        why: String,
    },
    /// A setting that cannot be honoured (version, ALPN, verifier).
    #[error("{0}")]
    Setting(String),
}
