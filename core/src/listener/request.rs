//! The framed RPC engine's part of one request (the pipeline runs the
//! rest): a try is a call on a pooled connection of the picked endpoint,
//! matched to its answer by id; the answer is re-encoded for the client;
//! local failures become the codec's own error reply.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::cluster::{Cluster, Endpoint};
use crate::codec::{Codec, ResponseClass};
use crate::deadline::LazyDeadline;
use crate::error::{ErrorKind, Origin, ProxyError};
use crate::filter::{RequestContext, ResponseContext};
use crate::message::{Message, MessageKind};
use crate::metadata::{Metadata, MetadataView, keys};
use crate::mutation::Mutation;
use crate::pipeline::{
    self, Answered, Delivered, Early, Ending, Exchange, MirrorCopy, Mirroring, Status,
};
use crate::router::{Route, Target};
use crate::upstream::rpc;

use super::ListenerContext;

/// Everything one request in flight owns.
pub(crate) struct RequestTask<C: Codec> {
    pub codec: Arc<C>,
    pub ctx: Arc<ListenerContext>,
    pub connection: Arc<Metadata>,
    pub message: Message<C::State>,
}

/// Runs one decoded request through the pipeline; the encoded reply for
/// the client, if any.
pub(crate) async fn handle_request<C: Codec>(task: RequestTask<C>) -> Option<Bytes> {
    let RequestTask {
        codec,
        ctx,
        connection,
        mut message,
    } = task;
    let started = tokio::time::Instant::now();
    let snapshot = ctx.snapshot.load_full();
    let Some(listener) = snapshot.listener(&ctx.name) else {
        // A reload removed the listener while this request was read: the
        // client still gets an answer, as on the HTTP engines.
        let err = ProxyError::new(
            ErrorKind::RouteNotFound,
            Origin::Internal,
            format!("listener `{}` removed by a reload", ctx.name),
        );
        if message.kind == MessageKind::Oneway {
            return None;
        }
        let mut out = BytesMut::new();
        codec.local_reply(&message, &err, &mut out);
        return Some(out.freeze());
    };
    let metadata = std::mem::take(&mut message.metadata);
    let rc = RequestContext::new(codec.protocol(), message.kind, metadata, connection);
    let mut exchange = RpcExchange {
        codec,
        message: Arc::new(message),
    };
    // Boxed: the connection keeps a small future per request in flight, so
    // pushing it copies a few words instead of the whole pipeline's state
    // (measured: unboxed costs 600 more instructions per request).
    Box::pin(pipeline::serve(
        listener,
        rc,
        &mut exchange,
        &mut None,
        started,
    ))
    .await
}

/// One decoded request of the framed engine; its reply is the encoded
/// bytes for the client (none for a oneway request).
struct RpcExchange<C: Codec> {
    codec: Arc<C>,
    message: Arc<Message<C::State>>,
}

impl<C: Codec> RpcExchange<C> {
    fn oneway(&self) -> bool {
        self.message.kind == MessageKind::Oneway
    }

    /// The codec's local reply for `err` (none for a oneway request).
    fn local_reply(&self, err: &ProxyError) -> Option<Bytes> {
        if self.oneway() {
            return None;
        }
        let mut out = BytesMut::new();
        self.codec.local_reply(&self.message, err, &mut out);
        Some(out.freeze())
    }
}

impl<C: Codec> Exchange for RpcExchange<C> {
    /// The decoded answer; none for a oneway request.
    type Answer = Option<Message<C::State>>;
    type Mirror = RpcCopy<C>;
    type Reply = Option<Bytes>;

    fn describe(&self, rc: &RequestContext) -> String {
        format!(
            "{}.{}",
            rc.lookup(keys::SERVICE).unwrap_or("?"),
            rc.lookup(keys::METHOD).unwrap_or("?")
        )
    }

    fn mirror_copy(&mut self, _: &Route, rc: &RequestContext) -> Mirroring<RpcCopy<C>> {
        Mirroring::Now(RpcCopy {
            message: self.message.clone(),
            mutation: rc.request_mutation.clone(),
        })
    }

    async fn send(
        &mut self,
        target: &Target,
        endpoint: &Arc<Endpoint>,
        _attempt: u32,
        rc: &RequestContext,
    ) -> Result<(Self::Answer, ResponseClass), ProxyError> {
        let pool = rpc::pool_of::<C>(endpoint, &target.cluster)?;
        let codec = pool.connector().codec();
        let conn = pool.acquire().await?;
        if self.oneway() {
            conn.send_oneway(codec, &self.message, &rc.request_mutation)
                .await?;
            conn.release();
            return Ok((None, ResponseClass::Success));
        }
        let rx = conn
            .call(codec, &self.message, &rc.request_mutation)
            .await?;
        let answer = rx.await.map_err(|_| closed_early(endpoint.address))?;
        conn.release();
        let class = codec.classify_response(&answer);
        Ok((Some(answer), class))
    }

    fn view(&self, answer: &Self::Answer) -> ResponseContext {
        let (kind, metadata) = answer.as_ref().map_or_else(
            || (MessageKind::Response, Metadata::default()),
            |a| (a.kind, a.metadata.clone()),
        );
        ResponseContext { kind, metadata }
    }

    async fn deliver(
        &mut self,
        answered: Answered<'_, Self::Answer>,
        rc: &mut RequestContext,
        _: &mut LazyDeadline,
    ) -> Result<Delivered<Self::Reply>, ProxyError> {
        let Some(response) = answered.answer else {
            return Ok(Delivered {
                reply: None,
                ending: Ending::Oneway,
                status: Status::None,
            });
        };
        // No affinity cookie: framed protocols do not claim them.
        drop((answered.active, answered.permit));
        let mut out = BytesMut::with_capacity(response.body.len() + 32);
        self.codec
            .encode_response(&response, &self.message, &rc.response_mutation, &mut out)
            .map_err(|e| ProxyError::new(ErrorKind::Internal, Origin::Internal, e.message))?;
        Ok(Delivered {
            reply: Some(out.freeze()),
            ending: Ending::Upstream {
                error: response.kind == MessageKind::Error,
            },
            status: response
                .metadata
                .value("status")
                .map_or(Status::None, |s| Status::Text(s.clone())),
        })
    }

    async fn refuse(&mut self, early: Early<'_>, _: &RequestContext) -> Delivered<Self::Reply> {
        let err = early.into_error();
        Delivered {
            reply: self.local_reply(&err),
            ending: Ending::Failed(err.kind),
            status: Status::None,
        }
    }
}

fn closed_early(address: SocketAddr) -> ProxyError {
    ProxyError::new(
        ErrorKind::UpstreamReset,
        Origin::Upstream,
        format!("connection to {address} closed before the answer"),
    )
}

/// One mirror copy of a framed request; its answer is awaited and dropped.
struct RpcCopy<C: Codec> {
    message: Arc<Message<C::State>>,
    mutation: Mutation,
}

impl<C: Codec> MirrorCopy for RpcCopy<C> {
    async fn send(self, cluster: Arc<Cluster>, endpoint: Arc<Endpoint>) -> Result<(), ProxyError> {
        let pool = rpc::pool_of::<C>(&endpoint, &cluster)?;
        let codec = pool.connector().codec();
        let conn = pool.acquire().await?;
        if self.message.kind == MessageKind::Oneway {
            conn.send_oneway(codec, &self.message, &self.mutation)
                .await?;
        } else {
            let rx = conn.call(codec, &self.message, &self.mutation).await?;
            let _ = rx.await;
        }
        conn.release();
        Ok(())
    }
}
