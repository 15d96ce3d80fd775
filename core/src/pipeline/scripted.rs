//! A scripted [`Exchange`] for the pipeline's tests: each try's answer is
//! decided by a closure, and what was sent, mirrored, delivered and
//! refused is recorded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cluster::{AffinityCookie, Cluster, Endpoint};
use crate::codec::ResponseClass;
use crate::deadline::LazyDeadline;
use crate::error::ProxyError;
use crate::filter::{RequestContext, ResponseContext};
use crate::message::MessageKind;
use crate::metadata::Metadata;
use crate::router::{Route, Target};

use super::{Answered, Delivered, Early, Ending, Exchange, MirrorCopy, Mirroring, Status};

/// What a try does: answers with a class, never answers, or fails.
pub(crate) type Script = Box<dyn FnMut(u32) -> Result<Option<ResponseClass>, ProxyError> + Send>;

/// A request whose tries follow `script`.
pub(crate) struct Scripted {
    script: Script,
    /// The endpoints tried, in order.
    pub tried: Vec<SocketAddr>,
    /// Whether the request can be sent again.
    pub replayable: bool,
    /// Copies sent to the mirror cluster.
    pub mirrored: Arc<AtomicUsize>,
    /// The affinity cookie of each delivered answer.
    pub cookies: Vec<Option<AffinityCookie>>,
}

/// How the scripted request was answered: the attempt whose answer was
/// delivered, or the early answer (`error:<kind>`, `respond:<status>`,
/// `redirect:<code>`).
pub(crate) type Reply = Result<u32, String>;

impl Scripted {
    pub(crate) fn new(
        script: impl FnMut(u32) -> Result<Option<ResponseClass>, ProxyError> + Send + 'static,
    ) -> Self {
        Self {
            script: Box::new(script),
            tried: Vec::new(),
            replayable: true,
            mirrored: Arc::new(AtomicUsize::new(0)),
            cookies: Vec::new(),
        }
    }
}

/// A mirror copy that only counts itself.
pub(crate) struct Counted(Arc<AtomicUsize>);

impl MirrorCopy for Counted {
    async fn send(self, _: Arc<Cluster>, _: Arc<Endpoint>) -> Result<(), ProxyError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl Exchange for Scripted {
    type Answer = u32;
    type Mirror = Counted;
    type Reply = Reply;

    fn describe(&self, rc: &RequestContext) -> String {
        format!("<{}>", rc.metadata.get("service").unwrap_or("?"))
    }

    fn mirror_copy(&mut self, _: &Route, _: &RequestContext) -> Mirroring<Counted> {
        Mirroring::Now(Counted(self.mirrored.clone()))
    }

    async fn send(
        &mut self,
        _: &Target,
        endpoint: &Arc<Endpoint>,
        attempt: u32,
        _: &RequestContext,
    ) -> Result<(u32, ResponseClass), ProxyError> {
        self.tried.push(endpoint.address);
        match (self.script)(attempt)? {
            Some(class) => Ok((attempt, class)),
            None => std::future::pending().await,
        }
    }

    fn can_replay(&self) -> bool {
        self.replayable
    }

    fn view(&self, answer: &u32) -> ResponseContext {
        let mut metadata = Metadata::default();
        metadata.insert("attempt", answer.to_string());
        ResponseContext {
            kind: MessageKind::Response,
            metadata,
        }
    }

    async fn deliver(
        &mut self,
        answered: Answered<'_, u32>,
        _: &mut RequestContext,
        _: &mut LazyDeadline,
    ) -> Result<Delivered<Reply>, ProxyError> {
        self.cookies.push(answered.set_cookie);
        Ok(Delivered {
            reply: Ok(answered.answer),
            ending: Ending::Upstream { error: false },
            status: Status::Code(200),
        })
    }

    async fn refuse(&mut self, early: Early<'_>, _: &RequestContext) -> Delivered<Reply> {
        let (said, ending) = match early {
            Early::Error(e) => (format!("error:{:?}", e.kind), Ending::Failed(e.kind)),
            Early::Respond(r) => (format!("respond:{}", r.status), Ending::Filter),
            Early::Redirect(r) => (format!("redirect:{}", r.code), Ending::Redirect),
        };
        Delivered {
            reply: Err(said),
            ending,
            status: Status::None,
        }
    }
}
