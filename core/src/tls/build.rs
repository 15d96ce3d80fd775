//! Turning a listener's `tls:` section into a rustls server config.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ServerConfig, SupportedProtocolVersion};
use tokio_rustls::TlsAcceptor;

use super::ListenerTls;
use super::certs::read_roots;
use super::error::TlsError;
use super::store::{CertStore, ReloadCounters};
use crate::config::{ClientAuthMode, ClusterTlsConfig, ListenerTlsConfig};

/// The handshake timeout when none is configured.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The one crypto provider: ring (aws-lc stays out of the build).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds a listener's TLS acceptor. `default_alpn` is the protocol's
/// own offer when the config names none.
pub fn build_listener_tls(
    listener: &str,
    config: &ListenerTlsConfig,
    default_alpn: &[&str],
    reloads: ReloadCounters,
) -> Result<ListenerTls, TlsError> {
    let provider = provider();
    let versions: &[&'static SupportedProtocolVersion] =
        match config.min_version.as_deref().unwrap_or("1.2") {
            "1.2" => &[&rustls::version::TLS13, &rustls::version::TLS12],
            "1.3" => &[&rustls::version::TLS13],
            other => {
                return Err(TlsError::Setting(format!(
                    "min_version `{other}`: use \"1.2\" or \"1.3\""
                )));
            }
        };
    let store = Arc::new(CertStore::load(
        listener,
        &config
            .certificates
            .iter()
            .map(|c| c.value.clone())
            .collect::<Vec<_>>(),
        config.strict_sni,
        provider.clone(),
        reloads,
    )?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Setting(e.to_string()))?;
    let builder = match &config.client_ca {
        None => {
            if config.client_auth.is_some() {
                return Err(TlsError::Setting("`client_auth` needs `client_ca`".into()));
            }
            builder.with_no_client_auth()
        }
        Some(ca) => {
            let roots = read_roots(ca)?;
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if config.client_auth == Some(ClientAuthMode::Optional) {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Setting(format!("client_ca: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder.with_cert_resolver(store.clone());
    server.alpn_protocols = match &config.alpn {
        Some(list) => list.iter().map(|p| p.as_bytes().to_vec()).collect(),
        None => default_alpn.iter().map(|p| p.as_bytes().to_vec()).collect(),
    };
    if server
        .alpn_protocols
        .iter()
        .any(|p| p.is_empty() || p.len() > 255)
    {
        return Err(TlsError::Setting(
            "alpn: each protocol is 1 to 255 bytes".into(),
        ));
    }
    server.ticketer =
        rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::Setting(e.to_string()))?;
    Ok(ListenerTls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        handshake_timeout: config
            .handshake_timeout
            .map_or(DEFAULT_HANDSHAKE_TIMEOUT, |d| d.get()),
        store,
        watching: std::sync::Once::new(),
    })
}

/// `path` made relative to `base` (the config file's directory) when it
/// is relative.
fn at(base: Option<&Path>, path: &str) -> String {
    match base {
        Some(base) if Path::new(path).is_relative() => base.join(path).display().to_string(),
        _ => path.to_string(),
    }
}

/// A cluster's `tls:` with its file paths resolved against `base`.
pub fn resolve_cluster_paths(config: &ClusterTlsConfig, base: Option<&Path>) -> ClusterTlsConfig {
    let at = |p: &str| at(base, p);
    let mut config = config.clone();
    config.ca = config.ca.as_deref().map(at);
    config.cert = config.cert.as_deref().map(at);
    config.key = config.key.as_deref().map(at);
    config
}

/// The config with its relative file paths made relative to `base`
/// (the config file's directory).
pub fn resolve_paths(config: &ListenerTlsConfig, base: Option<&Path>) -> ListenerTlsConfig {
    let at = |p: &str| at(base, p);
    let mut config = config.clone();
    for c in &mut config.certificates {
        c.value.cert = at(&c.value.cert);
        c.value.key = at(&c.value.key);
    }
    config.client_ca = config.client_ca.as_deref().map(at);
    config
}
