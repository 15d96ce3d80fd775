//! The admin endpoint: health, metrics, config and cluster state, route
//! explanations, reload and log level. HTTP/1.1 on its own address
//! (loopback in every example), optionally behind a bearer token.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metaproxy_core::cluster::{Cluster, Endpoint, Resource, now_ms};
use metaproxy_core::metadata::Metadata;
use metaproxy_core::proxy::RunningProxy;
use metaproxy_core::router::{HOST_KEY, RouteTable};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tracing::{info, warn};

/// Changes the log filter at run time (`/log_level?level=debug`).
pub type LogLevelSetter = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// What the admin endpoint serves.
pub struct Admin {
    /// The proxy.
    pub proxy: Arc<RunningProxy>,
    /// The config file `/reload` reads.
    pub config_path: PathBuf,
    /// Sets the log filter.
    pub set_log_level: Option<LogLevelSetter>,
}

/// How often a running admin endpoint looks for a reload that moved it.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// Serves the admin API at the snapshot's `admin.address` until the proxy
/// shuts down, and follows reloads: an address changed by a reload is bound
/// (the old one is closed once the new one listens; a new address that cannot
/// be bound is logged and the old one keeps serving), and an `admin` section
/// removed by a reload closes the endpoint, added back opens it. Returns the
/// first bound address (None without `admin`); an error if it cannot bind.
pub async fn serve_following(admin: Arc<Admin>) -> std::io::Result<Option<SocketAddr>> {
    let configured = admin.proxy.snapshot().admin;
    let mut current = match configured {
        Some(address) => {
            let stop = admin.proxy.shutdown_token().child_token();
            let bound = serve_until(admin.clone(), address, stop.clone()).await?;
            Some((address, bound, stop))
        }
        None => None,
    };
    let first = current.as_ref().map(|(_, bound, _)| *bound);
    let shutdown = admin.proxy.shutdown_token();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let wanted = admin.proxy.snapshot().admin;
            if wanted == current.as_ref().map(|(a, _, _)| *a) {
                continue;
            }
            match wanted {
                None => {
                    if let Some((_, bound, stop)) = current.take() {
                        stop.cancel();
                        info!(address = %bound, "admin endpoint closed: a reload removed it");
                    }
                }
                Some(address) => {
                    let stop = shutdown.child_token();
                    match serve_until(admin.clone(), address, stop.clone()).await {
                        Ok(bound) => {
                            if let Some((_, old, old_stop)) =
                                current.replace((address, bound, stop))
                            {
                                old_stop.cancel();
                                info!(from = %old, to = %bound, "admin endpoint moved by a reload");
                            }
                        }
                        Err(e) => {
                            // Keep serving where it is; try again on the next tick.
                            warn!(%address, error = %e, "admin endpoint cannot bind the reloaded address; the old one keeps serving");
                        }
                    }
                }
            }
        }
    });
    Ok(first)
}

/// Binds `address` and serves the admin API until the proxy shuts down.
pub async fn serve(admin: Arc<Admin>, address: SocketAddr) -> std::io::Result<SocketAddr> {
    let stop = admin.proxy.shutdown_token();
    serve_until(admin, address, stop).await
}

