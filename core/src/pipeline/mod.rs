//! The request-path steps every engine shares (framed RPC, lean HTTP/1.1,
//! hyper), written once so the engines cannot drift apart.
//!
//! The order, for every protocol: route match → filter chain (request) →
//! re-route → target (weights, subset) → hash key / affinity → circuit
//! breaker ([`admit`]) → mirror → tries ([`run_tries`]: endpoint pick,
//! per-try timeout, outlier accounting, retry policy and budget) →
//! filter chain (response) → metrics and access log. An engine decodes,
//! sends one try the way its protocol does (the closure given to
//! [`run_tries`]) and encodes.
//!
//! [`finish`] records every request the same way (target counters and
//! latency, local-reply counter, access log). Still per engine (see
//! issue 14): the route step, the mirror copy and the response filters.

mod admit;
mod finish;
mod tries;

pub use admit::{admit, pick_endpoint};
pub use finish::{Ending, Finished, finish};
pub use tries::{TryAnswer, run_tries};
