//! The routing step both HTTP engines share (hyper and the lean HTTP/1.1
//! path): match a route, run the filter chain (the route's override or the
//! listener's), re-match when a filter asks, fold the route's header
//! changes into the request, and stop early for redirects.

use std::sync::Arc;

use metaproxy_core::filter::{FilterAction, FilterChain, LocalResponse, RequestContext};
use metaproxy_core::metadata::MetadataView;
use metaproxy_core::router::{Route, RouteAction, Target};
use metaproxy_core::snapshot::ListenerRuntime;
use metaproxy_core::{ErrorKind, ErrorSource, ProxyError};

use super::metadata as md;
use super::reply::redirect_location;
use super::{HttpClusterSettings, UpstreamVersion};

/// A request that goes upstream: its route and the chain that ran.
pub(crate) struct Routed<'a> {
    /// The matched route.
    pub route: &'a Route,
    /// The filter chain (its response phase runs on the answer).
    pub chain: &'a FilterChain,
}

/// A request answered without going upstream.
pub(crate) enum Early {
    /// A local error reply.
    Error(ProxyError),
    /// A filter's complete answer.
    Respond(LocalResponse),
    /// A redirect: status code and `Location`.
    Redirect(u16, String),
}

impl From<ProxyError> for Early {
    fn from(e: ProxyError) -> Self {
        Early::Error(e)
    }
}

/// Routes one request (see the module doc).
pub(crate) async fn route_request<'a>(
    listener: &'a ListenerRuntime,
    rc: &mut RequestContext,
    scheme: &'static str,
) -> Result<Routed<'a>, Early> {
    let mut route = listener.routes.find(&*rc);
    let chain = route
        .and_then(|r| r.filters.as_ref())
        .unwrap_or(&listener.filters);
    if !chain.is_empty() {
        match chain.on_request(rc).await {
            FilterAction::Continue => {}
            FilterAction::Reply(e) => return Err(Early::Error(e)),
            FilterAction::Respond(r) => return Err(Early::Respond(r)),
        }
        if rc.reroute {
            route = listener.routes.find(&*rc);
        }
    }
    let route = route.ok_or_else(|| {
        ProxyError::new(
            ErrorKind::RouteNotFound,
            ErrorSource::Internal,
            format!(
                "no route for {} {}{} on listener `{}`",
                rc.lookup(md::METHOD).unwrap_or("?"),
                rc.lookup(md::AUTHORITY).unwrap_or(""),
                rc.lookup(md::PATH).unwrap_or("?"),
                listener.name
            ),
        )
    })?;
    rc.route = Some(route.name.clone());
    rc.request_mutation.extend(&route.request_mutation);
    rc.response_mutation.extend(&route.response_mutation);
    if let RouteAction::Redirect(r) = &route.action {
        let scheme = rc.lookup(md::SCHEME).unwrap_or(scheme);
        let location = redirect_location(
            r,
            scheme,
            rc.lookup(md::AUTHORITY).unwrap_or(""),
            rc.lookup(md::PATH).unwrap_or("/"),
        );
        return Err(Early::Redirect(r.code, location));
    }
    Ok(Routed { route, chain })
}

/// The route's target for this request.
pub(crate) fn pick_target(route: &Route) -> Result<&Target, ProxyError> {
    route.action.pick().ok_or_else(|| {
        ProxyError::new(
            ErrorKind::Internal,
            ErrorSource::Internal,
            format!("route `{}` has no target", route.name),
        )
    })
}

/// Whether every cluster a listener can send to (route targets and mirrors,
/// virtual hosts included) is spoken to with HTTP/1.1 when the client
/// speaks HTTP/1.1: then the lean path can serve the listener's HTTP/1.1
/// requests end to end.
pub(crate) fn all_targets_http1(listener: &ListenerRuntime) -> bool {
    let targets_ok = |route: &Route| {
        let h1 = |t: &Target| {
            // TLS clusters are served by hyper's client.
            t.cluster.parts.pool.tls.is_none()
                && t.cluster
                    .parts
                    .codec
                    .clone()
                    .downcast::<HttpClusterSettings>()
                    .map_or(true, |s: Arc<HttpClusterSettings>| {
                        s.version != UpstreamVersion::Http2
                    })
        };
        let action = match &route.action {
            RouteAction::Redirect(_) => true,
            RouteAction::Single(t) => h1(t),
            RouteAction::Weighted { targets, .. } => targets.iter().all(|(t, _)| h1(t)),
        };
        action && route.mirror.as_ref().is_none_or(|m| h1(&m.target))
    };
    listener.routes.routes().iter().all(targets_ok)
        && listener
            .routes
            .virtual_hosts()
            .iter()
            .all(|vh| vh.routes.iter().all(targets_ok))
}
