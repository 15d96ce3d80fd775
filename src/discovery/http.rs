//! Endpoints polled from a discovery URL (`GET`, a JSON or YAML endpoint
//! list), with `ETag` / `If-None-Match` so an unchanged list costs a 304;
//! `https://` URLs are verified against the `tls:` section's CA and may
//! present a client certificate.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use metaproxy_core::config::{ClusterTlsConfig, ConfigDuration};
use metaproxy_core::discovery::{
    DiscoveryContext, DiscoveryError, DiscoveryFactory, DiscoverySource, FeedWriter, SourceFuture,
};
use metaproxy_core::tls::{ClusterTls, build_cluster_tls, resolve_cluster_paths};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::warn;

use super::backoff::Backoff;
use super::endpoint_list::parse_endpoint_list;

/// Largest list body read.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSettings {
    url: String,
    /// Time between polls (default 5s).
    #[serde(default)]
    interval: Option<ConfigDuration>,
    /// Give up on one poll after this long (default 5s).
    #[serde(default)]
    timeout: Option<ConfigDuration>,
    /// For an `https://` URL: the CA that verifies the server, an optional
    /// client certificate, the server name (default: the URL's host).
    #[serde(default)]
    tls: Option<ClusterTlsConfig>,
}

/// Builds [`HttpSource`]s.
pub(super) struct HttpFactory;

impl DiscoveryFactory for HttpFactory {
    fn name(&self) -> &'static str {
        "http"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        context: &DiscoveryContext,
    ) -> Result<Arc<dyn DiscoverySource>, DiscoveryError> {
        let s: HttpSettings = super::settings("http", config)?;
        let uri: Uri = s
            .url
            .parse()
            .map_err(|e| DiscoveryError::invalid("http", format!("url: {e}")))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(DiscoveryError::invalid(
                    "http",
                    "url must be `http://host[:port]/path` or `https://host[:port]/path`",
                ));
            }
        };
        let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
            return Err(DiscoveryError::invalid("http", "url has no host"));
        };
        let tls = match (https, s.tls) {
            (false, None) => None,
            (false, Some(_)) => {
                return Err(DiscoveryError::invalid(
                    "http",
                    "`tls` is for an `https://` url",
                ));
            }
            (true, None) => {
                return Err(DiscoveryError::invalid(
                    "http",
                    "an `https://` url needs `tls:` with the `ca` that verifies the server",
                ));
            }
            (true, Some(mut t)) => {
                // The name checked on the server's certificate is the
                // URL's host unless `sni` says otherwise.
                t.sni
                    .get_or_insert_with(|| host.trim_matches(['[', ']']).to_string());
                let t = resolve_cluster_paths(&t, context.base_dir.as_deref());
                let built = build_cluster_tls(&t, &["http/1.1"])
                    .map_err(|e| DiscoveryError::invalid("http", format!("tls: {e}")))?;
                Some(Arc::new(built))
            }
        };
        let interval = s.interval.map_or(Duration::from_secs(5), |d| d.get());
        if interval.is_zero() {
            return Err(DiscoveryError::invalid(
                "http",
                "interval must be above zero",
            ));
        }
        Ok(Arc::new(HttpSource {
            uri,
            interval,
            timeout: s.timeout.map_or(Duration::from_secs(5), |d| d.get()),
            tls,
        }))
    }
}

/// Polls one URL.
#[derive(Debug)]
struct HttpSource {
    uri: Uri,
    interval: Duration,
    timeout: Duration,
    /// Set for an `https://` URL.
    tls: Option<Arc<ClusterTls>>,
}

/// What one poll gave.
enum Polled {
    List(String, Option<String>),
    NotModified,
}

impl HttpSource {
    async fn poll(&self, etag: Option<&str>) -> Result<Polled, String> {
        let host = self.uri.host().unwrap_or_default();
        let default_port = if self.tls.is_some() { 443 } else { 80 };
        let port = self.uri.port_u16().unwrap_or(default_port);
        let stream = TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        match &self.tls {
            None => self.exchange(stream, etag).await,
            Some(tls) => {
                let peer = stream.peer_addr().map_err(|e| format!("connect: {e}"))?;
                let stream = tls
                    .connect(stream, peer)
                    .await
                    .map_err(|e| format!("tls handshake: {e}"))?;
                self.exchange(stream, etag).await
            }
        }
    }

    /// One `GET` on a connected stream.
    async fn exchange<S>(&self, stream: S, etag: Option<&str>) -> Result<Polled, String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let host = self.uri.host().unwrap_or_default();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        let authority = self.uri.authority().map(|a| a.as_str()).unwrap_or(host);
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = Request::get(path)
            .header(header::HOST, authority)
            .header(header::ACCEPT, "application/json, application/yaml");
        if let Some(tag) = etag {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        match response.status() {
            StatusCode::NOT_MODIFIED => return Ok(Polled::NotModified),
            StatusCode::OK => {}
            other => return Err(format!("answered {other}")),
        }
        let tag = response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        let text = String::from_utf8(body.to_vec()).map_err(|_| "body is not UTF-8".to_string())?;
        Ok(Polled::List(text, tag))
    }
}

impl DiscoverySource for HttpSource {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn run(self: Arc<Self>, feed: FeedWriter) -> SourceFuture {
        Box::pin(async move {
            let mut etag: Option<String> = None;
            let mut backoff = Backoff::new(self.interval);
            loop {
                let polled = tokio::time::timeout(self.timeout, self.poll(etag.as_deref()))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout)));
                let outcome = match polled {
                    Ok(Polled::NotModified) => Ok(None),
                    Ok(Polled::List(text, tag)) => parse_endpoint_list(&text)
                        .map(|(list, skipped)| Some((list, skipped, tag)))
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                let wait = match outcome {
                    Ok(fresh) => {
                        match fresh {
                            Some((list, skipped, tag)) => {
                                if skipped > 0 {
                                    warn!(cluster = feed.cluster(), skipped, url = %self.uri, "skipped endpoints without an ip:port address");
                                }
                                etag = tag;
                                feed.publish(list);
                            }
                            None => feed.unchanged(),
                        }
                        backoff.reset();
                        self.interval
                    }
                    Err(e) => {
                        feed.failed(format!("polling {}: {e}", self.uri));
                        backoff.delay()
                    }
                };
                tokio::select! {
                    _ = feed.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        })
    }
}
