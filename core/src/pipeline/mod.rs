//! The request path every engine shares (framed RPC, lean HTTP/1.1,
//! hyper), written once so the engines cannot drift apart.
//!
//! The order, for every protocol, as an engine calls the steps:
//! 1. [`route`]: route match → filter chain (request) → re-route → the
//!    route's header changes → target (weights, subset) → hash key and
//!    affinity cookie; or an [`Early`] answer (filter reply, redirect,
//!    "no route").
//! 2. [`admit`]: the circuit breaker's request permit.
//! 3. [`spawn_mirror`]: the copy to the mirror cluster (only for an
//!    admitted request).
//! 4. [`run_tries`] under the route's whole-answer timeout
//!    ([`route_timeout`]): endpoint pick, per-try timeout, outlier
//!    accounting, retry policy, retry budget.
//! 5. [`on_response`]: filter chain (response).
//! 6. [`finish`]: target counters and latency, local-reply counter,
//!    access log.
//!
//! An engine decodes, sends one try and one mirror copy the way its
//! protocol does (the closures given to [`run_tries`] and
//! [`spawn_mirror`]), renders [`Early`] answers and local errors in its
//! protocol, and encodes.

mod admit;
mod finish;
mod mirror;
mod route;
mod tries;

pub use admit::{admit, pick_endpoint};
pub use finish::{Ending, Finished, finish};
pub use mirror::spawn_mirror;
pub use route::{Early, Routed, on_response, route, route_timeout};
pub use tries::{TryAnswer, run_tries};

#[cfg(test)]
mod tests;
