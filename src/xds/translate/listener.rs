//! An LDS `Listener` as one of the proxy's listeners: its address, its TLS
//! and its one network filter, which says the protocol (HTTP connection
//! manager → `http`, `thrift_proxy` → `thrift`, `dubbo_proxy` and
//! `generic_proxy` with the Dubbo codec → `dubbo`)
//! and where its routes are (RDS by name, or inline).

use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, Listener, ListenerFilter, filter, listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::dubbo_proxy::v3::DubboProxy;
use envoy_types::pb::envoy::extensions::filters::network::generic_proxy::router::v3::Router as GenericRouter;
use envoy_types::pb::envoy::extensions::filters::network::generic_proxy::v3::{
    GenericProxy, generic_proxy,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::thrift_proxy::v3::ThriftProxy;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use serde_json::{Value, json};

use super::common::{duration, socket};
use super::tls::listener_tls;
use crate::xds::leftover::refuse_rest;

const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const THRIFT: &str =
    "type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.ThriftProxy";
const DUBBO: &str =
    "type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy";
const GENERIC: &str =
    "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.v3.GenericProxy";
const GENERIC_DUBBO_CODEC: &str = "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.codecs.dubbo.v3.DubboCodecConfig";
const GENERIC_ROUTER: &str =
    "type.googleapis.com/envoy.extensions.filters.network.generic_proxy.router.v3.Router";
const ROUTER: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const THRIFT_ROUTER: &str =
    "type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.router.v3.Router";
const DUBBO_ROUTER: &str =
    "type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.router.v3.Router";
const TLS_INSPECTOR: &str =
    "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";

/// A listener, translated but for its routes.
#[derive(Debug, Clone)]
pub struct XdsListener {
    /// The listener's config, without `routes` / `virtual_hosts`.
    pub config: Value,
    /// The proxy's protocol name.
    pub protocol: &'static str,
    /// Where its routes come from.
    pub routes: RouteSource,
}

/// Where a listener's routes come from.
#[derive(Debug, Clone)]
pub enum RouteSource {
    /// The RDS route configuration of this name.
    Rds(String),
    /// An HTTP route configuration written in the listener.
    Http(Box<envoy_types::pb::envoy::config::route::v3::RouteConfiguration>),
    /// The TRDS (thrift) route configuration of this name.
    Trds(String),
    /// The DRDS (dubbo) multiple route configuration of this name.
    Drds(String),
    /// The generic RDS route configuration of this name.
    GenericRds(String),
    /// `generic_proxy` routes written in the listener.
    Generic(Box<envoy_types::pb::envoy::extensions::filters::network::generic_proxy::v3::RouteConfiguration>),
    /// Thrift routes written in the listener.
    Thrift(Box<envoy_types::pb::envoy::extensions::filters::network::thrift_proxy::v3::RouteConfiguration>),
    /// Dubbo route configurations written in the listener.
    Dubbo(Vec<envoy_types::pb::envoy::extensions::filters::network::dubbo_proxy::v3::RouteConfiguration>),
}

/// Translates one listener.
pub fn translate(l: &Listener) -> Result<XdsListener, String> {
    let what = format!("listener `{}`", l.name);
    let mut rest = l.clone();
    rest.name.clear();
    rest.address = None;
    rest.filter_chains.clear();
    rest.stat_prefix.clear();
    rest.traffic_direction = 0;
    rest.listener_filters.retain(|f| !is_tls_inspector(f));
    refuse_rest(&what, &rest)?;
    let address = socket(&format!("{what}: address"), l.address.as_ref())?;
    let [chain] = l.filter_chains.as_slice() else {
        return Err(format!("{what}: exactly one filter chain is supported"));
    };
    let chain_what = format!("{what}, filter chain");
    let mut chain_rest: FilterChain = chain.clone();
    chain_rest.filters.clear();
    chain_rest.transport_socket = None;
    chain_rest.name.clear();
    refuse_rest(&chain_what, &chain_rest)?;
    let [network] = chain.filters.as_slice() else {
        return Err(format!(
            "{chain_what}: exactly one network filter is supported"
        ));
    };
    let any = typed(&chain_what, network)?;
    let (protocol, routes, limits, options) = match any.type_url.as_str() {
        HCM => {
            let hcm = HttpConnectionManager::decode(any.value.as_slice())
                .map_err(|e| format!("{chain_what}: {e}"))?;
            let (routes, limits) = hcm_routes(&chain_what, &hcm)?;
            ("http", routes, limits, None)
        }
        THRIFT => {
            let t = ThriftProxy::decode(any.value.as_slice())
                .map_err(|e| format!("{chain_what}: {e}"))?;
            let (routes, options) = thrift(&chain_what, &t)?;
            ("thrift", routes, serde_json::Map::new(), Some(options))
        }
        DUBBO => {
            let d = DubboProxy::decode(any.value.as_slice())
                .map_err(|e| format!("{chain_what}: {e}"))?;
            (
                "dubbo",
                dubbo(&chain_what, &d)?,
                serde_json::Map::new(),
                None,
            )
        }
        GENERIC => {
            let g = GenericProxy::decode(any.value.as_slice())
                .map_err(|e| format!("{chain_what}: {e}"))?;
            (
                "dubbo",
                generic(&chain_what, &g)?,
                serde_json::Map::new(),
                None,
            )
        }
        other => {
            return Err(format!(
                "{chain_what}: network filter `{other}` is not supported (http_connection_manager, thrift_proxy, dubbo_proxy, generic_proxy are)"
            ));
        }
    };
    let mut config = json!({ "name": l.name, "address": address, "protocol": protocol });
    if !limits.is_empty() {
        config["limits"] = Value::Object(limits);
    }
    if let Some(o) = options {
        config["options"] = o;
    }
    if let Some(ts) = &chain.transport_socket {
        config["tls"] = listener_tls(&chain_what, ts)?;
    }
    Ok(XdsListener {
        config,
        protocol,
        routes,
    })
}

/// The TLS inspector reads SNI and ALPN; the proxy's TLS does that itself.
fn is_tls_inspector(f: &ListenerFilter) -> bool {
    f.name == "envoy.filters.listener.tls_inspector"
        || matches!(&f.config_type, Some(listener_filter::ConfigType::TypedConfig(a)) if a.type_url == TLS_INSPECTOR)
}

/// The typed config of a network filter.
fn typed<'a>(what: &str, f: &'a Filter) -> Result<&'a Any, String> {
    match &f.config_type {
        Some(filter::ConfigType::TypedConfig(a)) => Ok(a),
        _ => Err(format!(
            "{what}: filter `{}` needs a `typed_config`",
            f.name
        )),
    }
}

