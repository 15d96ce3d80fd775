//! What an engine does its own way for one request: the [`Exchange`]
//! trait that [`serve`](super::serve) drives. Everything else (routing,
//! filters, breaker, mirror, tries, timeouts, metrics, access log) is the
//! pipeline's.

use std::future::Future;
use std::sync::Arc;

use bytestring::ByteString;
use tokio::time::Instant;

use crate::cluster::{ActiveGuard, AffinityCookie, Cluster, Endpoint, Permit};
use crate::codec::ResponseClass;
use crate::deadline::LazyDeadline;
use crate::error::ProxyError;
use crate::filter::{RequestContext, ResponseContext};
use crate::router::{Route, Target};

use super::finish::Ending;
use super::route::Early;

/// One request as an engine carries it: how it is sent upstream, how an
/// answer is classified and shown to the response filters, and how the
/// answer (or the proxy's own) reaches the client.
///
/// [`serve`](super::serve) calls these in the pipeline's order:
/// [`describe`](Exchange::describe) (only for a "no route" error),
/// [`prepare`](Exchange::prepare) once routed, [`mirror_copy`](Exchange::mirror_copy)
/// once admitted, [`send`](Exchange::send) per try (with
/// [`can_replay`](Exchange::can_replay) before each retry),
/// [`view`](Exchange::view) for the response filters, then
/// [`deliver`](Exchange::deliver) or [`refuse`](Exchange::refuse).
pub trait Exchange: Send {
    /// What one try brings back: a decoded answer, an answer's head with
    /// the connection its body comes on, an open stream.
    type Answer: Send;
    /// A copy of the request for the route's mirror cluster
    /// ([`NoMirror`] for an engine that never mirrors).
    type Mirror: MirrorCopy;
    /// What the engine hands back once the client is answered (a hyper
    /// response, whether the connection can carry another request, nothing).
    type Reply: Send;

    /// What a try waits for, in the timeout's message ("answer", "response
    /// headers", "connection").
    const AWAITED: &'static str = "answer";

    /// Names the request in a "no route" error and in the local-reply log
    /// (`GET host/path`, `Service.method`).
    fn describe(&self, rc: &RequestContext) -> String;

    /// Builds what goes upstream once the route and target are known
    /// (rewrites, forwarding headers, the request mutation); an error is
    /// answered as a local reply. Nothing to build by default.
    fn prepare(
        &mut self,
        route: &Route,
        target: &Target,
        rc: &mut RequestContext,
    ) -> Result<(), ProxyError> {
        let _ = (route, target, rc);
        Ok(())
    }

    /// A copy of an admitted request the route mirrors (sampled already):
    /// now, after the answer's head (a streamed body kept while it was
    /// sent), or none. None by default.
    fn mirror_copy(&mut self, route: &Route, rc: &RequestContext) -> Mirroring<Self::Mirror> {
        let _ = (route, rc);
        Mirroring::Never
    }

    /// The copy promised by [`Mirroring::AfterAnswer`], if it could be made
    /// (the whole body was kept).
    fn mirror_copy_after_answer(&mut self) -> Option<Self::Mirror> {
        None
    }

    /// Sends one try (`attempt` 0 is the first) to `endpoint` of `target`
    /// and waits for its answer (its head, for a streamed answer), with the
    /// answer's class for retries and outlier detection. An error's origin
    /// and retry decision say whether it is retried and counted against
    /// the endpoint.
    fn send(
        &mut self,
        target: &Target,
        endpoint: &Arc<Endpoint>,
        attempt: u32,
        rc: &RequestContext,
    ) -> impl Future<Output = Result<(Self::Answer, ResponseClass), ProxyError>> + Send;

    /// Whether the request can still be sent again (a streamed body kept
    /// for replay may have outgrown its bound). Always by default.
    fn can_replay(&self) -> bool {
        true
    }

    /// The answer as the response filters see it (called only when the
    /// chain has filters).
    fn view(&self, answer: &Self::Answer) -> ResponseContext;

    /// Relays the upstream's answer to the client (the response mutation
    /// and affinity cookie applied). An error here, before anything reached
    /// the client, is answered with [`Exchange::refuse`] instead.
    fn deliver(
        &mut self,
        answered: Answered<'_, Self::Answer>,
        rc: &mut RequestContext,
        deadline: &mut LazyDeadline,
    ) -> impl Future<Output = Result<Delivered<Self::Reply>, ProxyError>> + Send;

    /// Answers the client without the upstream: a local error in the
    /// protocol's own form, a filter's answer, a redirect.
    fn refuse(
        &mut self,
        early: Early<'_>,
        rc: &RequestContext,
    ) -> impl Future<Output = Delivered<Self::Reply>> + Send;
}

/// A copy of a request for the mirror cluster, sent by core's mirror step.
pub trait MirrorCopy: Send + 'static {
    /// Sends the copy to `endpoint` of `cluster` and reads its answer,
    /// which is dropped.
    fn send(
        self,
        cluster: Arc<Cluster>,
        endpoint: Arc<Endpoint>,
    ) -> impl Future<Output = Result<(), ProxyError>> + Send;
}

/// When an engine can give a mirror copy.
#[derive(Debug)]
pub enum Mirroring<C> {
    /// Now: sent before the first try.
    Now(C),
    /// Once the answer's head is here ([`Exchange::mirror_copy_after_answer`]).
    AfterAnswer,
    /// Not for this request (an upgrade, say).
    Never,
}

/// The copy type of an engine that never mirrors.
#[derive(Debug)]
pub enum NoMirror {}

impl MirrorCopy for NoMirror {
    async fn send(self, _: Arc<Cluster>, _: Arc<Endpoint>) -> Result<(), ProxyError> {
        match self {}
    }
}

/// The upstream's answer, past the response filters, for
/// [`Exchange::deliver`].
#[derive(Debug)]
pub struct Answered<'a, A> {
    /// The route that sent it.
    pub route: &'a Route,
    /// The target it went to.
    pub target: &'a Target,
    /// What the last try brought back.
    pub answer: A,
    /// The endpoint's active-request count: hold it until the answer is done.
    pub active: ActiveGuard,
    /// The circuit breaker's request permit: hold it until the answer is done.
    pub permit: Permit,
    /// A cookie for session affinity the engine sets on the answer (only
    /// on clusters whose protocol claims affinity cookies).
    pub set_cookie: Option<AffinityCookie>,
    /// The route's whole-answer deadline (a streamed body included).
    pub ends_by: Instant,
}

/// How the client was answered, for metrics and the access log.
#[derive(Debug)]
pub struct Delivered<R> {
    /// The engine's own result.
    pub reply: R,
    /// How the request ended.
    pub ending: Ending,
    /// The protocol's status of the answer.
    pub status: Status,
}

/// A protocol's status of an answer, as the access log shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Status {
    /// None (a oneway request, a relayed connection).
    #[default]
    None,
    /// A numeric status (HTTP).
    Code(u16),
    /// A status as the protocol names it (a Dubbo status, say).
    Text(ByteString),
}
