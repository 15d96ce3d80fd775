//! The request pipeline, start to end, for every engine: a decoded
//! request goes in, the client is answered, the request is counted and
//! logged. The engine's [`Exchange`] does what its protocol does its own
//! way; the order of the steps is this file's, one order for all.

use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;
use tracing::debug;

use crate::deadline::LazyDeadline;
use crate::filter::RequestContext;
use crate::message::MessageKind;
use crate::router::Target;
use crate::snapshot::ListenerRuntime;

use super::exchange::{Answered, Delivered, Exchange, MirrorCopy, Mirroring, Status};
use super::finish::{Finished, finish};
use super::route::{Early, Routed, on_response, route, route_timeout};
use super::{admit, run_tries, spawn_mirror};

/// Runs one request on `listener` through the pipeline, `exchange` doing
/// the engine's part, and returns the engine's reply once the client is
/// answered. `started` is when the request was read; the route's
/// whole-answer timeout counts from it, on the deadline kept in
/// `deadline` (a connection's, re-armed from one request to the next, or
/// a fresh one).
///
/// The order: route match → filter chain (request) → re-route → target
/// (weights, subset) → hash key and affinity cookie → [`Exchange::prepare`]
/// → circuit breaker → mirror → tries (pick, per-try timeout, outlier
/// accounting, retries) under the route timeout → filter chain (response)
/// → [`Exchange::deliver`]; any step may end it early with
/// [`Exchange::refuse`]; then metrics and the access log.
pub async fn serve<E: Exchange>(
    listener: &ListenerRuntime,
    mut rc: RequestContext,
    exchange: &mut E,
    deadline: &mut Option<LazyDeadline>,
    started: Instant,
) -> E::Reply {
    let mut target = None;
    let active = InFlight::count(&listener.metrics.requests_active);
    let forwarded = forward(listener, &mut rc, exchange, deadline, started, &mut target).await;
    drop(active);
    let delivered = match forwarded {
        Ok((answered, deadline)) => match exchange.deliver(answered, &mut rc, deadline).await {
            Ok(delivered) => delivered,
            Err(e) => refuse(listener, exchange, Early::Error(e), &rc).await,
        },
        Err(early) => refuse(listener, exchange, early, &rc).await,
    };
    let mut digits = itoa::Buffer::new();
    let status = match &delivered.status {
        Status::None => None,
        Status::Code(code) => Some(digits.format(*code)),
        Status::Text(text) => Some(&**text),
    };
    finish(
        listener,
        rc.protocol,
        &Finished {
            request: &rc,
            target,
            ending: delivered.ending,
            status,
            started: started.into_std(),
        },
    );
    delivered.reply
}

/// The early answer, logged when it is a local error.
async fn refuse<E: Exchange>(
    listener: &ListenerRuntime,
    exchange: &mut E,
    early: Early<'_>,
    rc: &RequestContext,
) -> Delivered<E::Reply> {
    if let Early::Error(e) = &early {
        debug!(
            listener = %listener.name,
            request = %exchange.describe(rc),
            route = rc.route.as_deref().unwrap_or(""),
            error = %e.chain(),
            "local reply"
        );
    }
    exchange.refuse(early, rc).await
}

/// The steps up to the answer that goes to the client (past the response
/// filters), or the early answer that replaces it.
async fn forward<'l, 'd, E: Exchange>(
    listener: &'l ListenerRuntime,
    rc: &mut RequestContext,
    exchange: &mut E,
    slot: &'d mut Option<LazyDeadline>,
    started: Instant,
    chosen: &mut Option<&'l Target>,
) -> Result<(Answered<'l, E::Answer>, &'d mut LazyDeadline), Early<'l>> {
    let Routed {
        route,
        chain,
        target,
        hash,
    } = route(listener, rc, |rc| exchange.describe(rc)).await?;
    *chosen = Some(target);
    exchange.prepare(route, target, rc)?;
    let permit = admit(target)?;
    // Mirrored only once admitted: a copy of a refused request is never sent.
    let mut mirror_later = None;
    if let Some(mirror) = route.mirror.as_ref().filter(|m| m.sample()) {
        match exchange.mirror_copy(route, rc) {
            Mirroring::Now(copy) => {
                spawn_mirror(mirror, route.timeout, move |c, e| copy.send(c, e));
            }
            Mirroring::AfterAnswer => mirror_later = Some(mirror),
            Mirroring::Never => {}
        }
    }
    // A oneway request is forwarded, never waited for, never retried.
    let oneway = rc.kind == MessageKind::Oneway;
    let policy = route.retry.as_ref().filter(|_| !oneway);
    let ends_by = started + route.timeout;
    let deadline = LazyDeadline::arm(slot, ends_by);
    let tried = tokio::select! {
        biased;
        r = run_tries(exchange, target, policy, hash.hash, rc) => Some(r),
        () = deadline.expired() => None,
    };
    let done = match tried {
        Some(done) => done?,
        None => return Err(route_timeout(route, target, E::AWAITED).into()),
    };
    if let Some(mirror) = mirror_later {
        match exchange.mirror_copy_after_answer() {
            Some(copy) => spawn_mirror(mirror, route.timeout, move |c, e| copy.send(c, e)),
            None => debug!(route = %route.name, "request not complete or too large: not mirrored"),
        }
    }
    if !oneway {
        on_response(chain, rc, || exchange.view(&done.answer)).await?;
    }
    let answered = Answered {
        route,
        target,
        answer: done.answer,
        active: done.active,
        permit,
        set_cookie: hash.set_cookie,
        ends_by,
    };
    Ok((answered, deadline))
}

/// Counts one request in a gauge while held (also when the request's
/// future is dropped half-way).
struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    fn count(gauge: &'a Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
