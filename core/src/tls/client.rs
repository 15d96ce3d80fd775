//! The client side, for clusters: verifying endpoints against a CA,
//! presenting a client certificate, SNI and ALPN, session resumption.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::build::provider;
use super::certs::{read_certs, read_roots};
use super::error::TlsError;
use crate::config::ClusterTlsConfig;

/// A cluster's TLS side: one client config (and its session cache) shared
/// by every connection to every endpoint of the cluster.
pub struct ClusterTls {
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls")
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl ClusterTls {
    /// Runs the client handshake on a connected socket to `address`.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        address: SocketAddr,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(address.ip().into()));
        self.connector.connect(name, tcp).await
    }
}

/// Builds a cluster's TLS client. `default_alpn` is the cluster
/// protocol's own offer when the config names none.
pub fn build_cluster_tls(
    config: &ClusterTlsConfig,
    default_alpn: &[&str],
) -> Result<ClusterTls, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setting(e.to_string()))?;
    let builder = match (&config.ca, config.verify) {
        (_, false) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider))),
        (Some(ca), true) => {
            let roots = read_roots(ca)?;
            builder.with_root_certificates(roots)
        }
        (None, true) => {
            return Err(TlsError::Setting(
                "`ca` is needed to verify the endpoints (or `verify: false`)".into(),
            ));
        }
    };
    let mut client = match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
                path: key.clone(),
                why: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| TlsError::Pair {
                    cert: cert.clone(),
                    key: key.clone(),
                    why: e.to_string(),
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(TlsError::Setting("`cert` and `key` go together".into()));
        }
    };
    client.alpn_protocols = match &config.alpn {
        Some(list) => list.iter().map(|p| p.as_bytes().to_vec()).collect(),
        None => default_alpn.iter().map(|p| p.as_bytes().to_vec()).collect(),
    };
    let server_name = match &config.sni {
        None => None,
        Some(name) => Some(
            ServerName::try_from(name.clone())
                .map_err(|e| TlsError::Setting(format!("sni `{name}`: {e}")))?,
        ),
    };
    Ok(ClusterTls {
        connector: TlsConnector::from(Arc::new(client)),
        server_name,
    })
}

/// `verify: false`: any certificate is accepted (signatures on the
/// handshake are still checked, so the peer holds the key it shows).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
