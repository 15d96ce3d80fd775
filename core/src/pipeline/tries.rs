//! The tries of one request: the first and the retries the route's policy
//! allows, each on a fresh pick that avoids endpoints already tried, each
//! under the per-try timeout; every outcome feeds outlier detection, every
//! retry takes the breaker's retry permit and is counted.

use std::sync::Arc;

use tracing::debug;

use crate::cluster::{ActiveGuard, Endpoint, Outcome, Resource};
use crate::error::{ErrorKind, Origin, ProxyError};
use crate::filter::RequestContext;
use crate::router::{RetryPolicy, Target};

use super::admit::pick_endpoint;
use super::exchange::Exchange;

/// The try that ended the loop: its answer, and the endpoint's
/// active-request guard (held until the answer's body is done).
#[derive(Debug)]
pub struct TryAnswer<A> {
    /// What the engine's try returned.
    pub answer: A,
    /// Counts the request as active on its endpoint while held.
    pub active: ActiveGuard,
}

/// Runs the tries of one request on `exchange`: each sent with
/// [`Exchange::send`], each on a fresh pick of `target`'s subset (`hash`
/// for hashing balancers) that avoids the endpoints already tried, under
/// `policy`'s per-try timeout and retry rules. `rc.upstream` is set to each
/// try's endpoint (for the access log).
pub async fn run_tries<E: Exchange>(
    exchange: &mut E,
    target: &Target,
    policy: Option<&RetryPolicy>,
    hash: Option<u64>,
    rc: &mut RequestContext,
) -> Result<TryAnswer<E::Answer>, ProxyError> {
    let cluster = &target.cluster;
    let mut tried: Vec<Arc<Endpoint>> = Vec::new();
    let mut retries = 0;
    let mut _retry_permit = None;
    loop {
        let endpoint = {
            let exclude: Vec<&Endpoint> = tried.iter().map(|e| &**e).collect();
            pick_endpoint(cluster, target, hash, &exclude)?
        };
        rc.upstream = Some(endpoint.address);
        let active = endpoint.start_request();
        let result = {
            // Pinned where it is: the try's future is not moved again.
            let once = std::pin::pin!(exchange.send(target, &endpoint, retries, rc));
            match policy.and_then(|p| p.per_try_timeout) {
                Some(limit) => tokio::time::timeout(limit, once).await.unwrap_or_else(|_| {
                    Err(ProxyError::new(
                        ErrorKind::Timeout,
                        Origin::Upstream,
                        format!(
                            "no {} from {} within the per-try timeout {limit:?}",
                            E::AWAITED,
                            endpoint.address
                        ),
                    ))
                }),
                None => once.await,
            }
        };
        let (outcome, retriable) = match &result {
            Ok((_, class)) => (
                Some(Outcome::of_class(*class)),
                policy.is_some_and(|p| p.retries_class(*class)),
            ),
            Err(e) => (
                Outcome::of_error(e),
                policy.is_some_and(|p| p.retries_error(e)),
            ),
        };
        target.record(&endpoint, outcome);
        let retry = policy.filter(|p| retriable && retries < p.attempts && exchange.can_replay());
        let permit = retry.and_then(|_| {
            let permit = cluster.breaker().try_acquire(Resource::Retry);
            if permit.is_none() {
                target.metrics.overflows.inc();
                debug!(cluster = %cluster.parts.name, "retry refused by the circuit breaker");
            }
            permit
        });
        let (Some(policy), Some(permit)) = (retry, permit) else {
            return result.map(|(answer, _)| TryAnswer { answer, active });
        };
        drop(result);
        drop(active);
        _retry_permit = Some(permit);
        retries += 1;
        target.metrics.retries.inc();
        debug!(cluster = %cluster.parts.name, endpoint = %endpoint.address, retry = retries, "retrying");
        tried.push(endpoint);
        tokio::time::sleep(policy.backoff(retries)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::cluster::testing::cluster;
    use crate::codec::ResponseClass;
    use crate::metrics::Metrics;
    use crate::pipeline::scripted::Scripted;
    use crate::router::RetryOn;

    fn target() -> Target {
        Target {
            cluster: Arc::new(cluster(&[0, 0])),
            subset: 0,
            metrics: Metrics::new().target("l", "r", "c", "p"),
        }
    }

    fn policy(on: RetryOn, per_try_timeout: Option<Duration>) -> RetryPolicy {
        RetryPolicy {
            attempts: 2,
            per_try_timeout,
            on,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
        }
    }

    fn request() -> RequestContext {
        RequestContext::new(
            "test",
            crate::message::MessageKind::Request,
            crate::metadata::Metadata::default(),
            Arc::new(crate::metadata::Metadata::default()),
        )
    }

    /// Runs the tries with `answer(attempt)` deciding each try; returns the
    /// result and the endpoints tried, in order.
    async fn run(
        target: &Target,
        policy: &RetryPolicy,
        replayable: bool,
        answer: impl Fn(u32) -> Option<ResponseClass> + Send + 'static,
    ) -> (Result<TryAnswer<u32>, ProxyError>, Vec<SocketAddr>) {
        let mut exchange = Scripted::new(move |attempt| Ok(answer(attempt)));
        exchange.replayable = replayable;
        let mut rc = request();
        let r = run_tries(&mut exchange, target, Some(policy), None, &mut rc).await;
        assert_eq!(rc.upstream, exchange.tried.last().copied());
        (r, exchange.tried)
    }

    #[tokio::test]
    async fn an_unavailable_answer_is_retried_on_another_endpoint_and_counted() {
        let t = target();
        let on = RetryOn {
            unavailable: true,
            ..RetryOn::default()
        };
        let (r, tried) = run(&t, &policy(on, None), true, |a| {
            Some(if a == 0 {
                ResponseClass::Unavailable
            } else {
                ResponseClass::Success
            })
        })
        .await;
        assert_eq!(r.unwrap().answer, 1);
        assert_eq!(tried.len(), 2);
        assert_ne!(tried[0], tried[1], "the retry avoids the endpoint tried");
        assert_eq!(t.metrics.retries.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_try_ends_at_the_per_try_timeout_and_is_retried() {
        let t = target();
        let on = RetryOn {
            timeout: true,
            ..RetryOn::default()
        };
        let started = tokio::time::Instant::now();
        let limit = Duration::from_millis(100);
        let (r, tried) = run(&t, &policy(on, Some(limit)), true, |a| {
            (a > 0).then_some(ResponseClass::Success)
        })
        .await;
        assert_eq!(r.unwrap().answer, 1);
        assert_eq!(tried.len(), 2);
        assert!(started.elapsed() >= limit);
        assert_eq!(t.metrics.retries.get(), 1);

        // Every try silent: the last try's timeout is the answer.
        let (r, tried) = run(&t, &policy(on, Some(limit)), true, |_| None).await;
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.message.contains("per-try timeout"), "{e}");
        assert_eq!(tried.len(), 3, "the first try and two retries");
    }

    #[tokio::test]
    async fn a_request_that_cannot_be_replayed_is_tried_once() {
        let t = target();
        let on = RetryOn {
            unavailable: true,
            ..RetryOn::default()
        };
        let (r, tried) = run(&t, &policy(on, None), false, |_| {
            Some(ResponseClass::Unavailable)
        })
        .await;
        assert_eq!(r.unwrap().answer, 0, "the first answer is returned");
        assert_eq!(tried.len(), 1);
        assert_eq!(t.metrics.retries.get(), 0);
    }

    #[tokio::test]
    async fn a_gateway_error_ejects_its_endpoint_from_later_picks() {
        let t = target();
        let (r, tried) = run(&t, &policy(RetryOn::default(), None), true, |_| {
            Some(ResponseClass::Unavailable)
        })
        .await;
        assert_eq!(
            r.unwrap().answer,
            0,
            "no retry policy for 503: answered as is"
        );
        assert_eq!(
            t.metrics.ejections.get(),
            1,
            "ejected on the first gateway error"
        );
        for _ in 0..4 {
            let (_, next) = run(&t, &policy(RetryOn::default(), None), true, |_| {
                Some(ResponseClass::Success)
            })
            .await;
            assert_ne!(next[0], tried[0], "the ejected endpoint is not picked");
        }
    }

    /// Runs the tries with every try failing with `error`; returns the
    /// result and how many tries were sent.
    async fn failing(target: &Target, error: ProxyError) -> (ProxyError, usize) {
        let on = RetryOn {
            reset: true,
            ..RetryOn::default()
        };
        let mut exchange = Scripted::new(move |_| Err(error.clone()));
        let mut rc = request();
        let r = run_tries(
            &mut exchange,
            target,
            Some(&policy(on, None)),
            None,
            &mut rc,
        )
        .await;
        (r.unwrap_err(), exchange.tried.len())
    }

    #[tokio::test]
    async fn only_the_upstreams_own_failures_are_retried_and_count_against_it() {
        // The upstream reset: the first try and both retries the policy
        // allows, and the resets are gateway errors that eject.
        let t = target();
        let (e, sent) = failing(&t, ProxyError::upstream(ErrorKind::UpstreamReset, "rst")).await;
        assert_eq!((e.kind, sent), (ErrorKind::UpstreamReset, 3));
        assert_eq!(t.metrics.retries.get(), 2);
        assert!(t.metrics.ejections.get() >= 1);

        // The same kind raised by the client's side (its body broke while
        // being sent on): tried once, and the endpoint keeps its standing.
        let t = target();
        let (e, sent) = failing(
            &t,
            ProxyError::downstream(ErrorKind::UpstreamReset, "client"),
        )
        .await;
        assert_eq!((e.origin, sent), (Origin::Downstream, 1));
        assert_eq!(t.metrics.retries.get(), 0);
        assert_eq!(t.metrics.ejections.get(), 0);

        // An upstream failure its raiser ruled out for retries (an answer
        // that broke the protocol): not repeated, but still counted.
        let t = target();
        let bad = ProxyError::upstream(ErrorKind::UpstreamReset, "bad answer").with_retry(false);
        let (_, sent) = failing(&t, bad).await;
        assert_eq!(sent, 1);
        assert_eq!(t.metrics.retries.get(), 0);
        assert_eq!(t.metrics.ejections.get(), 1);
    }

    #[tokio::test]
    async fn a_retry_the_breaker_refuses_is_not_sent_and_counts_an_overflow() {
        let mut c = cluster(&[0, 0]);
        c.parts.pool.breaker = Arc::new(crate::cluster::CircuitBreaker::new(
            crate::cluster::BreakerLimits {
                max_retries: 0,
                ..Default::default()
            },
        ));
        c.parts.outlier = None;
        let t = Target {
            cluster: Arc::new(c),
            subset: 0,
            metrics: Metrics::new().target("l", "r", "c", "p"),
        };
        let on = RetryOn {
            unavailable: true,
            ..RetryOn::default()
        };
        let (r, tried) = run(&t, &policy(on, None), true, |_| {
            Some(ResponseClass::Unavailable)
        })
        .await;
        assert_eq!(r.unwrap().answer, 0);
        assert_eq!(tried.len(), 1, "the retry was refused");
        assert_eq!(t.metrics.overflows.get(), 1);
        assert_eq!(t.metrics.retries.get(), 0);
    }
}
