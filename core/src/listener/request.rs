//! One request's life: route, filters, target, tries (with retries), the
//! answer, the reply. Local failures become the protocol's own error reply.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::debug;

use crate::cluster::Endpoint;
use crate::codec::Codec;
use crate::error::{ErrorKind, ErrorSource, ProxyError};
use crate::filter::{RequestContext, ResponseContext};
use crate::message::{Message, MessageKind};
use crate::metadata::{Metadata, MetadataView, keys};
use crate::mutation::Mutation;
use crate::pipeline;
use crate::router::{Route, Target};
use crate::snapshot::ListenerRuntime;
use crate::upstream::rpc::{self, RpcPool};

use super::ListenerContext;

/// Everything a request task owns.
pub(crate) struct RequestTask<C: Codec> {
    pub codec: Arc<C>,
    pub ctx: Arc<ListenerContext>,
    pub connection: Arc<Metadata>,
    pub message: Message<C::State>,
    pub replies: mpsc::UnboundedSender<Bytes>,
    pub _permit: OwnedSemaphorePermit,
}

pub(crate) async fn handle_request<C: Codec>(task: RequestTask<C>) {
    let RequestTask {
        codec,
        ctx,
        connection,
        mut message,
        replies,
        _permit,
    } = task;
    let snapshot = ctx.snapshot.load_full();
    let Some(listener) = snapshot.listener(&ctx.name) else {
        // A reload removed the listener while this request was read: the
        // client still gets an answer, as on the HTTP engines.
        let err = ProxyError::new(
            ErrorKind::RouteNotFound,
            ErrorSource::Internal,
            format!("listener `{}` removed by a reload", ctx.name),
        );
        if message.kind != MessageKind::Oneway {
            let mut out = BytesMut::new();
            codec.local_reply(&message, &err, &mut out);
            let _ = replies.send(out.freeze());
        }
        return;
    };
    let started = std::time::Instant::now();
    let metrics = &listener.metrics;
    metrics.requests_active.inc();
    let metadata = std::mem::take(&mut message.metadata);
    let mut req = RequestContext::new(codec.protocol(), message.kind, metadata, connection);
    let message = Arc::new(message);
    let oneway = message.kind == MessageKind::Oneway;
    let mut target = None;
    let outcome = forward::<C>(&message, listener, &mut req, &mut target).await;
    metrics.requests_active.dec();
    let (ending, status) = match &outcome {
        Ok(None) => (pipeline::Ending::Oneway, None),
        Ok(Some(r)) => (
            pipeline::Ending::Upstream {
                error: r.kind == MessageKind::Error,
            },
            r.metadata.get("status"),
        ),
        Err(e) => (pipeline::Ending::Failed(e.kind), None),
    };
    pipeline::finish(
        listener,
        codec.protocol(),
        &pipeline::Finished {
            request: &req,
            target,
            ending,
            status,
            started,
        },
    );
    let reply = match outcome {
        Ok(None) => return,
        Ok(Some(response)) => {
            let mut out = BytesMut::with_capacity(response.body.len() + 32);
            match codec.encode_response(&response, &message, &req.response_mutation, &mut out) {
                Ok(()) => out,
                Err(e) => {
                    let err =
                        ProxyError::new(ErrorKind::Internal, ErrorSource::Internal, e.message);
                    match local_reply(&*codec, &ctx, &message, &req, &err, oneway) {
                        Some(out) => out,
                        None => return,
                    }
                }
            }
        }
        Err(err) => match local_reply(&*codec, &ctx, &message, &req, &err, oneway) {
            Some(out) => out,
            None => return,
        },
    };
    let _ = replies.send(reply.freeze());
}

fn local_reply<C: Codec>(
    codec: &C,
    ctx: &ListenerContext,
    message: &Message<C::State>,
    req: &RequestContext,
    err: &ProxyError,
    oneway: bool,
) -> Option<BytesMut> {
    debug!(
        listener = %ctx.name,
        service = req.lookup(keys::SERVICE).unwrap_or(""),
        method = req.lookup(keys::METHOD).unwrap_or(""),
        error = %err.chain(),
        "local reply"
    );
    if oneway {
        return None;
    }
    let mut out = BytesMut::new();
    codec.local_reply(message, err, &mut out);
    Some(out)
}

fn error(kind: ErrorKind, origin: ErrorSource, message: String) -> ProxyError {
    ProxyError::new(kind, origin, message)
}

