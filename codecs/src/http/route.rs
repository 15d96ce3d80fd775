//! What both HTTP engines (hyper and the lean HTTP/1.1 path) add to
//! core's routing step: HTTP's own early answers (a redirect's
//! `Location`, built from the request's scheme, authority and path), the
//! request's name in errors, and whether the lean path can serve a
//! listener.

use std::sync::Arc;

use metaproxy_core::ProxyError;
use metaproxy_core::filter::{LocalResponse, RequestContext};
use metaproxy_core::metadata::MetadataView;
use metaproxy_core::pipeline;
use metaproxy_core::router::{Route, RouteAction, Target};
use metaproxy_core::snapshot::ListenerRuntime;

use super::metadata as md;
use super::reply::redirect_location;
use super::{HttpClusterSettings, UpstreamVersion};

/// A request answered without going upstream, in HTTP's terms.
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

impl Early {
    /// Core's early answer for `rc`, rendered in HTTP's terms.
    pub(crate) fn of(early: pipeline::Early<'_>, rc: &RequestContext, scheme: &str) -> Early {
        match early {
            pipeline::Early::Error(e) => Early::Error(e),
            pipeline::Early::Respond(r) => Early::Respond(r),
            pipeline::Early::Redirect(r) => {
                let scheme = rc.lookup(md::SCHEME).unwrap_or(scheme);
                let location = redirect_location(
                    r,
                    scheme,
                    rc.lookup(md::AUTHORITY).unwrap_or(""),
                    rc.lookup(md::PATH).unwrap_or("/"),
                );
                Early::Redirect(r.code, location)
            }
        }
    }
}

/// An HTTP request as a "no route" error and the local-reply log name it:
/// method, host and path.
pub(crate) fn describe(rc: &RequestContext) -> String {
    format!(
        "{} {}{}",
        rc.lookup(md::METHOD).unwrap_or("?"),
        rc.lookup(md::AUTHORITY).unwrap_or(""),
        rc.lookup(md::PATH).unwrap_or("?"),
    )
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