/// Binds `address` and serves the admin API until `stop`.
async fn serve_until(
    admin: Arc<Admin>,
    address: SocketAddr,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    info!(address = %local, "admin endpoint listening");
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = stop.cancelled() => return,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "admin accept failed");
                        continue;
                    }
                },
            };
            let admin = admin.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(local)
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn json_reply(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    reply(status, "application/json", body)
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

impl Admin {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if let Some(token) = self.proxy.snapshot().admin_token.clone() {
            let expected = format!("Bearer {token}");
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if given != Some(expected.as_str()) {
                return reply(
                    StatusCode::UNAUTHORIZED,
                    "text/plain",
                    "admin token required\n",
                );
            }
        }
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/live") => reply(StatusCode::OK, "text/plain", "live\n"),
            (&Method::GET, "/ready") => {
                if self.proxy.is_ready() {
                    reply(StatusCode::OK, "text/plain", "ready\n")
                } else {
                    reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n")
                }
            }
            (&Method::GET, "/metrics") => reply(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.proxy.metrics().encode(),
            ),
            (&Method::GET, "/config_dump") => self.config_dump(),
            (&Method::GET, "/clusters") => self.clusters(),
            (&Method::GET, "/listeners") => self.listeners().await,
            (&Method::GET, "/certs") => self.certs(),
            (&Method::GET, "/routes/explain") => self.explain(&query(&req)),
            (&Method::POST, "/reload") => self.reload().await,
            (&Method::POST, "/log_level") | (&Method::GET, "/log_level") => {
                self.log_level(&query(&req))
            }
            _ => reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                "endpoints: /live /ready /metrics /config_dump /clusters /listeners /routes/explain?listener=NAME&key=value POST /reload POST /log_level?level=LEVEL\n",
            ),
        }
    }

    fn config_dump(&self) -> Response<Full<Bytes>> {
        let snapshot = self.proxy.snapshot();
        let loaded = self
            .proxy
            .loaded_at()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        json_reply(
            StatusCode::OK,
            &json!({
                "version": self.proxy.version(),
                "loaded_at_unix": loaded,
                "file": self.config_path.display().to_string(),
                "last_reload_error": self.proxy.last_reload_error(),
                "config": snapshot.source.as_deref().cloned().unwrap_or(Value::Null),
                "xds": crate::xds::XdsStatus::global().dump(),
            }),
        )
    }

    /// Every listener with its protocol and the address it is bound to
    /// (port 0 in config, or a listener a control plane added, shows here).
    async fn listeners(&self) -> Response<Full<Bytes>> {
        let snapshot = self.proxy.snapshot();
        let listeners: Vec<Value> = self
            .proxy
            .bound_addresses()
            .await
            .into_iter()
            .map(|(name, address)| {
                let protocol = snapshot.listener(&name).map(|l| l.protocol.to_string());
                json!({ "name": &*name, "address": address.to_string(), "protocol": protocol })
            })
            .collect();
        json_reply(StatusCode::OK, &json!({ "listeners": listeners }))
    }

    fn clusters(&self) -> Response<Full<Bytes>> {
        let snapshot = self.proxy.snapshot();
        let mut names: Vec<_> = snapshot.clusters.keys().cloned().collect();
        names.sort();
        let clusters: Vec<Value> = names
            .iter()
            .map(|n| cluster_json(&snapshot.clusters[n]))
            .collect();
        json_reply(StatusCode::OK, &json!({ "clusters": clusters }))
    }

    /// Every certificate loaded by a TLS listener, as it serves now.
    fn certs(&self) -> Response<Full<Bytes>> {
        let snapshot = self.proxy.snapshot();
        let listeners: Vec<Value> = snapshot
            .listener_order
            .iter()
            .filter_map(|n| snapshot.listener(n))
            .filter_map(|l| {
                let tls = l.tls.as_ref()?;
                Some(json!({ "listener": &*l.name, "certificates": tls.store.certificates() }))
            })
            .collect();
        json_reply(StatusCode::OK, &json!({ "listeners": listeners }))
    }

    fn explain(&self, params: &[(String, String)]) -> Response<Full<Bytes>> {
        let snapshot = self.proxy.snapshot();
        let Some(name) = params.iter().find(|(k, _)| k == "listener").map(|(_, v)| v) else {
            return json_reply(
                StatusCode::BAD_REQUEST,
                &json!({"error": "give ?listener=NAME and the metadata as key=value pairs"}),
            );
        };
        let Some(listener) = snapshot.listener(name) else {
            return json_reply(
                StatusCode::NOT_FOUND,
                &json!({"error": format!("no listener `{name}`")}),
            );
        };
        let http = listener.protocol == "http";
        let mut metadata = Metadata::new();
        for (k, v) in params.iter().filter(|(k, _)| k != "listener") {
            let key = if http {
                k.to_ascii_lowercase()
            } else {
                k.clone()
            };
            metadata.insert(key, v.as_str());
        }
        json_reply(
            StatusCode::OK,
            &explain_json(&listener.routes, &metadata, name),
        )
    }

    async fn reload(&self) -> Response<Full<Bytes>> {
        let loaded = match metaproxy_core::config::load_file(&self.config_path) {
            Ok(l) => l,
            Err(e) => {
                self.proxy.metrics().reload(false);
                return json_reply(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()}));
            }
        };
        if let Some(xds) = crate::xds::running() {
            return match xds.reload_static(&loaded).await {
                Ok(()) => json_reply(StatusCode::OK, &json!({"version": self.proxy.version()})),
                Err(e) => json_reply(StatusCode::BAD_REQUEST, &json!({"error": e})),
            };
        }
        match self.proxy.reload(&loaded).await {
            Ok(summary) => json_reply(
                StatusCode::OK,
                &json!({"version": summary.version, "added": summary.added, "removed": summary.removed}),
            ),
            Err(e) => json_reply(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()})),
        }
    }

    fn log_level(&self, params: &[(String, String)]) -> Response<Full<Bytes>> {
        let Some(level) = params.iter().find(|(k, _)| k == "level").map(|(_, v)| v) else {
            return reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "give ?level=info (or a filter)\n",
            );
        };
        match &self.set_log_level {
            Some(set) => match set(level) {
                Ok(()) => reply(
                    StatusCode::OK,
                    "text/plain",
                    format!("log level: {level}\n"),
                ),
                Err(e) => reply(StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n")),
            },
            None => reply(
                StatusCode::NOT_IMPLEMENTED,
                "text/plain",
                "log level is fixed\n",
            ),
        }
    }
}