/// The HTTP connection manager's routes and the listener limits it sets.
fn hcm_routes(
    what: &str,
    hcm: &HttpConnectionManager,
) -> Result<(RouteSource, serde_json::Map<String, Value>), String> {
    let what = format!("{what}: http_connection_manager");
    let mut rest = hcm.clone();
    rest.codec_type = 0;
    rest.stat_prefix.clear();
    rest.route_specifier = None;
    rest.http_filters.clear();
    rest.stream_idle_timeout = None;
    rest.request_headers_timeout = None;
    if let Some(c) = &mut rest.common_http_protocol_options {
        c.idle_timeout = None;
        if c.max_headers_count.is_none() {
            rest.common_http_protocol_options = None;
        }
    }
    rest.max_request_headers_kb = None;
    refuse_rest(&what, &rest)?;
    for f in &hcm.http_filters {
        let url = match &f.config_type {
            Some(http_filter::ConfigType::TypedConfig(a)) => a.type_url.as_str(),
            _ => "",
        };
        if url != ROUTER {
            return Err(format!(
                "{what}: http filter `{}` is not supported (only the router)",
                f.name
            ));
        }
    }
    let mut limits = serde_json::Map::new();
    if let Some(t) = &hcm.stream_idle_timeout {
        limits.insert("stream_idle_timeout".into(), json!(duration(t)));
    }
    if let Some(t) = &hcm.request_headers_timeout {
        limits.insert("header_read_timeout".into(), json!(duration(t)));
    }
    if let Some(c) = &hcm.common_http_protocol_options {
        if let Some(t) = &c.idle_timeout {
            limits.insert("idle_timeout".into(), json!(duration(t)));
        }
        if let Some(n) = &c.max_headers_count {
            limits.insert("max_headers".into(), json!(n.value));
        }
    }
    if let Some(kb) = &hcm.max_request_headers_kb {
        limits.insert("max_header_bytes".into(), json!(u64::from(kb.value) * 1024));
    }
    use http_connection_manager::RouteSpecifier as R;
    let routes = match &hcm.route_specifier {
        Some(R::Rds(rds)) => {
            super::common::control_plane_source(
                &format!("{what}: `rds.config_source`"),
                rds.config_source.as_ref(),
            )?;
            RouteSource::Rds(rds.route_config_name.clone())
        }
        Some(R::RouteConfig(rc)) => RouteSource::Http(Box::new(rc.clone())),
        _ => {
            return Err(format!(
                "{what}: routes must come from `rds` or `route_config`"
            ));
        }
    };
    Ok((routes, limits))
}

