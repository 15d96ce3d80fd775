//! The traffic scenario suite's harness: one small trait per protocol
//! ([`Flavor`]: start upstreams, make a call and learn who answered, the
//! real third-party client), the example configs of `examples/traffic`
//! pointed at them, the admin `/clusters` view, and a steady load.
//!
//! Scenarios (`scenarios.rs`) are written once against [`Flavor`] and run
//! for Dubbo, Thrift, HTTP and gRPC by `tests/traffic_scenarios.rs`.

pub mod dubbo;
pub mod grpc;
pub mod http;
pub mod net;
pub mod peer;
pub mod scenarios;
pub mod thrift;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{Proxy, example_config, write_config};

/// One upstream to start: its tag (what it answers with), port (0:
/// ephemeral) and how late it answers ordinary calls.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Answers name it.
    pub tag: String,
    /// Port to bind (0 picks one).
    pub port: u16,
    /// Delay of every ordinary call, in milliseconds.
    pub delay_ms: u64,
}

impl Spec {
    /// A prompt upstream on an ephemeral port.
    pub fn new(tag: &str) -> Self {
        Self {
            tag: tag.into(),
            port: 0,
            delay_ms: 0,
        }
    }

    /// Several prompt upstreams.
    pub fn many(tags: &[&str]) -> Vec<Spec> {
        tags.iter().map(|t| Spec::new(t)).collect()
    }

    /// This upstream, answering `ms` late.
    pub fn slow(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }

    /// This upstream, on `port`.
    pub fn on(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
}

/// How a call failed, read from the protocol's own error form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The proxy's timeout reply.
    Timeout,
    /// The proxy's over-limit reply (circuit breaker).
    OverLimit,
    /// No upstream could serve it (connect failure, reset, no healthy upstream).
    Unavailable,
    /// The answer had begun (its head was received) when its body broke
    /// off: the upstream died mid-answer, which no proxy can replay (a
    /// gRPC answer then ends with the proxy's `answer cut` status).
    MidAnswer,
    /// Anything else (including the client's own transport errors).
    Other,
}

impl FailureKind {
    /// The kind of a client transport error: `body: ...` means the answer
    /// had begun (see the clients). So does an HTTP/2 reset with
    /// `INTERNAL_ERROR` before the head: hyper resets a stream so when the
    /// body it relays fails, and h2 then drops the stream's head if it is
    /// still queued, so an answer that broke off right after its head
    /// reaches the client as a reset without one.
    pub fn of_transport_error(text: &str) -> FailureKind {
        let head_dropped = text.starts_with("send: ")
            && text.ends_with("stream error received: unexpected internal error encountered");
        if text.starts_with("body: ") || head_dropped {
            FailureKind::MidAnswer
        } else {
            FailureKind::Other
        }
    }
}

/// A failed call.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Its kind.
    pub kind: FailureKind,
    /// The protocol's message.
    pub text: String,
}

impl Failure {
    /// A failure of `kind` saying `text`.
    pub fn new(kind: FailureKind, text: impl Into<String>) -> Self {
        Self {
            kind,
            text: text.into(),
        }
    }
}

/// Which upstream answered (its tag), or how the call failed.
pub type CallResult = Result<String, Failure>;

/// A running upstream of one protocol.
pub trait Upstream: Send {
    /// Its tag.
    fn tag(&self) -> &str;
    /// Its port.
    fn port(&self) -> u16;
    /// `127.0.0.1:<port>`.
    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }
    /// Ordinary calls it received so far (health probes not counted).
    fn calls(&self) -> usize;
    /// Stops it at once: its port refuses connections, open ones drop.
    fn kill(&mut self);
}

/// A persistent client of one protocol: one connection, reused, reopened
/// after the proxy closes it.
pub trait Client {
    /// An ordinary call, with `user-id: key` when given; the answering upstream's tag.
    fn call(&mut self, key: Option<&str>) -> CallResult;
    /// A call the upstream answers after sleeping `ms`.
    fn slow_call(&mut self, ms: u64) -> CallResult;
}

/// A protocol the scenarios run for.
pub trait Flavor: 'static {
    /// For messages and file names.
    const NAME: &'static str;
    /// The listener's `protocol`.
    const LISTENER: &'static str;
    /// The clusters' `protocol`.
    const CLUSTER: &'static str;
    /// Whether the proxy may send a request twice (retries, mirrors): HTTP
    /// only does it for requests without a body, so not for gRPC.
    const REPLAYABLE: bool = true;
    /// The upstream type.
    type Upstream: Upstream;
    /// The client type.
    type Client: Client;
    /// Starts upstreams (all at once) and waits until each listens.
    fn start(specs: &[Spec]) -> Vec<Self::Upstream>;
    /// A client of the proxy at `proxy`, connecting from `source` when given.
    fn client(proxy: SocketAddr, source: Option<IpAddr>) -> Self::Client;
    /// The protocol's real third-party client making `count` calls with
    /// `user-id: key` over one connection: answers per upstream tag.
    fn third_party_calls(proxy: SocketAddr, key: &str, count: usize) -> Tally;
    /// Protocol-specific changes to an example config.
    fn adapt(config: String) -> String {
        config
    }
}

/// Outcomes counted: answers per upstream tag, failures per message.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Answers per tag.
    pub tags: HashMap<String, usize>,
    /// Failures per text.
    pub failures: HashMap<String, usize>,
}

impl Tally {
    /// Counts one result.
    pub fn add(&mut self, result: &CallResult) {
        match result {
            Ok(tag) => *self.tags.entry(tag.clone()).or_default() += 1,
            Err(f) => *self.failures.entry(f.text.clone()).or_default() += 1,
        }
    }