fn cluster_json(c: &Cluster) -> Value {
    let now = now_ms();
    let b = c.breaker();
    let set = c.endpoints();
    let discovered: std::collections::HashSet<*const Endpoint> =
        set.discovered.iter().map(Arc::as_ptr).collect();
    let endpoints: Vec<Value> = set
        .all()
        .iter()
        .map(|e| {
            json!({
                "address": e.address.to_string(),
                "labels": &*e.labels,
                "weight": e.weight,
                "priority": e.priority,
                "zone": e.zone(),
                "drained": set.subsets[0].is_drained(e),
                "discovered": discovered.contains(&Arc::as_ptr(e)),
                "healthy": !e.health.check_failed(),
                "ejected": e.health.is_ejected(now),
                "times_ejected": e.health.times_ejected(),
                "active_requests": e.active(),
            })
        })
        .collect();
    let subsets: HashMap<&str, Vec<String>> = set.subsets[1..]
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.endpoints.iter().map(|e| e.address.to_string()).collect(),
            )
        })
        .collect();
    json!({
        "name": &*c.parts.name,
        "protocol": c.parts.protocol,
        "mode": format!("{:?}", c.parts.pool.mode).to_lowercase(),
        "endpoints": endpoints,
        "subsets": subsets,
        "discovery": c.discovery.as_ref().map(|f| f.status()),
        "circuit_breaker": {
            "requests": b.current(Resource::Request),
            "pending": b.current(Resource::Pending),
            "connections": b.current(Resource::Connection),
            "retries": b.current(Resource::Retry),
            "overflows": b.overflows(),
        },
    })
}

/// Which route `metadata` would hit on a listener, and why each route before it did not.
pub fn explain_json(table: &RouteTable, metadata: &Metadata, listener: &str) -> Value {
    let (vhost, routes) = if table.virtual_hosts().is_empty() {
        (None, table.routes())
    } else {
        match table.virtual_host(metadata.get(HOST_KEY).unwrap_or("")) {
            Some(v) => (Some(v.name.to_string()), v.routes.as_slice()),
            None => {
                return json!({
                    "listener": listener,
                    "virtual_host": null,
                    "matched": null,
                    "why": format!("no virtual host for `{}`", metadata.get(HOST_KEY).unwrap_or("")),
                });
            }
        }
    };
    let mut matched = None;
    let mut checked = Vec::new();
    for r in routes {
        let conditions: Vec<Value> = r
            .conditions
            .iter()
            .map(|c| {
                json!({
                    "condition": c.describe(),
                    "value": metadata.get(&c.key),
                    "holds": c.matches(metadata),
                })
            })
            .collect();
        let hit = r.matches(metadata);
        checked.push(json!({"route": &*r.name, "matched": hit, "conditions": conditions}));
        if hit {
            matched = Some(r.name.to_string());
            break;
        }
    }
    json!({
        "listener": listener,
        "virtual_host": vhost,
        "matched": matched,
        "routes": checked,
    })
}
