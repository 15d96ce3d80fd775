//! Connection upgrades (WebSocket) on routes that allow them: which
//! requests ask for one, the headers that carry it upstream, and the switch
//! once the upstream answered `101 Switching Protocols`, after which the
//! two connections are relayed as a tunnel ([`super::tunnel`]).

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Version};
use hyper::upgrade::OnUpgrade;
use metaproxy_core::router::Route;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::body::Held;
use super::tunnel::relay;

/// An upgrade the client asked for and the route allows.
pub(crate) struct Requested {
    /// The `Upgrade` header as the client sent it (`websocket`).
    protocol: HeaderValue,
    /// Resolves to the client's connection once the 101 is written.
    client: OnUpgrade,
}

/// The upgrade `parts` asks for, when `route` relays it: an HTTP/1.1
/// request with `Connection: upgrade` and an `Upgrade` protocol the route
/// lists. Takes the client side's pending connection out of the request.
pub(crate) fn requested(parts: &mut http::request::Parts, route: &Route) -> Option<Requested> {
    if route.upgrades.is_empty() || parts.version != Version::HTTP_11 {
        return None;
    }
    let asks = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let protocol = parts.headers.get(header::UPGRADE)?.clone();
    // `Upgrade: websocket` (a list or a version suffix never names two).
    let name = protocol.to_str().ok()?.split('/').next()?.trim();
    if !asks || !route.upgrades.iter().any(|u| u.eq_ignore_ascii_case(name)) {
        return None;
    }
    let client = parts.extensions.remove::<OnUpgrade>()?;
    Some(Requested { protocol, client })
}

impl Requested {
    /// Puts the upgrade back on the upstream request's headers (after the
    /// hop-by-hop ones were removed).
    pub(crate) fn carry(&self, headers: &mut HeaderMap) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, self.protocol.clone());
    }

    /// The upstream switched (`upstream_protocol` is its `Upgrade`): the
    /// client's answer gets the upgrade headers, and a task relays the two
    /// connections once both are handed over, holding `held` (the
    /// endpoint's active request, the breaker's permit) until it ends.
    pub(crate) fn switch(
        self,
        headers: &mut HeaderMap,
        upstream_protocol: Option<HeaderValue>,
        upstream: OnUpgrade,
        mut held: Held,
        idle: Duration,
        shutdown: CancellationToken,
    ) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(
            header::UPGRADE,
            upstream_protocol.unwrap_or_else(|| self.protocol.clone()),
        );
        // The upstream connection now belongs to the tunnel: never pooled.
        drop(held.conn.take());
        tokio::spawn(async move {
            let (client, upstream) = match tokio::try_join!(self.client, upstream) {
                Ok(both) => both,
                Err(e) => {
                    debug!(error = %e, "upgrade not completed");
                    return;
                }
            };
            let stats = relay(client, upstream, idle, shutdown).await;
            drop(held);
            debug!(
                to_upstream = stats.to_upstream,
                to_client = stats.to_client,
                end = ?stats.end,
                "upgraded connection ended"
            );
        });
    }
}
