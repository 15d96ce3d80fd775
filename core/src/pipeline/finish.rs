//! The last step of every request, whatever the engine: the target's
//! outcome counters and latency, the listener's local-reply counter, and
//! the access log line.

use std::time::Instant;

use crate::access_log::Entry;
use crate::error::ErrorKind;
use crate::filter::RequestContext;
use crate::router::Target;
use crate::snapshot::ListenerRuntime;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The upstream answered; `error` when its answer is an error (HTTP
    /// 5xx, a Dubbo or Thrift error answer).
    Upstream {
        /// The answer is an error.
        error: bool,
    },
    /// A oneway request was forwarded (no answer).
    Oneway,
    /// A filter answered with its own response.
    Filter,
    /// A redirect route answered.
    Redirect,
    /// The proxy answered with a local error reply of this kind.
    Failed(ErrorKind),
}

impl Ending {
    /// The access log's `outcome` (and the requests counter's label).
    pub fn label(self) -> &'static str {
        match self {
            Ending::Upstream { error: false } => "success",
            Ending::Upstream { error: true } => "error",
            Ending::Oneway => "oneway",
            Ending::Filter => "local",
            Ending::Redirect => "redirect",
            Ending::Failed(kind) => crate::metrics::reason(kind),
        }
    }
}

/// What [`finish`] records about one request.
#[derive(Debug)]
pub struct Finished<'a> {
    /// The request's context (route, upstream host, metadata for the log).
    pub request: &'a RequestContext,
    /// The target it was sent to, once one was picked.
    pub target: Option<&'a Target>,
    /// How it ended.
    pub ending: Ending,
    /// The protocol's status of the answer, when it has one.
    pub status: Option<&'a str>,
    /// When the request was decoded.
    pub started: Instant,
}

/// Records one finished request on `listener`'s metrics and access log.
pub fn finish(listener: &ListenerRuntime, protocol: &str, done: &Finished<'_>) {
    let elapsed = done.started.elapsed();
    if let Some(t) = done.target {
        match done.ending {
            Ending::Upstream { error: false } | Ending::Oneway => t.metrics.success.inc(),
            Ending::Upstream { error: true } => t.metrics.error.inc(),
            _ => t.metrics.local.inc(),
        };
        t.metrics.duration.observe(elapsed.as_secs_f64());
    }
    if let Ending::Failed(kind) = done.ending {
        listener.metrics.local_reply(kind);
    }
    if let Some(log) = listener.access_log() {
        let rc = done.request;
        log.log(&Entry {
            metadata: rc,
            listener: &listener.name,
            protocol,
            route: rc.route.as_deref(),
            cluster: done.target.map(|t| &*t.cluster.parts.name),
            upstream_host: rc.upstream,
            duration: elapsed,
            outcome: done.ending.label(),
            status: done.status,
        });
    }
}