/// Runs the shared pipeline's steps, sends upstream (retrying as the route
/// says), waits for the answer. `Ok(None)`: nothing to send back (oneway).
async fn forward<'a, C: Codec>(
    message: &Arc<Message<C::State>>,
    listener: &'a ListenerRuntime,
    req: &mut RequestContext,
    chosen: &mut Option<&'a Target>,
) -> Result<Option<Message<C::State>>, ProxyError> {
    let describe = |rc: &RequestContext| {
        format!(
            "{}.{}",
            rc.lookup(keys::SERVICE).unwrap_or("?"),
            rc.lookup(keys::METHOD).unwrap_or("?")
        )
    };
    let pipeline::Routed {
        route,
        chain,
        target,
        hash,
    } = pipeline::route(listener, req, describe)
        .await
        .map_err(pipeline::Early::into_error)?;
    *chosen = Some(target);
    let cluster = &target.cluster;
    if let Some(cookie) = &hash.set_cookie {
        req.response_mutation.set("set-cookie", cookie.as_str());
    }
    let _request = pipeline::admit(target)?;
    // Mirrored only once admitted: a copy of a refused request is never sent.
    if let Some(mirror) = route.mirror.as_ref().filter(|m| m.sample()) {
        let (message, mutation) = (message.clone(), req.request_mutation.clone());
        pipeline::spawn_mirror(mirror, route.timeout, move |cluster, endpoint| {
            mirror_copy::<C>(cluster, endpoint, message, mutation)
        });
    }

    if req.kind == MessageKind::Oneway {
        // Forwarded, never waited for, never retried.
        let endpoint = pipeline::pick_endpoint(cluster, target, hash.hash, &[])?;
        req.upstream = Some(endpoint.address);
        let _active = endpoint.start_request();
        let pool = rpc::pool_of::<C>(&endpoint, cluster)?;
        let conn = pool.acquire().await?;
        conn.send_oneway(pool.connector().codec(), message, &req.request_mutation)
            .await?;
        conn.release();
        return Ok(None);
    }

    let tries = tries::<C>(
        message,
        route,
        target,
        hash.hash,
        &req.request_mutation,
        &mut req.upstream,
    );
    let response = tokio::time::timeout(route.timeout, tries)
        .await
        .map_err(|_| pipeline::route_timeout(route, target, "answer"))??;
    pipeline::on_response(chain, req, || ResponseContext {
        kind: response.kind,
        metadata: response.metadata.clone(),
    })
    .await
    .map_err(pipeline::Early::into_error)?;
    Ok(Some(response))
}

/// The first try and the retries the route allows (the shared loop in
/// [`pipeline::run_tries`]); each try waits for its answer on a pooled
/// connection of the picked endpoint.
async fn tries<C: Codec>(
    message: &Message<C::State>,
    route: &Route,
    target: &Target,
    hash: Option<u64>,
    mutation: &Mutation,
    upstream: &mut Option<std::net::SocketAddr>,
) -> Result<Message<C::State>, ProxyError> {
    let cluster = &target.cluster;
    let send = |endpoint: &Arc<Endpoint>, _attempt: u32| {
        let endpoint = endpoint.clone();
        async move {
            let pool = rpc::pool_of::<C>(&endpoint, cluster)?;
            let answer = try_once(pool, &endpoint, message, mutation).await?;
            let class = pool.connector().codec().classify_response(&answer);
            Ok((answer, class))
        }
    };
    let done = pipeline::run_tries(
        target,
        route.retry.as_ref(),
        hash,
        "answer",
        upstream,
        send,
        || true,
    )
    .await?;
    Ok(done.answer)
}

async fn try_once<C: Codec>(
    pool: &RpcPool<C>,
    endpoint: &Endpoint,
    message: &Message<C::State>,
    mutation: &Mutation,
) -> Result<Message<C::State>, ProxyError> {
    let conn = pool.acquire().await?;
    let rx = conn
        .call(pool.connector().codec(), message, mutation)
        .await?;
    let answer = rx.await.map_err(|_| {
        error(
            ErrorKind::UpstreamReset,
            ErrorSource::Upstream,
            format!(
                "connection to {} closed before the answer",
                endpoint.address
            ),
        )
    })?;
    conn.release();
    Ok(answer)
}

/// One mirror copy on a pooled connection of `endpoint`; its answer is
/// awaited and dropped.
async fn mirror_copy<C: Codec>(
    cluster: Arc<crate::cluster::Cluster>,
    endpoint: Arc<Endpoint>,
    message: Arc<Message<C::State>>,
    mutation: Mutation,
) -> Result<(), ProxyError> {
    let pool = rpc::pool_of::<C>(&endpoint, &cluster)?;
    let conn = pool.acquire().await?;
    if message.kind == MessageKind::Oneway {
        conn.send_oneway(pool.connector().codec(), &message, &mutation)
            .await?;
    } else {
        let rx = conn
            .call(pool.connector().codec(), &message, &mutation)
            .await?;
        let _ = rx.await;
    }
    conn.release();
    Ok(())
}
