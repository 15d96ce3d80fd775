//! In-process HTTP demo backends for the example gateway (hyper, HTTP/1.1 and h2c).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Binds `addr`, with a clear message when the port is taken.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind demo HTTP backend {addr}: {e}"))
}

/// Serves `listener` forever, answering every request with one line:
/// `<tag> <METHOD> <path?query> (x-request-id: ..., x-forwarded-for: ...)`.
pub async fn backend(listener: TcpListener, tag: &'static str) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                let header = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_string()
                };
                let text = format!(
                    "{tag} {} {} (x-request-id: {}, x-forwarded-for: {})\n",
                    req.method(),
                    req.uri().path_and_query().map_or("/", |p| p.as_str()),
                    header("x-request-id"),
                    header("x-forwarded-for"),
                );
                let mut resp = Response::new(Full::new(Bytes::from(text)));
                resp.headers_mut().insert(
                    "x-demo-backend",
                    hyper::header::HeaderValue::from_static(tag),
                );
                Ok::<_, Infallible>(resp)
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
