//! HTTP/1.1: the in-process hyper [`Backend`] as upstream, httpx as the
//! third-party client, and a keep-alive hyper client over one connection.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{SendRequest, handshake};
use hyper_util::rt::TokioIo;

use super::{CallResult, Client, Failure, FailureKind, Flavor, Spec, Tally, Upstream};
use crate::http_peers::{Backend, Quirks, httpx_client};

/// HTTP/1.1.
pub struct Http;

/// An in-process backend; stopping it drops its runtime (listener and
/// connections close). Its count includes `/health` probes.
pub struct HttpUpstream {
    backend: Option<Backend>,
    tag: String,
    port: u16,
}

impl Upstream for HttpUpstream {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn calls(&self) -> usize {
        self.backend.as_ref().map_or(0, |b| b.count() as usize)
    }
    fn kill(&mut self) {
        self.backend.take();
    }
}

impl Flavor for Http {
    const NAME: &'static str = "http";
    const LISTENER: &'static str = "http";
    const CLUSTER: &'static str = "http";
    type Upstream = HttpUpstream;
    type Client = HttpClient;

    fn start(specs: &[Spec]) -> Vec<HttpUpstream> {
        specs
            .iter()
            .map(|s| {
                let quirks = Quirks {
                    delay: (s.delay_ms > 0).then(|| Duration::from_millis(s.delay_ms)),
                    ..Quirks::default()
                };
                let backend = Backend::start_on(&s.tag, quirks, s.port);
                HttpUpstream {
                    port: backend.addr.port(),
                    tag: s.tag.clone(),
                    backend: Some(backend),
                }
            })
            .collect()
    }

    fn client(proxy: SocketAddr, source: Option<IpAddr>) -> HttpClient {
        HttpClient {
            proxy,
            source,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            sender: None,
            cookie: None,
            set_cookie: None,
        }
    }

    fn third_party_calls(proxy: SocketAddr, key: &str, count: usize) -> Tally {
        let v = httpx_client(
            &format!("http://{proxy}/"),
            &[
                "--count",
                &count.to_string(),
                "--header",
                &format!("user-id={key}"),
            ],
        );
        // Bodies start with the answering backend's tag (error bodies, if
        // any, also show up as failures by status).
        let mut tally = Tally::default();
        for (line, n) in v["bodies"].as_object().unwrap() {
            let n = n.as_u64().unwrap() as usize;
            let tag = line.split(' ').next().unwrap_or("").to_string();
            *tally.tags.entry(tag).or_default() += n;
        }
        for (status, n) in v["statuses"].as_object().unwrap() {
            if status != "200" {
                let n = n.as_u64().unwrap() as usize;
                *tally
                    .failures
                    .entry(format!("status {status}"))
                    .or_default() += n;
            }
        }
        tally
    }
}

/// One keep-alive HTTP/1.1 connection, reopened when the proxy closes it.
pub struct HttpClient {
    proxy: SocketAddr,
    source: Option<IpAddr>,
    runtime: tokio::runtime::Runtime,
    sender: Option<SendRequest<Empty<Bytes>>>,
    /// Sent as `cookie:` when set.
    pub cookie: Option<String>,
    /// The last `set-cookie` the proxy answered with.
    pub set_cookie: Option<String>,
}

impl HttpClient {
    /// `GET path`: the status, the `x-metaproxy-reason` header and the body.
    fn get(&mut self, path: &str, key: Option<&str>) -> Result<(u16, String, String), String> {
        let (proxy, source) = (self.proxy, self.source);
        let sender = &mut self.sender;
        let mut request = hyper::Request::get(path).header("host", "traffic.test");
        if let Some(k) = key {
            request = request.header("user-id", k);
        }
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c.as_str());
        }
        let request = request.body(Empty::<Bytes>::new()).unwrap();
        let result = self.runtime.block_on(async move {
            if sender.is_none() {
                let stream = super::net::connect_async(proxy, source)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                let (s, conn) = handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                tokio::spawn(conn);
                *sender = Some(s);
            }
            let s = sender.as_mut().unwrap();
            s.ready().await.map_err(|e| format!("not ready: {e}"))?;
            let response = s
                .send_request(request)
                .await
                .map_err(|e| format!("send: {e}"))?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let (reason, set_cookie) = (header("x-metaproxy-reason"), header("set-cookie"));
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            Ok::<_, String>((
                status,
                reason.unwrap_or_default(),
                set_cookie,
                String::from_utf8_lossy(&body).into_owned(),
            ))
        });
        match result {
            Ok((status, reason, set_cookie, body)) => {
                if set_cookie.is_some() {
                    self.set_cookie = set_cookie;
                }
                Ok((status, reason, body))
            }
            Err(e) => {
                self.sender = None;
                Err(e)
            }
        }
    }

    fn request(&mut self, path: &str, key: Option<&str>) -> CallResult {
        let (status, reason, body) = self
            .get(path, key)
            .map_err(|e| Failure::new(FailureKind::of_transport_error(&e), e))?;
        let kind = match (status, reason.as_str()) {
            (200, _) => return Ok(body.split(' ').next().unwrap_or("").to_string()),
            (504, _) => FailureKind::Timeout,
            (503, "over_limit") => FailureKind::OverLimit,
            (502 | 503, _) => FailureKind::Unavailable,
            _ => FailureKind::Other,
        };
        Err(Failure::new(
            kind,
            format!("{status} {reason}: {}", body.trim()),
        ))
    }
}

impl Client for HttpClient {
    fn call(&mut self, key: Option<&str>) -> CallResult {
        self.request("/call", key)
    }

    fn slow_call(&mut self, ms: u64) -> CallResult {
        self.request(&format!("/slow/{ms}"), None)
    }
}
