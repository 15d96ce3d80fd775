//! Envoy's REST-JSON transport: every type the proxy follows is polled
//! with a JSON `DiscoveryRequest` (`POST /v3/discovery:<type>`) over one
//! kept-alive HTTP/1.1 connection. A `200` carries a `DiscoveryResponse`
//! that goes through the same state machine as the gRPC stream's; its
//! ACK or NACK is the next poll of that type (the version it names, the
//! error it carries). `304 Not Modified`, or an answer identical to the
//! last one, changes nothing. A new subscription (a listener naming a
//! route configuration, a cluster taking endpoints from EDS) is polled at
//! once; otherwise each round waits `refresh_delay`. A server that cannot
//! be reached is retried with backoff while the resources held keep
//! serving.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Xds;
use super::client::{MAX_MESSAGE, chain};
use super::json;
use super::kind::Kind;
use super::settings::XdsSettings;

/// The first wait after a failed poll; it doubles up to `max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Polls the control plane until `stop` is cancelled.
pub async fn run(xds: Arc<Xds>, settings: XdsSettings, stop: CancellationToken) {
    let mut poller = Poller {
        next: HashMap::new(),
        seen: HashMap::new(),
        conn: Connection::new(&settings),
    };
    for r in xds.state.lock().await.opening_requests() {
        poller.queue(r);
    }
    info!(server = %settings.server, node = %settings.node_id, every = ?settings.refresh_delay(), "xDS REST polling");
    let mut backoff = FIRST_BACKOFF;
    loop {
        let round = tokio::select! {
            _ = stop.cancelled() => return,
            r = poller.round(&xds) => r,
        };
        let wait = match round {
            Ok(Subscriptions::Changed) => continue,
            Ok(Subscriptions::Same) => {
                backoff = FIRST_BACKOFF;
                settings.refresh_delay()
            }
            Err(why) => {
                xds.status.connected(false, Some(why.clone()));
                warn!(server = %settings.server, error = %why, retry_in = ?backoff, "xDS poll failed; the resources held keep serving");
                let wait = backoff;
                backoff = (backoff * 2).min(settings.max_backoff());
                wait
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Whether a round changed what the proxy asks for (then the next round
/// starts at once).
enum Subscriptions {
    Same,
    Changed,
}

struct Poller {
    /// The next request of each type: the last ACK or NACK, or a new
    /// subscription.
    next: HashMap<Kind, DiscoveryRequest>,
    /// A hash of the last answer body of each type: the same body again
    /// is not worked out again.
    seen: HashMap<Kind, u64>,
    conn: Connection,
}

impl Poller {
    /// Makes `r` the next request of its type; whether the names asked for
    /// changed.
    fn queue(&mut self, r: DiscoveryRequest) -> bool {
        let Some(kind) = Kind::of(&r.type_url) else {
            return false;
        };
        let changed = self
            .next
            .get(&kind)
            .is_none_or(|old| old.resource_names != r.resource_names);
        self.next.insert(kind, r);
        changed
    }

    /// Polls every type once and takes what changed.
    async fn round(&mut self, xds: &Xds) -> Result<Subscriptions, String> {
        let mut batch = Vec::new();
        let mut answers = Vec::new();
        let mut failed = None;
        for kind in Kind::ALL {
            let (Some(request), Some(path)) = (self.next.get(&kind), kind.rest_path()) else {
                continue;
            };
            let body = json::request_to_json(request).map_err(|e| e.to_string())?;
            let answer = match self.conn.post(path, body).await {
                Ok(Some(answer)) => answer,
                Ok(None) => continue,
                // The server refused this type (an HTTP error status): the
                // other types are still polled.
                Err(e) if self.conn.is_open() => {
                    failed.get_or_insert(e);
                    continue;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            let print = fingerprint(&answer);
            if self.seen.insert(kind, print) == Some(print) {
                continue;
            }
            match read(kind, &answer) {
                Ok(resp) => batch.push(resp),
                Err(why) => {
                    let version = version_of(&answer);
                    let mut state = xds.state.lock().await;
                    answers.push(state.refuse_unreadable(kind, &version, why));
                }
            }
        }
        if failed.is_none() {
            xds.status.connected(true, None);
        }
        if !batch.is_empty() {
            debug!(responses = batch.len(), "xDS REST answers to take");
            let mut state = xds.state.lock().await;
            answers.extend(state.handle_all(batch, xds).await);
        }
        let mut changed = false;
        for r in answers {
            changed |= self.queue(r);
        }
        if let Some(why) = failed {
            return Err(why);
        }
        Ok(if changed {
            Subscriptions::Changed
        } else {
            Subscriptions::Same
        })
    }
}

/// The response in `body`, which must be of `kind`'s type.
fn read(kind: Kind, body: &[u8]) -> Result<DiscoveryResponse, String> {
    let mut resp = json::response_from_json(body).map_err(|e| e.to_string())?;
    if resp.type_url.is_empty() {
        resp.type_url = kind.type_url().to_string();
    }
    if resp.type_url != kind.type_url() {
        return Err(format!(
            "the {} poll was answered with type_url `{}`",
            kind.short(),
            resp.type_url
        ));
    }
    if let Some(other) = resp
        .resources
        .iter()
        .find(|r| r.type_url != kind.type_url())
    {
        return Err(format!(
            "a resource of type `{}` in a {} answer",
            other.type_url,
            kind.short()
        ));
    }
    Ok(resp)
}

/// The `version_info` of an answer that could not be read as a whole, for
/// the status page.
fn version_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("version_info")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn fingerprint(body: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

/// How a poll failed.
enum Failure {
    /// The server answered with an error status; the connection stays.
    Status(String),
    /// The connection failed (it is dropped).
    Connection(String),
}

/// One HTTP/1.1 connection to the control plane, opened when needed.
struct Connection {
    server: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    fn new(settings: &XdsSettings) -> Self {
        Self {
            server: settings.server.clone(),
            connect_timeout: settings.connect_timeout(),
            request_timeout: settings.request_timeout(),
            sender: None,
        }
    }

    /// Whether the connection is still up (after an error: the server
    /// answered with an error status rather than going away).
    fn is_open(&self) -> bool {
        self.sender.is_some()
    }

    /// Posts `body` to `path`: the answer's body on `200`, `None` on `304`.
    async fn post(&mut self, path: &str, body: Vec<u8>) -> Result<Option<Bytes>, String> {
        let limit = self.request_timeout;
        match tokio::time::timeout(limit, self.exchange(path, body)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(Failure::Status(e))) => Err(e),
            Ok(Err(Failure::Connection(e))) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(format!("{path}: no answer within {limit:?}"))
            }
        }
    }

    async fn exchange(&mut self, path: &str, body: Vec<u8>) -> Result<Option<Bytes>, Failure> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            self.sender = Some(self.connect().await.map_err(Failure::Connection)?);
        }
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await.map_err(|e| {
            Failure::Connection(format!("connection to {} lost: {}", self.server, chain(&e)))
        })?;
        let request = http::Request::post(path)
            .header(http::header::HOST, &self.server)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::Connection(format!("{path}: {e}")))?;
        let answer = sender
            .send_request(request)
            .await
            .map_err(|e| Failure::Connection(format!("{path}: {}", chain(&e))))?;
        let status = answer.status();
        let body = Limited::new(answer.into_body(), MAX_MESSAGE)
            .collect()
            .await
            .map_err(|e| Failure::Connection(format!("{path}: reading the answer: {e}")))?
            .to_bytes();
        match status {
            http::StatusCode::OK => Ok(Some(body)),
            http::StatusCode::NOT_MODIFIED => Ok(None),
            other => {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                Err(Failure::Status(format!(
                    "{path}: HTTP {other}: {}",
                    text.trim()
                )))
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect(&self.server),
        )
        .await
        .map_err(|_| format!("cannot connect to {}: timed out", self.server))?
        .map_err(|e| format!("cannot connect to {}: {e}", self.server))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("cannot connect to {}: {}", self.server, chain(&e)))?;
        let server = self.server.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(%server, error = %e, "xDS REST connection ended");
            }
        });
        Ok(sender)
    }
}
