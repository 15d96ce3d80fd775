//! TLS transport sockets (`envoy.transport_sockets.tls`): a listener's
//! `DownstreamTlsContext` and a cluster's `UpstreamTlsContext`, as the
//! proxy's `tls:` sections. Certificates, keys and CAs are files
//! (`filename` data sources); inline ones and SDS are refused.

use envoy_types::pb::envoy::config::core::v3::{
    DataSource, TransportSocket, data_source, transport_socket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, UpstreamTlsContext, common_tls_context,
};
use prost::Message;
use serde_json::{Value, json};

use crate::xds::leftover::refuse_rest;

const DOWNSTREAM: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const UPSTREAM: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

/// A listener's `tls:` from its filter chain's transport socket.
pub fn listener_tls(what: &str, ts: &TransportSocket) -> Result<Value, String> {
    let what = format!("{what}: transport socket");
    let ctx: DownstreamTlsContext = decode(&what, ts, DOWNSTREAM)?;
    let mut rest = ctx.clone();
    rest.common_tls_context = None;
    rest.require_client_certificate = None;
    refuse_rest(&what, &rest)?;
    let common = ctx.common_tls_context.unwrap_or_default();
    let (certificates, ca, alpn, min_version) = common_parts(&what, &common)?;
    if certificates.is_empty() {
        return Err(format!("{what}: a listener needs a certificate"));
    }
    let mut out = json!({ "certificates": certificates });
    if let Some(ca) = ca {
        out["client_ca"] = json!(ca);
        let required = ctx.require_client_certificate.is_some_and(|r| r.value);
        out["client_auth"] = json!(if required { "required" } else { "optional" });
    }
    if !alpn.is_empty() {
        out["alpn"] = json!(alpn);
    }
    if let Some(v) = min_version {
        out["min_version"] = json!(v);
    }
    Ok(out)
}

/// A cluster's `tls:` from its transport socket.
pub fn cluster_tls(what: &str, ts: &TransportSocket) -> Result<Value, String> {
    let what = format!("{what}: transport socket");
    let ctx: UpstreamTlsContext = decode(&what, ts, UPSTREAM)?;
    let mut rest = ctx.clone();
    rest.common_tls_context = None;
    rest.sni.clear();
    refuse_rest(&what, &rest)?;
    let common = ctx.common_tls_context.unwrap_or_default();
    let (certificates, ca, alpn, min_version) = common_parts(&what, &common)?;
    if min_version.is_some() {
        return Err(format!("{what}: `tls_params` is not supported on clusters"));
    }
    let mut out = serde_json::Map::new();
    if !ctx.sni.is_empty() {
        out.insert("sni".into(), json!(ctx.sni));
    }
    match ca {
        Some(ca) => {
            out.insert("ca".into(), json!(ca));
        }
        // Envoy does not verify without a validation context.
        None => {
            out.insert("verify".into(), json!(false));
        }
    }
    match certificates.as_slice() {
        [] => {}
        [one] => {
            out.insert("cert".into(), one["cert"].clone());
            out.insert("key".into(), one["key"].clone());
        }
        _ => return Err(format!("{what}: one client certificate at most")),
    }
    if !alpn.is_empty() {
        out.insert("alpn".into(), json!(alpn));
    }
    Ok(Value::Object(out))
}

fn decode<M: Message + Default>(what: &str, ts: &TransportSocket, url: &str) -> Result<M, String> {
    match &ts.config_type {
        Some(transport_socket::ConfigType::TypedConfig(a)) if a.type_url == url => {
            M::decode(a.value.as_slice()).map_err(|e| format!("{what}: {e}"))
        }
        Some(transport_socket::ConfigType::TypedConfig(a)) => Err(format!(
            "{what}: `{}` is not supported (only TLS)",
            a.type_url
        )),
        None => Err(format!("{what}: needs a `typed_config`")),
    }
}

/// Certificates (`{cert, key}` each), the CA file, ALPN and the lowest
/// TLS version of a common context.
#[allow(clippy::type_complexity)]
fn common_parts(
    what: &str,
    c: &CommonTlsContext,
) -> Result<
    (
        Vec<Value>,
        Option<String>,
        Vec<String>,
        Option<&'static str>,
    ),
    String,
> {
    let mut rest = c.clone();
    rest.tls_certificates.clear();
    rest.validation_context_type = None;
    rest.alpn_protocols.clear();
    rest.tls_params = None;
    refuse_rest(what, &rest)?;
    let mut certificates = Vec::new();
    for t in &c.tls_certificates {
        let mut rest = t.clone();
        rest.certificate_chain = None;
        rest.private_key = None;
        refuse_rest(&format!("{what}: certificate"), &rest)?;
        certificates.push(json!({
            "cert": file(what, t.certificate_chain.as_ref())?,
            "key": file(what, t.private_key.as_ref())?,
        }));
    }
    let ca = match &c.validation_context_type {
        None => None,
        Some(common_tls_context::ValidationContextType::ValidationContext(v)) => {
            let mut rest = v.clone();
            rest.trusted_ca = None;
            refuse_rest(&format!("{what}: validation context"), &rest)?;
            Some(file(what, v.trusted_ca.as_ref())?)
        }
        Some(_) => {
            return Err(format!(
                "{what}: only a plain `validation_context` is supported"
            ));
        }
    };
    let min_version = match &c.tls_params {
        None => None,
        Some(p) => {
            let mut rest = p.clone();
            rest.tls_minimum_protocol_version = 0;
            refuse_rest(&format!("{what}: tls_params"), &rest)?;
            // TLS_AUTO 0, TLSv1_0 1, TLSv1_1 2, TLSv1_2 3, TLSv1_3 4.
            match p.tls_minimum_protocol_version {
                0..=3 => Some("1.2"),
                4 => Some("1.3"),
                n => return Err(format!("{what}: unknown TLS version {n}")),
            }
        }
    };
    Ok((certificates, ca, c.alpn_protocols.clone(), min_version))
}

/// The file a data source names.
fn file(what: &str, d: Option<&DataSource>) -> Result<String, String> {
    match d.and_then(|d| d.specifier.as_ref()) {
        Some(data_source::Specifier::Filename(f)) => Ok(f.clone()),
        Some(_) => Err(format!(
            "{what}: certificates, keys and CAs must be files (`filename`)"
        )),
        None => Err(format!("{what}: a certificate, key or CA is missing")),
    }
}
