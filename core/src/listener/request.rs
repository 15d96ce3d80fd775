//! One request's life: filters, route, upstream call, response, reply.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::debug;

use crate::codec::Codec;
use crate::error::{ErrorKind, ErrorSource, ProxyError};
use crate::filter::{FilterAction, RequestContext, ResponseContext};
use crate::message::{Message, MessageKind};
use crate::metadata::{Metadata, MetadataView, keys};
use crate::snapshot::ListenerRuntime;
use crate::upstream::EndpointPool;

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

pub(crate) async fn handle_request<C: Codec>(mut task: RequestTask<C>) {
    let snapshot = task.ctx.snapshot.load_full();
    let Some(listener) = snapshot.listener(&task.ctx.name) else {
        return;
    };
    let metadata = std::mem::take(&mut task.message.metadata);
    let mut req = RequestContext::new(
        task.codec.protocol(),
        task.message.kind,
        metadata,
        task.connection.clone(),
    );
    let oneway = task.message.kind == MessageKind::Oneway;
    let outcome = forward(&task, listener, &mut req).await;
    match outcome {
        Ok(None) => {}
        Ok(Some(response)) => {
            let mut out = BytesMut::with_capacity(response.body.len() + 32);
            match task.codec.encode_response(
                &response,
                &task.message,
                &req.response_mutation,
                &mut out,
            ) {
                Ok(()) => {
                    let _ = task.replies.send(out.freeze());
                }
                Err(e) => {
                    let err =
                        ProxyError::new(ErrorKind::Internal, ErrorSource::Internal, e.message);
                    reply_error(&task, &req, &err, oneway);
                }
            }
        }
        Err(err) => reply_error(&task, &req, &err, oneway),
    }
}

fn reply_error<C: Codec>(
    task: &RequestTask<C>,
    req: &RequestContext,
    err: &ProxyError,
    oneway: bool,
) {
    debug!(
        listener = %task.ctx.name,
        service = req.lookup(keys::SERVICE).unwrap_or(""),
        method = req.lookup(keys::METHOD).unwrap_or(""),
        error = %err,
        "local reply"
    );
    if oneway {
        return;
    }
    let mut out = BytesMut::new();
    task.codec.local_reply(&task.message, err, &mut out);
    let _ = task.replies.send(out.freeze());
}

/// Runs the chain and the router, sends upstream, waits for the answer.
/// `Ok(None)` means nothing is to be sent back (oneway).
async fn forward<C: Codec>(
    task: &RequestTask<C>,
    listener: &ListenerRuntime,
    req: &mut RequestContext,
) -> Result<Option<Message<C::State>>, ProxyError> {
    // The route is matched before the chain so a route can override it; a
    // filter that changes routing metadata sets `reroute`.
    let mut route = listener.routes.find(&*req);
    let chain = route
        .and_then(|r| r.filters.as_ref())
        .unwrap_or(&listener.filters);
    if !chain.is_empty() {
        match chain.on_request(req).await {
            FilterAction::Continue => {}
            FilterAction::Reply(e) => return Err(e),
            FilterAction::Respond(r) => return Err(not_http(r.status)),
        }
        if req.reroute {
            route = listener.routes.find(&*req);
        }
    }
    let route = route.ok_or_else(|| {
        ProxyError::new(
            ErrorKind::RouteNotFound,
            ErrorSource::Internal,
            format!(
                "no route for {}.{} on listener `{}`",
                req.lookup(keys::SERVICE).unwrap_or("?"),
                req.lookup(keys::METHOD).unwrap_or("?"),
                listener.name
            ),
        )
    })?;
    req.route = Some(route.name.clone());
    req.request_mutation.extend(&route.request_mutation);
    req.response_mutation.extend(&route.response_mutation);
    let target = route.action.pick().ok_or_else(|| {
        ProxyError::new(
            ErrorKind::Internal,
            ErrorSource::Internal,
            format!("route `{}` cannot forward this protocol", route.name),
        )
    })?;
    let cluster = &target.cluster;
    let endpoint = cluster.pick(target.subset).ok_or_else(|| {
        let subset = &cluster.subsets[target.subset].name;
        ProxyError::new(
            ErrorKind::NoHealthyUpstream,
            ErrorSource::Internal,
            if subset.is_empty() {
                format!("cluster `{}` has no endpoint", cluster.name)
            } else {
                format!(
                    "subset `{subset}` of cluster `{}` has no endpoint",
                    cluster.name
                )
            },
        )
    })?;
    let _active = endpoint.start_request();
    let pool = EndpointPool::<C>::of(endpoint, cluster)?;
    let message = &task.message;
    let mutation = &req.request_mutation;

    if req.kind == MessageKind::Oneway {
        let conn = pool.acquire().await?;
        conn.send_oneway(pool.codec(), message, mutation).await?;
        conn.finish();
        return Ok(None);
    }
    let exchange = async {
        let conn = pool.acquire().await?;
        let rx = conn.call(pool.codec(), message, mutation).await?;
        let answer = rx.await.map_err(|_| {
            ProxyError::new(
                ErrorKind::UpstreamReset,
                ErrorSource::Upstream,
                format!(
                    "connection to {} closed before the answer",
                    endpoint.address
                ),
            )
        })?;
        conn.finish();
        Ok::<_, ProxyError>(answer)
    };
    let response = tokio::time::timeout(route.timeout, exchange)
        .await
        .map_err(|_| {
            ProxyError::new(
                ErrorKind::Timeout,
                ErrorSource::Upstream,
                format!(
                    "no answer from {} within {:?}",
                    endpoint.address, route.timeout
                ),
            )
        })??;
    if !chain.is_empty() {
        let view = ResponseContext {
            kind: response.kind,
            metadata: response.metadata.clone(),
        };
        match chain.on_response(req, &view).await {
            FilterAction::Continue => {}
            FilterAction::Reply(e) => return Err(e),
            FilterAction::Respond(r) => return Err(not_http(r.status)),
        }
    }
    Ok(Some(response))
}

/// A filter asked for an HTTP response on a protocol that has none.
fn not_http(status: u16) -> ProxyError {
    ProxyError::new(
        ErrorKind::Internal,
        ErrorSource::Internal,
        format!("a filter answered with HTTP status {status} on a non-HTTP listener"),
    )
}
