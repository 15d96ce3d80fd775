//! Serving one client connection with hyper: HTTP/1.1 and HTTP/2 (h2c
//! prior knowledge) on the same port, with the listener's limits.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use metaproxy_core::listener::{ClientStream, ListenerContext, connection_metadata};
use metaproxy_core::registry::{ConnectionHandler, ServeFuture};
use metaproxy_core::snapshot::Limits;
use metaproxy_core::tls::MaybeTls;
use tokio::time::Instant;
use tracing::debug;

use super::conn_tasks::{ConnExecutor, ConnTasks};
use super::request::{ConnInfo, handle};

/// Smallest read buffer hyper accepts (its `max_buf_size` floor).
const MIN_BUF: usize = 8192;
/// How long a connection closing for idleness or shutdown may take to finish
/// its in-flight response before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The `protocol: http` connection handler.
pub(crate) struct HttpHandler;

impl ConnectionHandler for HttpHandler {
    fn serve(
        &self,
        stream: ClientStream,
        peer: SocketAddr,
        ctx: Arc<ListenerContext>,
    ) -> ServeFuture {
        Box::pin(serve(stream, peer, ctx))
    }
}

fn builder(limits: &Limits, exec: ConnExecutor) -> auto::Builder<ConnExecutor> {
    let mut b = auto::Builder::new(exec);
    b.http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF));
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    b
}

async fn serve(stream: ClientStream, peer: SocketAddr, ctx: Arc<ListenerContext>) {
    let _ = stream.tcp().set_nodelay(true);
    let connection = connection_metadata(&stream, peer, ctx.local_addr);
    let info = Arc::new(ConnInfo {
        connection: Arc::new(connection),
        client_ip: http::HeaderValue::from_str(&peer.ip().to_string())
            .unwrap_or_else(|_| http::HeaderValue::from_static("unknown")),
        scheme: if stream.is_tls() { "https" } else { "http" },
        idle_timeout: ctx
            .snapshot
            .load()
            .listener(&ctx.name)
            .map_or(Duration::from_secs(60), |l| l.limits.idle_timeout),
        shutdown: ctx.shutdown.clone(),
    });
    // Plain HTTP/1.1 takes the lean path; the rest (and the rest of a
    // connection that needs more) is served by hyper, as is TLS.
    let (stream, prefix) = match stream.into_parts() {
        (MaybeTls::Plain(tcp), read) => match super::h1::serve(tcp, read, &ctx, &info).await {
            super::h1::Handoff::Done => return,
            super::h1::Handoff::Hyper(tcp, prefix) => (ClientStream::plain(tcp), prefix),
        },
        (MaybeTls::Tls(tls), read) => (ClientStream::tls(*tls), read),
    };
    let moved = Arc::new(AtomicBool::new(false));
    // The bytes the lean path read already come first.
    let io = stream.with_prefix(prefix).with_activity(moved.clone());
    let service_ctx = ctx.clone();
    let Some(limits) = ctx
        .snapshot
        .load()
        .listener(&ctx.name)
        .map(|l| l.limits.clone())
    else {
        return;
    };
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let ctx = service_ctx.clone();
        let info = info.clone();
        // Boxed: hyper moves the future into the stream's task and tokio
        // moves the task's stage on completion; a pointer moves cheaply
        // where the whole state machine (kilobytes) would be copied.
        Box::pin(async move {
            // Each request reads the current config once and finishes on it.
            let snapshot = ctx.snapshot.load_full();
            let resp = match snapshot.listener(&ctx.name) {
                Some(listener) => handle(listener.clone(), info, req).await,
                None => super::reply::local_reply(
                    &metaproxy_core::ProxyError::new(
                        metaproxy_core::ErrorKind::RouteNotFound,
                        metaproxy_core::Origin::Internal,
                        "listener removed",
                    ),
                    super::metadata::is_grpc(req.headers()),
                ),
            };
            Ok::<_, Infallible>(resp)
        })
    });
    // HTTP/2 streams run on this task, not as a task each.
    let (mut streams, exec) = ConnTasks::new();
    let builder = builder(&limits, exec);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let idle = limits.idle_timeout;
    // The flag is sampled every `tick`: a connection is cut after between
    // `idle` and `idle + tick` without a byte moving.
    let tick = (idle / 8).max(Duration::from_millis(10));
    let mut quiet_since = Instant::now();
    let mut next = quiet_since + tick;
    let mut closing: Option<Instant> = None;
    loop {
        let wake = closing.unwrap_or(next);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    debug!(listener = %ctx.name, %peer, error = %e, "http connection ended with an error");
                }
                return;
            }
            () = streams.run() => {}
            _ = ctx.shutdown.cancelled(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                let drain = ctx.snapshot.load().drain_timeout;
                closing = Some(Instant::now() + drain);
            }
            _ = tokio::time::sleep_until(wake) => {
                if closing.is_some() {
                    debug!(listener = %ctx.name, %peer, "closing connection: grace period over");
                    return;
                }
                let now = Instant::now();
                if moved.swap(false, Ordering::Relaxed) {
                    quiet_since = now;
                } else if now.duration_since(quiet_since) >= idle {
                    debug!(listener = %ctx.name, %peer, ?idle, "idle timeout");
                    conn.as_mut().graceful_shutdown();
                    closing = Some(now + CLOSE_GRACE);
                }
                next = now + tick;
            }
        }
    }
}
