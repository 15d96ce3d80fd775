//! The request path every engine shares (framed RPC, lean HTTP/1.1,
//! hyper, TLS passthrough), written once so the engines cannot drift
//! apart.
//!
//! An engine decodes a request and calls [`serve`] with its
//! [`Exchange`]: what its protocol does its own way (send one try,
//! classify and show the answer, replay a body, copy for the mirror,
//! deliver the answer, render a local reply). [`serve`] runs the steps in
//! one order for every protocol:
//! 1. [`route`]: route match → filter chain (request) → re-route → the
//!    route's header changes → target (weights, subset) → hash key and
//!    affinity cookie; or an [`Early`] answer (filter reply, redirect,
//!    "no route").
//! 2. [`Exchange::prepare`], then [`admit`]: the circuit breaker's
//!    request permit.
//! 3. [`spawn_mirror`]: the copy to the mirror cluster (only for an
//!    admitted request).
//! 4. [`run_tries`] under the route's whole-answer deadline
//!    ([`route_timeout`]): endpoint pick, per-try timeout, outlier
//!    accounting, retry policy, retry budget.
//! 5. [`on_response`]: filter chain (response).
//! 6. [`Exchange::deliver`], or [`Exchange::refuse`] for an early answer.
//! 7. [`finish`]: target counters and latency, local-reply counter,
//!    access log.

mod admit;
mod exchange;
mod finish;
mod mirror;
mod route;
mod serve;
mod tries;

pub use admit::{admit, pick_endpoint};
pub use exchange::{Answered, Delivered, Exchange, MirrorCopy, Mirroring, NoMirror, Status};
pub use finish::{Ending, Finished, finish};
pub use mirror::spawn_mirror;
pub use route::{Early, Routed, on_response, route, route_timeout};
pub use serve::serve;
pub use tries::{TryAnswer, run_tries};

#[cfg(test)]
mod scripted;
#[cfg(test)]
mod tests;