/// Thrift routes (inline or TRDS) and the listener's transport and protocol.
fn thrift(what: &str, t: &ThriftProxy) -> Result<(RouteSource, Value), String> {
    let what = format!("{what}: thrift_proxy");
    let mut rest = t.clone();
    rest.transport = 0;
    rest.protocol = 0;
    rest.stat_prefix.clear();
    rest.route_config = None;
    rest.trds = None;
    rest.thrift_filters.retain(|f| {
        !matches!(&f.config_type, Some(envoy_types::pb::envoy::extensions::filters::network::thrift_proxy::v3::thrift_filter::ConfigType::TypedConfig(a)) if a.type_url == THRIFT_ROUTER)
            && f.name != "envoy.filters.thrift.router"
    });
    refuse_rest(&what, &rest)?;
    // TransportType: AUTO_TRANSPORT 0, FRAMED 1, UNFRAMED 2, HEADER 3;
    // ProtocolType: AUTO_PROTOCOL 0, BINARY 1, LAX_BINARY 2, COMPACT 3, TWITTER 4.
    let transport = match t.transport {
        0 => "auto",
        1 => "framed",
        2 => "unframed",
        3 => "header",
        n => return Err(format!("{what}: transport {n} is not supported")),
    };
    let protocol = match t.protocol {
        0 => "auto",
        1 | 2 => "binary",
        3 => "compact",
        n => return Err(format!("{what}: protocol {n} is not supported")),
    };
    let routes = match (&t.route_config, &t.trds) {
        (Some(rc), None) => RouteSource::Thrift(Box::new(rc.clone())),
        (None, Some(trds)) => {
            super::common::control_plane_source(
                &format!("{what}: `trds.config_source`"),
                trds.config_source.as_ref(),
            )?;
            RouteSource::Trds(trds.route_config_name.clone())
        }
        _ => {
            return Err(format!(
                "{what}: routes must come from `route_config` or `trds` (one of them)"
            ));
        }
    };
    Ok((
        routes,
        json!({ "transport": transport, "protocol": protocol }),
    ))
}

/// Dubbo routes (inline, `multiple_route_config`, or DRDS).
fn dubbo(what: &str, d: &DubboProxy) -> Result<RouteSource, String> {
    let what = format!("{what}: dubbo_proxy");
    let mut rest = d.clone();
    rest.stat_prefix.clear();
    rest.route_config.clear();
    rest.route_specifier = None;
    rest.protocol_type = 0;
    rest.serialization_type = 0;
    rest.dubbo_filters.retain(|f| {
        !(f.name == "envoy.filters.dubbo.router"
            || f.config
                .as_ref()
                .is_some_and(|a| a.type_url == DUBBO_ROUTER))
    });
    refuse_rest(&what, &rest)?;
    use envoy_types::pb::envoy::extensions::filters::network::dubbo_proxy::v3::dubbo_proxy::RouteSpecifier as S;
    match (&d.route_specifier, d.route_config.is_empty()) {
        (None, _) => Ok(RouteSource::Dubbo(d.route_config.clone())),
        (Some(S::MultipleRouteConfig(m)), true) => Ok(RouteSource::Dubbo(m.route_config.clone())),
        (Some(S::Drds(drds)), true) => {
            super::common::control_plane_source(
                &format!("{what}: `drds.config_source`"),
                drds.config_source.as_ref(),
            )?;
            Ok(RouteSource::Drds(drds.route_config_name.clone()))
        }
        (Some(_), false) => Err(format!(
            "{what}: `route_config` and `{}` are both set",
            if matches!(d.route_specifier, Some(S::Drds(_))) {
                "drds"
            } else {
                "multiple_route_config"
            }
        )),
    }
}

/// `generic_proxy` with the Dubbo codec: its routes (inline or generic
/// RDS); the router must be its only filter.
fn generic(what: &str, g: &GenericProxy) -> Result<RouteSource, String> {
    let what = format!("{what}: generic_proxy");
    let mut rest = g.clone();
    rest.stat_prefix.clear();
    rest.codec_config = None;
    rest.route_specifier = None;
    rest.filters.clear();
    refuse_rest(&what, &rest)?;
    let codec = g
        .codec_config
        .as_ref()
        .and_then(|c| c.typed_config.as_ref())
        .map(|a| a.type_url.as_str());
    if codec != Some(GENERIC_DUBBO_CODEC) {
        return Err(format!(
            "{what}: codec `{}` is not supported (the Dubbo codec is; HTTP goes through the HTTP connection manager)",
            codec.unwrap_or("none")
        ));
    }
    let [router] = g.filters.as_slice() else {
        return Err(format!("{what}: `filters` must be the router alone"));
    };
    let config = router.typed_config.as_ref();
    if config.is_none_or(|a| a.type_url != GENERIC_ROUTER) {
        return Err(format!("{what}: `filters` must be the router alone"));
    }
    let r = GenericRouter::decode(config.map_or(&[][..], |a| a.value.as_slice()))
        .map_err(|e| format!("{what}: router: {e}"))?;
    refuse_rest(&format!("{what}: router"), &r)?;
    use generic_proxy::RouteSpecifier as S;
    match &g.route_specifier {
        Some(S::RouteConfig(rc)) => Ok(RouteSource::Generic(Box::new(rc.clone()))),
        Some(S::GenericRds(rds)) => {
            super::common::control_plane_source(
                &format!("{what}: `generic_rds.config_source`"),
                rds.config_source.as_ref(),
            )?;
            Ok(RouteSource::GenericRds(rds.route_config_name.clone()))
        }
        None => Err(format!(
            "{what}: routes must come from `route_config` or `generic_rds`"
        )),
    }
}
