//! The routing step of every engine: match a route, run the filter chain
//! on the request (the route's override or the listener's), re-match when
//! a filter changed routing metadata, fold the route's header changes into
//! the request, then pick the target (weights, subset) and the hash key.

use crate::cluster::{HashDecision, hash_policy};
use crate::error::{ErrorKind, Origin, ProxyError};
use crate::filter::{FilterAction, FilterChain, LocalResponse, RequestContext, ResponseContext};
use crate::router::{Redirect, Route, RouteAction, Target};
use crate::snapshot::ListenerRuntime;

/// A request that goes upstream: where, and with what.
#[derive(Debug)]
pub struct Routed<'a> {
    /// The matched route.
    pub route: &'a Route,
    /// The chain that ran (its response phase runs on the answer).
    pub chain: &'a FilterChain,
    /// The target picked for this request.
    pub target: &'a Target,
    /// The hash key for the balancer and the affinity cookie to set.
    pub hash: HashDecision,
}

/// A request answered without going upstream.
#[derive(Debug)]
pub enum Early<'a> {
    /// A local error reply.
    Error(ProxyError),
    /// A filter's complete answer.
    Respond(LocalResponse),
    /// The route answers with a redirect (only on protocols that claim
    /// redirects, checked when the config is built).
    Redirect(&'a Redirect),
}

impl Early<'_> {
    /// The answer as a local error, for a protocol that has no form for a
    /// filter's complete answer or a redirect.
    pub fn into_error(self) -> ProxyError {
        match self {
            Early::Error(e) => e,
            Early::Respond(r) => ProxyError::new(
                ErrorKind::Internal,
                Origin::Internal,
                format!(
                    "a filter answered with status {} on a listener whose protocol has no form for it",
                    r.status
                ),
            ),
            Early::Redirect(_) => ProxyError::new(
                ErrorKind::Internal,
                Origin::Internal,
                "a redirect route on a listener whose protocol has no redirects",
            ),
        }
    }
}

impl From<ProxyError> for Early<'_> {
    fn from(e: ProxyError) -> Self {
        Early::Error(e)
    }
}

/// Routes one request on `listener`. `describe` names the request in the
/// "no route" error (`GET host/path`, `Service.method`): only called when
/// nothing matched.
pub async fn route<'a>(
    listener: &'a ListenerRuntime,
    rc: &mut RequestContext,
    describe: impl FnOnce(&RequestContext) -> String,
) -> Result<Routed<'a>, Early<'a>> {
    // Matched before the chain so that a route can override the chain; a
    // filter that changes routing metadata sets `reroute`.
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
    let Some(route) = route else {
        return Err(Early::Error(ProxyError::new(
            ErrorKind::RouteNotFound,
            Origin::Internal,
            format!(
                "no route for {} on listener `{}`",
                describe(rc),
                listener.name
            ),
        )));
    };
    rc.route = Some(route.name.clone());
    rc.request_mutation.extend(&route.request_mutation);
    rc.response_mutation.extend(&route.response_mutation);
    let target = match &route.action {
        RouteAction::Redirect(r) => return Err(Early::Redirect(r)),
        action => action.pick().ok_or_else(|| {
            ProxyError::new(
                ErrorKind::Internal,
                Origin::Internal,
                format!("route `{}` has no target", route.name),
            )
        })?,
    };
    let policies = &target.cluster.parts.hash_policy;
    let hash = if policies.is_empty() {
        HashDecision::default()
    } else {
        hash_policy::decide(policies, &*rc)
    };
    Ok(Routed {
        route,
        chain,
        target,
        hash,
    })
}

/// Runs `chain`'s response phase on the answer that `view` describes
/// (built only when the chain has filters); a filter may still replace
/// the answer.
pub async fn on_response(
    chain: &FilterChain,
    rc: &mut RequestContext,
    view: impl FnOnce() -> ResponseContext,
) -> Result<(), Early<'static>> {
    if chain.is_empty() {
        return Ok(());
    }
    match chain.on_response(rc, &view()).await {
        FilterAction::Continue => Ok(()),
        FilterAction::Reply(e) => Err(Early::Error(e)),
        FilterAction::Respond(r) => Err(Early::Respond(r)),
    }
}

/// The error for an answer that missed the route's whole-answer timeout.
pub fn route_timeout(route: &Route, target: &Target, awaited: &str) -> ProxyError {
    ProxyError::new(
        ErrorKind::Timeout,
        Origin::Upstream,
        format!(
            "no {awaited} from cluster `{}` within {:?}",
            target.cluster.parts.name, route.timeout
        ),
    )
}
