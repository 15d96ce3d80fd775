//! One passthrough connection: read the ClientHello, route on its SNI,
//! connect (retrying other endpoints as the route allows), replay the
//! hello, relay the rest.

use std::net::SocketAddr;
use std::sync::Arc;

use metaproxy_core::cluster::Endpoint;
use metaproxy_core::codec::ResponseClass;
use metaproxy_core::deadline::LazyDeadline;
use metaproxy_core::filter::{RequestContext, ResponseContext};
use metaproxy_core::listener::{ClientStream, ListenerContext, connection_metadata};
use metaproxy_core::message::MessageKind;
use metaproxy_core::metadata::{Metadata, MetadataView, keys};
use metaproxy_core::pipeline::{Answered, Delivered, Ending, Exchange, NoMirror, Status};
use metaproxy_core::registry::{ConnectionHandler, ServeFuture};
use metaproxy_core::router::Target;
use metaproxy_core::snapshot::ListenerRuntime;
use metaproxy_core::tls::MaybeTls;
use metaproxy_core::upstream::{UpstreamStream, connect};
use metaproxy_core::{ErrorKind, Origin, ProxyError, pipeline};
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
    let req = RequestContext::new(
        TLS_PASSTHROUGH,
        MessageKind::Request,
        metadata,
        Arc::new(connection),
    );
    let started = tokio::time::Instant::now();
    let mut exchange = Passthrough {
        client: Some(client),
        hello: hello.freeze(),
        peer,
        listener,
        ctx,
    };
    pipeline::serve(listener, req, &mut exchange, &mut None, started).await;
}

/// One passthrough connection: its "try" is a connection to the picked
/// endpoint, its "answer" that connection, delivered by replaying the
/// ClientHello and relaying both ways for as long as the connection lasts.
struct Passthrough<'a> {
    client: Option<TcpStream>,
    hello: bytes::Bytes,
    peer: SocketAddr,
    listener: &'a ListenerRuntime,
    ctx: &'a ListenerContext,
}

impl Exchange for Passthrough<'_> {
    type Answer = UpstreamStream;
    type Mirror = NoMirror;
    type Reply = ();
    const AWAITED: &'static str = "connection";

    fn describe(&self, rc: &RequestContext) -> String {
        format!("SNI `{}`", rc.lookup(keys::SNI).unwrap_or(""))
    }

    async fn send(
        &mut self,
        target: &Target,
        endpoint: &Arc<Endpoint>,
        _: u32,
        _: &RequestContext,
    ) -> Result<(UpstreamStream, ResponseClass), ProxyError> {
        let address = endpoint.address;
        connect(address, target.cluster.parts.pool.connect_timeout, None)
            .await
            .map(|s| (s, ResponseClass::Success))
            .map_err(|e| {
                ProxyError::new(
                    ErrorKind::ConnectFailure,
                    Origin::Upstream,
                    format!("cannot connect to {address}: {e}"),
                )
            })
    }

    fn view(&self, _: &UpstreamStream) -> ResponseContext {
        ResponseContext {
            kind: MessageKind::Response,
            metadata: Metadata::default(),
        }
    }

    async fn deliver(
        &mut self,
        answered: Answered<'_, UpstreamStream>,
        _: &mut RequestContext,
        _: &mut LazyDeadline,
    ) -> Result<Delivered<()>, ProxyError> {
        let Answered {
            answer: mut upstream,
            active: _active,
            permit: _permit,
            ..
        } = answered;
        if let Some(client) = self.client.take()
            && upstream.write_all(&self.hello).await.is_ok()
        {
            let own = self.ctx.shutdown.child_token();
            let idle = self.listener.limits.idle_timeout;
            let moved = relay(client, upstream, idle, async move {
                own.cancelled().await;
            })
            .await;
            debug!(listener = %self.ctx.name, peer = %self.peer, up = moved.up, down = moved.down, "passthrough closed");
        }
        Ok(Delivered {
            reply: (),
            ending: Ending::Upstream { error: false },
            status: Status::None,
        })
    }

    /// Refused: the connection is closed.
    async fn refuse(&mut self, early: pipeline::Early<'_>, rc: &RequestContext) -> Delivered<()> {
        let e = early.into_error();
        debug!(listener = %self.ctx.name, peer = %self.peer, sni = rc.lookup(keys::SNI).unwrap_or(""), error = %e, "passthrough refused");
        Delivered {
            reply: (),
            ending: Ending::Failed(e.kind),
            status: Status::None,
        }
    }
}
