//! One passthrough connection: read the ClientHello, route on its SNI,
//! connect (retrying other endpoints as the route allows), replay the
//! hello, relay the rest.

use std::net::SocketAddr;
use std::sync::Arc;

use metaproxy_core::codec::ResponseClass;
use metaproxy_core::filter::RequestContext;
use metaproxy_core::listener::{ClientStream, ListenerContext, connection_metadata};
use metaproxy_core::message::MessageKind;
use metaproxy_core::metadata::{Metadata, MetadataView, keys};
use metaproxy_core::registry::{ConnectionHandler, ServeFuture};
use metaproxy_core::snapshot::ListenerRuntime;
use metaproxy_core::tls::MaybeTls;
use metaproxy_core::upstream::{UpstreamStream, connect};
use metaproxy_core::{ErrorKind, ErrorSource, ProxyError, pipeline};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::debug;

use super::TLS_PASSTHROUGH;
use super::hello::read_client_hello;
use super::relay::relay;

/// The `tls_passthrough` connection handler.
pub(crate) struct PassthroughHandler;

impl ConnectionHandler for PassthroughHandler {
    fn serve(
        &self,
        stream: ClientStream,
        peer: SocketAddr,
        ctx: Arc<ListenerContext>,
    ) -> ServeFuture {
        Box::pin(serve(stream, peer, ctx))
    }
}

async fn serve(stream: ClientStream, peer: SocketAddr, ctx: Arc<ListenerContext>) {
    let connection = connection_metadata(&stream, peer, ctx.local_addr);
    // Listener TLS is refused for this protocol by config validation.
    let (MaybeTls::Plain(client), read) = stream.into_parts() else {
        return;
    };
    let _ = client.set_nodelay(true);
    let snapshot = ctx.snapshot.load_full();
    let Some(listener) = snapshot.listener(&ctx.name) else {
        return;
    };
    listener.metrics.connections_total.inc();
    listener.metrics.connections_active.inc();
    pass(client, read, connection, peer, listener, &ctx).await;
    listener.metrics.connections_active.dec();
}

/// The connection from its first bytes to its end.
async fn pass(
    mut client: TcpStream,
    read: bytes::Bytes,
    connection: Metadata,
    peer: SocketAddr,
    listener: &ListenerRuntime,
    ctx: &ListenerContext,
) {
    let limits = &listener.limits;
    let hello = tokio::time::timeout(
        limits.header_read_timeout,
        read_client_hello(&mut client, read, limits.max_header_bytes),
    )
    .await;
    let (hello, sni) = match hello {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            debug!(listener = %ctx.name, %peer, error = %e, "no ClientHello; closing");
            return;
        }
        Err(_) => {
            debug!(listener = %ctx.name, %peer, "ClientHello not received in time; closing");
            return;
        }
    };
    let mut metadata = Metadata::with_capacity(1);
    if let Some(name) = &sni {
        metadata.insert(keys::SNI, name.as_str());
    }
    let mut req = RequestContext::new(
        TLS_PASSTHROUGH,
        MessageKind::Request,
        metadata,
        Arc::new(connection),
    );
    let started = std::time::Instant::now();
    let mut chosen = None;
    let opened = open_upstream(listener, &mut req, &mut chosen).await;
    let ending = match opened {
        Err(e) => {
            debug!(listener = %ctx.name, %peer, sni = sni.as_deref().unwrap_or(""), error = %e, "passthrough refused");
            pipeline::Ending::Failed(e.kind)
        }
        Ok((upstream, _active)) => {
            let moved = forward(client, upstream, &hello, listener, ctx).await;
            debug!(listener = %ctx.name, %peer, up = moved.up, down = moved.down, "passthrough closed");
            pipeline::Ending::Upstream { error: false }
        }
    };
    pipeline::finish(
        listener,
        TLS_PASSTHROUGH,
        &pipeline::Finished {
            request: &req,
            target: chosen,
            ending,
            status: None,
            started,
        },
    );
}

/// Routes the connection and opens its upstream connection.
async fn open_upstream<'a>(
    listener: &'a ListenerRuntime,
    req: &mut RequestContext,
    chosen: &mut Option<&'a metaproxy_core::router::Target>,
) -> Result<(UpstreamStream, metaproxy_core::cluster::ActiveGuard), ProxyError> {
    let describe = |rc: &RequestContext| format!("SNI `{}`", rc.lookup(keys::SNI).unwrap_or(""));
    let pipeline::Routed {
        route,
        target,
        hash,
        ..
    } = pipeline::route(listener, req, describe)
        .await
        .map_err(pipeline::Early::into_error)?;
    *chosen = Some(target);
    let cluster = &target.cluster;
    let _permit = pipeline::admit(target)?;
    let timeout = cluster.parts.pool.connect_timeout;
    let send = |endpoint: &Arc<metaproxy_core::cluster::Endpoint>, _attempt: u32| {
        let address = endpoint.address;
        async move {
            connect(address, timeout, None)
                .await
                .map(|s| (s, ResponseClass::Success))
                .map_err(|e| {
                    ProxyError::new(
                        ErrorKind::ConnectFailure,
                        ErrorSource::Upstream,
                        format!("cannot connect to {address}: {e}"),
                    )
                })
        }
    };
    let done = pipeline::run_tries(
        target,
        route.retry.as_ref(),
        hash.hash,
        "connection",
        &mut req.upstream,
        send,
        || true,
    )
    .await?;
    Ok((done.answer, done.active))
}

/// Replays the ClientHello to the upstream, then relays both ways.
async fn forward(
    client: TcpStream,
    mut upstream: UpstreamStream,
    hello: &[u8],
    listener: &ListenerRuntime,
    ctx: &ListenerContext,
) -> super::relay::Relayed {
    if upstream.write_all(hello).await.is_err() {
        return super::relay::Relayed::default();
    }
    let own = ctx.shutdown.child_token();
    relay(client, upstream, listener.limits.idle_timeout, async move {
        own.cancelled().await;
    })
    .await
}
