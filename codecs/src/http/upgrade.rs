//! Connection upgrades (WebSocket) on routes that allow them: which
//! requests ask for one, the headers that carry it upstream, and the switch
//! once the upstream answered `101 Switching Protocols`, after which the
//! two connections are relayed as a tunnel ([`super::tunnel`]).

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Version};
use hyper::upgrade::OnUpgrade;
use metaproxy_core::router::Route;
use metaproxy_core::snapshot::ListenerRuntime;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::body::Held;
use super::tunnel::relay;

/// What a request asks for, as far as upgrades go.
pub(crate) enum Asked {
    /// No upgrade, or `h2c` (which a proxy ignores: the request goes on as
    /// a plain one, its `Upgrade` removed with the hop-by-hop headers).
    Nothing,
    /// An upgrade the route relays.
    Relayed(Requested),
    /// An upgrade the route does not relay (answered 403): its protocol.
    Refused(String),
}

/// An upgrade the client asked for and the route allows.
pub(crate) struct Requested {
    /// The `Upgrade` header as the client sent it (`websocket`).
    protocol: HeaderValue,
    /// Resolves to the client's connection once the 101 is written.
    client: OnUpgrade,
}

/// The upgrade `parts` asks for: an HTTP/1.1 request with `Connection:
/// upgrade` and an `Upgrade` protocol. Relayed when `route` lists the
/// protocol (the client side's pending connection is taken out of the
/// request), refused otherwise.
pub(crate) fn asked(parts: &mut http::request::Parts, route: &Route) -> Asked {
    if parts.version != Version::HTTP_11 {
        return Asked::Nothing;
    }
    let asks = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let Some(protocol) = parts.headers.get(header::UPGRADE).filter(|_| asks).cloned() else {
        return Asked::Nothing;
    };
    // `websocket`, or a list (`h2c, websocket`): the first one is taken.
    let text = protocol.to_str().unwrap_or_default();
    let first = text.split(',').next().unwrap_or_default();
    let name = first.split('/').next().unwrap_or_default().trim();
    if name.eq_ignore_ascii_case("h2c") {
        return Asked::Nothing;
    }
    if !route.upgrades.iter().any(|u| u.eq_ignore_ascii_case(name)) {
        return Asked::Refused(name.to_string());
    }
    match parts.extensions.remove::<OnUpgrade>() {
        Some(client) => Asked::Relayed(Requested { protocol, client }),
        None => Asked::Refused(name.to_string()),
    }
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
    /// endpoint's active request, the breaker's permit) until it ends,
    /// under `listener`'s tunnel idle timeout, counted in its metrics.
    pub(crate) fn switch(
        self,
        headers: &mut HeaderMap,
        upstream_protocol: Option<HeaderValue>,
        upstream: OnUpgrade,
        mut held: Held,
        listener: Arc<ListenerRuntime>,
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
            let metrics = &listener.metrics;
            metrics.tunnels_active.inc();
            let stats = relay(
                client,
                upstream,
                listener.limits.tunnel_idle_timeout,
                shutdown,
                (
                    |n| {
                        metrics.tunnel_to_upstream.inc_by(n);
                    },
                    |n| {
                        metrics.tunnel_to_downstream.inc_by(n);
                    },
                ),
            )
            .await;
            metrics.tunnels_active.dec();
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