    /// Successful answers.
    pub fn ok(&self) -> usize {
        self.tags.values().sum()
    }

    /// Failed calls.
    pub fn failed(&self) -> usize {
        self.failures.values().sum()
    }
}

/// `n` calls on one client.
pub fn sample(client: &mut impl Client, key: Option<&str>, n: usize) -> Tally {
    let mut t = Tally::default();
    for _ in 0..n {
        t.add(&client.call(key));
    }
    t
}

/// The tag of an answer `Hello <name>, from <tag>` (Dubbo, Thrift).
pub fn hello_tag(answer: &str) -> String {
    answer
        .rsplit_once("from ")
        .map_or(answer, |(_, tag)| tag)
        .to_string()
}

/// Polls `f` until it holds; panics with `what` and `context()` after `limit`.
pub fn wait_until(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A proxy running one of `examples/traffic/*.yaml` for flavor `P`.
pub struct Run {
    /// The proxy process.
    pub proxy: Proxy,
    /// Its config file (rewritten for reloads).
    pub path: PathBuf,
    /// The config text it started with.
    pub config: String,
}

impl Run {
    /// Starts the proxy on `examples/traffic/<example>` with its endpoint
    /// placeholders `127.0.0.1:20881`... replaced by `upstreams` in order,
    /// listener and admin on ephemeral ports, and `P`'s protocols.
    pub fn start<P: Flavor>(example: &str, upstreams: &[&dyn Upstream]) -> Run {
        let mut replacements = vec![
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ];
        const PLACEHOLDERS: [&str; 4] = [
            "127.0.0.1:20881",
            "127.0.0.1:20882",
            "127.0.0.1:20883",
            "127.0.0.1:20884",
        ];
        for (placeholder, u) in PLACEHOLDERS.iter().zip(upstreams) {
            replacements.push((placeholder, u.address()));
        }
        let text = example_config(&format!("examples/traffic/{example}"), &replacements);
        let (listeners, clusters) = text.split_at(text.find("\nclusters:").expect("clusters"));
        let from = "protocol: dubbo";
        let config = P::adapt(format!(
            "{}{}",
            listeners.replace(from, &format!("protocol: {}", P::LISTENER)),
            clusters.replace(from, &format!("protocol: {}", P::CLUSTER))
        ));
        let name = format!("traffic-{}-{}", P::NAME, example.trim_end_matches(".yaml"));
        let path = write_config(&name, &config);
        let proxy = Proxy::start_file(&path, &[]);
        Run {
            proxy,
            path,
            config,
        }
    }

    /// The listener `in`.
    pub fn addr(&self) -> SocketAddr {
        self.proxy.addr("in")
    }

    /// Writes `config` and reloads it through the admin endpoint.
    pub fn reload(&self, config: &str) {
        let tmp = self.path.with_extension("yaml.new");
        std::fs::write(&tmp, config).unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
        let (status, body) = self.proxy.admin("POST", "/reload");
        assert_eq!(status, 200, "reload: {body}\n{}", self.proxy.logs());
    }

    /// What `/clusters` says about endpoint `address` of cluster `cluster`.
    pub fn endpoint(&self, cluster: &str, address: &str) -> EndpointState {
        let (status, body) = self.proxy.admin("GET", "/clusters");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("/clusters is JSON");
        let c = v["clusters"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == cluster))
            .unwrap_or_else(|| panic!("no cluster `{cluster}` in {body}"));
        let e = c["endpoints"]
            .as_array()
            .and_then(|es| es.iter().find(|e| e["address"] == address))
            .unwrap_or_else(|| panic!("no endpoint {address} in {body}"));
        EndpointState {
            healthy: e["healthy"].as_bool().unwrap(),
            ejected: e["ejected"].as_bool().unwrap(),
            drained: e["drained"].as_bool().unwrap(),
            times_ejected: e["times_ejected"].as_u64().unwrap(),
        }
    }

    /// The value of a Prometheus sample whose line starts with `prefix`.
    pub fn metric(&self, prefix: &str) -> Option<f64> {
        let (_, body) = self.proxy.admin("GET", "/metrics");
        body.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

/// One endpoint as `/clusters` shows it.
#[derive(Debug, Clone, Copy)]
pub struct EndpointState {
    /// Active health checks pass.
    pub healthy: bool,
    /// Outlier detection has it out.
    pub ejected: bool,
    /// Drained by config.
    pub drained: bool,
    /// How many times outlier detection ejected it.
    pub times_ejected: u64,
}

impl EndpointState {
    /// Out of load balancing because of its health.
    pub fn out(&self) -> bool {
        !self.healthy || self.ejected
    }
}

/// One call of a load run.
#[derive(Debug, Clone)]
pub struct Record {
    /// When it was sent.
    pub started: Instant,
    /// Its outcome.
    pub result: CallResult,
}

/// Clients calling in a loop on their own threads until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Record>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `threads` clients of `P` calling the proxy at `addr`.
    pub fn start<P: Flavor>(addr: SocketAddr, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..threads)
            .map(|_| {
                let (stop, log) = (stop.clone(), log.clone());
                std::thread::spawn(move || {
                    let mut client = P::client(addr, None);
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let result = client.call(None);
                        log.lock().unwrap().push(Record { started, result });
                    }
                })
            })
            .collect();
        Load { stop, log, threads }
    }

    /// Outcomes of the calls sent after `t`.
    pub fn since(&self, t: Instant) -> Tally {
        let mut tally = Tally::default();
        for r in self.log.lock().unwrap().iter().filter(|r| r.started > t) {
            tally.add(&r.result);
        }
        tally
    }

    /// Stops the clients; every call made.
    pub fn stop(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("load thread");
        }
        Arc::try_unwrap(self.log)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_default()
    }
}
