//! `global_ratelimit`: limits shared by a fleet of proxies, counted in Redis.
//!
//! Every descriptor whose conditions hold and whose `keys` are all present
//! in the request counts the request under a Redis key built from the
//! descriptor's name and those keys' values; the request is refused
//! (`OverLimit`, HTTP 429 with `retry-after`) when any count is over its
//! `limit` for the `window`. All descriptors of one request go to Redis in
//! one pipeline: one round trip.
//!
//! - `fixed_window`: `INCR` + `PEXPIRE` on a key per window (windows are
//!   aligned to the proxies' wall clocks: keep them NTP-synced).
//! - `sliding_window`: a Lua script weighs the previous window's count by
//!   how much of it still overlaps the sliding window, and counts only
//!   allowed requests.
//!
//! When Redis is down or slower than `redis.timeout` (default 20 ms),
//! `failure_mode` decides: `allow` (default) lets the request through,
//! `deny` refuses it (`OverLimit`, HTTP 503).
//!
//! ```yaml
//! filters:
//!   - global_ratelimit:
//!       redis: { address: 127.0.0.1:6379, timeout: 20ms, connections: 2 }
//!       domain: shop
//!       algorithm: fixed_window
//!       failure_mode: allow
//!       descriptors:
//!         - { name: per-user, keys: [ x-user-id ], limit: 100, window: 1m }
//!         - { name: checkout, match: [ { key: method, exact: checkout } ], limit: 1000, window: 1s }
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use metaproxy_core::PluginError;
use metaproxy_core::config::ConfigDuration;
use metaproxy_core::filter::{Filter, FilterAction, FilterContext, FilterFactory, RequestContext};
use metaproxy_core::metadata::MetadataView;
use metaproxy_core::{ErrorKind, Origin, ProxyError};
use serde::Deserialize;

use crate::bucket::retry_after_secs;
use crate::conditions::{Conditions, metadata_key};
use crate::resp::{Client, Pipeline, RedisError, Value};
use metaproxy_core::config::MatchConfig;

/// Redis round-trip budget when `redis.timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(20);
/// Shared Redis connections per filter instance when `redis.connections` is not given.
pub const DEFAULT_CONNECTIONS: usize = 2;
/// Prefix of every Redis key this filter writes.
const KEY_PREFIX: &str = "metaproxy:rl:";

/// The sliding-window check: KEYS = current, previous window counters;
/// ARGV = limit, window ms, ms elapsed in the current window. Returns 1 when
/// allowed (and counted), 0 when over the limit.
const SLIDING_WINDOW_LUA: &str = r"
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local elapsed = tonumber(ARGV[3])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * (window - elapsed) / window + current + 1 > limit then
  return 0
end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], window * 2)
return 1
";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Algorithm {
    #[default]
    FixedWindow,
    SlidingWindow,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FailureMode {
    #[default]
    Allow,
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisConfig {
    address: String,
    #[serde(default)]
    timeout: Option<ConfigDuration>,
    #[serde(default)]
    connections: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DescriptorConfig {
    name: String,
    #[serde(default, rename = "match")]
    conditions: Vec<MatchConfig>,
    #[serde(default)]
    keys: Vec<String>,
    limit: u64,
    window: ConfigDuration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    redis: RedisConfig,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    algorithm: Algorithm,
    #[serde(default)]
    failure_mode: FailureMode,
    descriptors: Vec<DescriptorConfig>,
}

#[derive(Debug)]
struct Descriptor {
    name: String,
    conditions: Conditions,
    keys: Vec<String>,
    limit: u64,
    window_ms: u64,
}

/// Escapes what would break the key's structure (`:` separators, `{}` hash tag).
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '%' | ':' | '{' | '}' => {
                let _ = write!(out, "%{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
}

impl Descriptor {
    /// The counter's base key (`metaproxy:rl:{domain:name:v1:v2}`: one Redis
    /// Cluster hash slot for all of a descriptor's windows), or `None` when a
    /// key is missing from the request.
    fn base_key(&self, domain: &str, request: &RequestContext) -> Option<String> {
        let mut key = String::with_capacity(64);
        key.push_str(KEY_PREFIX);
        key.push('{');
        escape_into(&mut key, domain);
        key.push(':');
        escape_into(&mut key, &self.name);
        for k in &self.keys {
            key.push(':');
            escape_into(&mut key, request.lookup(k)?);
        }
        key.push('}');
        Some(key)
    }
}

/// What one descriptor asked Redis.
struct Check<'a> {
    descriptor: &'a Descriptor,
    /// Milliseconds until the current window ends.
    window_left_ms: u64,
}

/// The filter.
#[derive(Debug)]
pub struct GlobalRateLimit {
    client: Client,
    timeout: Duration,
    domain: String,
    algorithm: Algorithm,
    failure_mode: FailureMode,
    descriptors: Vec<Descriptor>,
    /// The sliding-window script's SHA-1 once Redis told us (`SCRIPT LOAD`).
    script_sha: Mutex<Option<Arc<str>>>,
    /// Unix ms of the last Redis failure warning (at most one a second).
    last_warning_ms: AtomicU64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why a request's limits could not be checked (the failure mode decides).
#[derive(Debug, thiserror::Error)]
enum Unavailable {
    /// Redis did not answer within the filter's `timeout`.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// `SCRIPT LOAD` did not answer with the script's hash.
    #[error("SCRIPT LOAD answered {0:?}")]
    ScriptLoad(Option<Value>),
    /// A command failed (`-ERR ...`).
    #[error("redis: {0}")]
    CommandFailed(String),
    /// A reply of a type the command does not give.
    #[error("unexpected redis reply {0:?}")]
    UnexpectedReply(Option<Value>),
}

impl GlobalRateLimit {
    fn sha(&self) -> Option<Arc<str>> {
        self.script_sha
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn set_sha(&self, sha: Option<Arc<str>>) {
        *self
            .script_sha
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = sha;
    }

    /// Builds the pipeline for the matching descriptors.
    fn plan<'a>(
        &'a self,
        request: &RequestContext,
        now_ms: u64,
        sha: Option<&str>,
    ) -> (Pipeline, Vec<Check<'a>>) {
        let mut pipeline = Pipeline::new();
        let mut checks = Vec::new();
        if self.algorithm == Algorithm::SlidingWindow && sha.is_none() {
            pipeline.cmd(&[b"SCRIPT", b"LOAD", SLIDING_WINDOW_LUA.as_bytes()]);
        }
        for d in &self.descriptors {
            if !d.conditions.matches(request) {
                continue;
            }
            let Some(base) = d.base_key(&self.domain, request) else {
                continue;
            };
            let index = now_ms / d.window_ms;
            let elapsed = now_ms % d.window_ms;
            let current = format!("{base}:{index}");
            let ttl = (d.window_ms * 2).to_string();
            match self.algorithm {
                Algorithm::FixedWindow => {
                    pipeline.cmd(&[b"INCR", current.as_bytes()]);
                    pipeline.cmd(&[b"PEXPIRE", current.as_bytes(), ttl.as_bytes()]);
                }
                Algorithm::SlidingWindow => {
                    let previous = format!("{base}:{}", index.saturating_sub(1));
                    let (limit, window, elapsed) = (
                        d.limit.to_string(),
                        d.window_ms.to_string(),
                        elapsed.to_string(),
                    );
                    let args: [&[u8]; 6] = [
                        b"2",
                        current.as_bytes(),
                        previous.as_bytes(),
                        limit.as_bytes(),
                        window.as_bytes(),
                        elapsed.as_bytes(),
                    ];
                    let mut cmd: Vec<&[u8]> = Vec::with_capacity(8);
                    match sha {
                        Some(sha) => cmd.extend([&b"EVALSHA"[..], sha.as_bytes()]),
                        None => cmd.extend([&b"EVAL"[..], SLIDING_WINDOW_LUA.as_bytes()]),
                    }
                    cmd.extend(args);
                    pipeline.cmd(&cmd);
                }
            }
            checks.push(Check {
                descriptor: d,
                window_left_ms: d.window_ms - elapsed,
            });
        }
        (pipeline, checks)
    }

    /// Reads the replies: `Ok(None)` allowed, `Ok(Some(check))` the first over-limit one.
    fn verdict<'a, 'c>(
        &self,
        replies: &[Value],
        checks: &'c [Check<'a>],
        loaded_script: bool,
    ) -> Result<Option<&'c Check<'a>>, Unavailable> {
        let mut replies = replies.iter();
        if loaded_script {
            match replies.next() {
                Some(Value::Bulk(Some(sha))) => {
                    let sha = String::from_utf8_lossy(sha);
                    self.set_sha(Some(Arc::from(sha.as_ref())));
                }
                other => return Err(Unavailable::ScriptLoad(other.cloned())),
            }
        }
        let mut over = None;
        for check in checks {
            let count = match (self.algorithm, replies.next()) {
                (Algorithm::FixedWindow, Some(Value::Int(count))) => {
                    let _expire = replies.next();
                    *count > i64::try_from(check.descriptor.limit).unwrap_or(i64::MAX)
                }
                (Algorithm::SlidingWindow, Some(Value::Int(allowed))) => *allowed == 0,
                (_, Some(Value::Error(e))) => {
                    if e.starts_with("NOSCRIPT") {
                        self.set_sha(None);
                    }
                    return Err(Unavailable::CommandFailed(e.clone()));
                }
                (_, other) => return Err(Unavailable::UnexpectedReply(other.cloned())),
            };
            if count && over.is_none() {
                over = Some(check);
            }
        }
        Ok(over)
    }

    fn unavailable(&self, why: &Unavailable) -> FilterAction {
        let now = unix_ms();
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .last_warning_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                failure_mode = ?self.failure_mode,
                "global_ratelimit: redis unavailable: {why}"
            );
        }
        match self.failure_mode {
            FailureMode::Allow => FilterAction::Continue,
            FailureMode::Deny => FilterAction::Reply(
                ProxyError::new(
                    ErrorKind::OverLimit,
                    Origin::Internal,
                    "global rate limit unavailable",
                )
                .with_reply_status(503),
            ),
        }
    }
}

#[async_trait]
impl Filter for GlobalRateLimit {
    fn name(&self) -> &'static str {
        "global_ratelimit"
    }

    async fn on_request(&self, request: &mut RequestContext) -> FilterAction {
        let now_ms = unix_ms();
        let sha = match self.algorithm {
            Algorithm::SlidingWindow => self.sha(),
            Algorithm::FixedWindow => None,
        };
        let (pipeline, checks) = self.plan(request, now_ms, sha.as_deref());
        if checks.is_empty() {
            return FilterAction::Continue;
        }
        let loaded_script = self.algorithm == Algorithm::SlidingWindow && sha.is_none();
        let replies = match tokio::time::timeout(self.timeout, self.client.query(pipeline)).await {
            Err(_) => return self.unavailable(&Unavailable::Timeout(self.timeout)),
            Ok(Err(e)) => return self.unavailable(&Unavailable::Redis(e)),
            Ok(Ok(replies)) => replies,
        };
        match self.verdict(&replies, &checks, loaded_script) {
            Err(why) => self.unavailable(&why),
            Ok(None) => FilterAction::Continue,
            Ok(Some(check)) => FilterAction::Reply(
                ProxyError::new(
                    ErrorKind::OverLimit,
                    Origin::Internal,
                    format!("global rate limit `{}` exceeded", check.descriptor.name),
                )
                .with_reply_status(429)
                .with_reply_metadata(
                    "retry-after",
                    retry_after_secs(Duration::from_millis(check.window_left_ms)).to_string(),
                ),
            ),
        }
    }
}

/// Builds [`GlobalRateLimit`] from config.
#[derive(Debug)]
pub struct GlobalRateLimitFactory;

fn check_address(address: &str) -> Result<(), PluginError> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(PluginError::invalid_option(
            "redis.address",
            format!("`{address}` must be host:port"),
        )),
    }
}

impl FilterFactory for GlobalRateLimitFactory {
    fn name(&self) -> &'static str {
        "global_ratelimit"
    }

    fn build(
        &self,
        config: &serde_json::Value,
        context: &FilterContext<'_>,
    ) -> Result<Arc<dyn Filter>, PluginError> {
        let config = Config::deserialize(config)?;
        check_address(&config.redis.address)?;
        let timeout = config.redis.timeout.map_or(DEFAULT_TIMEOUT, |d| d.get());
        if timeout.is_zero() {
            return Err("redis.timeout must be greater than zero".into());
        }
        let connections = config.redis.connections.unwrap_or(DEFAULT_CONNECTIONS);
        if !(1..=64).contains(&connections) {
            return Err(PluginError::invalid_option(
                "redis.connections",
                format!("must be 1..=64, not {connections}"),
            ));
        }
        if config.descriptors.is_empty() {
            return Err("needs at least one entry in `descriptors`".into());
        }
        let mut descriptors: Vec<Descriptor> = Vec::new();
        for d in config.descriptors {
            let name = d.name;
            if descriptors.iter().any(|x| x.name == name) {
                return Err(PluginError::Invalid(format!(
                    "descriptor `{name}` is defined twice"
                )));
            }
            let window_ms = u64::try_from(d.window.get().as_millis()).unwrap_or(u64::MAX);
            if window_ms == 0 {
                return Err(PluginError::invalid_option(
                    name,
                    "window must be at least 1ms",
                ));
            }
            let conditions = Conditions::compile(&d.conditions, context)
                .map_err(|e| PluginError::invalid_option(&name, e))?;
            descriptors.push(Descriptor {
                keys: d.keys.iter().map(|k| metadata_key(k, context)).collect(),
                name,
                conditions,
                limit: d.limit,
                window_ms,
            });
        }
        Ok(Arc::new(GlobalRateLimit {
            client: Client::new(config.redis.address, connections),
            timeout,
            domain: config
                .domain
                .unwrap_or_else(|| context.listener.to_string()),
            algorithm: config.algorithm,
            failure_mode: config.failure_mode,
            descriptors,
            script_sha: Mutex::new(None),
            last_warning_ms: AtomicU64::new(0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaproxy_core::Metadata;
    use metaproxy_core::message::MessageKind;
    use std::io::{Read, Write};
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    const CTX: FilterContext<'static> = FilterContext {
        listener: "test",
        protocol: "dubbo",
        route: None,
    };

    /// A real `redis-server` on a free loopback port, killed on drop.
    struct Redis {
        child: Child,
        address: String,
    }

    impl Drop for Redis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn redis() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests (apt-get install -y redis-server)");
        let redis = Redis {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = std::net::TcpStream::connect(&redis.address)
                .ok()
                .and_then(|mut s| {
                    s.write_all(b"PING\r\n").ok()?;
                    let mut buf = [0u8; 7];
                    s.read_exact(&mut buf).ok()?;
                    Some(buf == *b"+PONG\r\n")
                });
            if pong == Some(true) {
                return redis;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn build(config: serde_json::Value) -> Arc<dyn Filter> {
        GlobalRateLimitFactory.build(&config, &CTX).unwrap()
    }

    fn request(pairs: &[(&str, &str)]) -> RequestContext {
        let md: Metadata = pairs.iter().copied().collect();
        RequestContext::new("dubbo", MessageKind::Request, md, Arc::new(Metadata::new()))
    }

    async fn allowed(f: &Arc<dyn Filter>, pairs: &[(&str, &str)], n: usize) -> usize {
        let mut ok = 0;
        for _ in 0..n {
            match f.on_request(&mut request(pairs)).await {
                FilterAction::Continue => ok += 1,
                FilterAction::Reply(e) => {
                    assert_eq!(e.kind, ErrorKind::OverLimit, "{e}");
                    assert_eq!(e.reply_status, Some(429), "{e}");
                }
                FilterAction::Respond(r) => panic!("{r:?}"),
            }
        }
        ok
    }

    fn config(address: &str, algorithm: &str, domain: &str) -> serde_json::Value {
        serde_json::json!({
            "redis": {"address": address, "timeout": "500ms"},
            "domain": domain,
            "algorithm": algorithm,
            "descriptors": [
                {"name": "per-user", "keys": ["x-user-id"], "limit": 4, "window": "1h"},
                {"name": "slow", "match": [{"key": "method", "exact": "slow"}], "limit": 2, "window": "1h"}
            ]
        })
    }

    /// Runs `body` until it completes within one window of an hour (a run
    /// straddling the hour boundary sees two windows and is retried).
    async fn within_one_window<F, Fut>(mut body: F)
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        for attempt in 0..3 {
            let before = unix_ms() / 3_600_000;
            body(format!("d{attempt}-{}", fastrand::u64(..))).await;
            if unix_ms() / 3_600_000 == before {
                return;
            }
        }
        panic!("three runs straddled an hour boundary");
    }

    #[tokio::test]
    async fn limits_are_shared_between_instances() {
        let redis = redis();
        for algorithm in ["fixed_window", "sliding_window"] {
            within_one_window(|domain| {
                let a = build(config(&redis.address, algorithm, &domain));
                let b = build(config(&redis.address, algorithm, &domain));
                async move {
                    // Two "proxies" share user u1's 4 requests.
                    let ok = allowed(&a, &[("x-user-id", "u1")], 3).await
                        + allowed(&b, &[("x-user-id", "u1")], 3).await;
                    assert_eq!(ok, 4, "{algorithm}");
                    assert_eq!(
                        allowed(&a, &[("x-user-id", "u2")], 6).await,
                        4,
                        "{algorithm}"
                    );
                    // The descriptor with a condition, without the user key.
                    assert_eq!(
                        allowed(&b, &[("method", "slow")], 5).await,
                        2,
                        "{algorithm}"
                    );
                    // Neither descriptor applies: not limited, no round trip.
                    assert_eq!(
                        allowed(&a, &[("method", "fast")], 10).await,
                        10,
                        "{algorithm}"
                    );
                    // Every matching descriptor must allow it.
                    assert_eq!(
                        allowed(&b, &[("method", "slow"), ("x-user-id", "u3")], 1).await,
                        0,
                        "{algorithm}"
                    );
                }
            })
            .await;
        }
    }

    #[tokio::test]
    async fn fixed_window_resets_with_the_next_window() {
        let redis = redis();
        let f = build(serde_json::json!({
            "redis": {"address": redis.address, "timeout": "500ms"},
            "descriptors": [{"name": "all", "limit": 3, "window": "200ms"}]
        }));
        // Start right after a window boundary so the burst fits in one window.
        while unix_ms() % 200 > 20 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(allowed(&f, &[], 10).await, 3);
        let deadline = Instant::now() + Duration::from_secs(5);
        while allowed(&f, &[], 1).await == 0 {
            assert!(Instant::now() < deadline, "the window never reset");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn sliding_window_recovers_the_script_after_a_flush() {
        let redis = redis();
        let f = build(config(&redis.address, "sliding_window", "flush"));
        assert_eq!(allowed(&f, &[("x-user-id", "a")], 1).await, 1);
        // Redis forgets its scripts: one request falls to failure_mode (allow), then it recovers.
        let client = Client::new(redis.address.clone(), 1);
        let mut p = Pipeline::new();
        p.cmd(&[b"SCRIPT", b"FLUSH"]);
        client.query(p).await.unwrap();
        assert_eq!(allowed(&f, &[("x-user-id", "a")], 1).await, 1);
        assert_eq!(
            allowed(&f, &[("x-user-id", "a")], 10).await,
            3,
            "limit 4, one counted before"
        );
    }

    #[tokio::test]
    async fn failure_mode_when_redis_is_down_or_slow() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        // Accepts connections but never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_address = silent.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        for (address, mode) in [
            (&dead, "allow"),
            (&dead, "deny"),
            (&silent_address, "allow"),
            (&silent_address, "deny"),
        ] {
            let f = build(serde_json::json!({
                "redis": {"address": address},
                "failure_mode": mode,
                "descriptors": [{"name": "all", "limit": 1, "window": "1s"}]
            }));
            for _ in 0..3 {
                let start = Instant::now();
                let action = f.on_request(&mut request(&[])).await;
                // Default timeout 20 ms; generous bound for a loaded machine.
                assert!(
                    start.elapsed() < Duration::from_secs(1),
                    "{:?}",
                    start.elapsed()
                );
                match (mode, action) {
                    ("allow", FilterAction::Continue) => {}
                    ("deny", FilterAction::Reply(e)) => {
                        assert_eq!((e.kind, e.reply_status), (ErrorKind::OverLimit, Some(503)));
                    }
                    (mode, other) => panic!("{address} {mode}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn keys_are_escaped_and_config_errors() {
        let mut s = String::new();
        escape_into(&mut s, "a:b{c}%");
        assert_eq!(s, "a%3Ab%7Bc%7D%25");
        for (config, want) in [
            (
                serde_json::json!({"redis": {"address": "nope"}, "descriptors": []}),
                "host:port",
            ),
            (
                serde_json::json!({"redis": {"address": "h:1"}, "descriptors": []}),
                "at least one",
            ),
            (
                serde_json::json!({"redis": {"address": "h:1"}, "failure_mode": "maybe",
                    "descriptors": [{"name": "a", "limit": 1, "window": "1s"}]}),
                "unknown variant",
            ),
            (
                serde_json::json!({"redis": {"address": "h:1"},
                    "descriptors": [{"name": "a", "limit": 1, "window": "1s"},
                                    {"name": "a", "limit": 1, "window": "1s"}]}),
                "defined twice",
            ),
            (
                serde_json::json!({"redis": {"address": "h:1", "timeout": "0ms"},
                    "descriptors": [{"name": "a", "limit": 1, "window": "1s"}]}),
                "greater than zero",
            ),
        ] {
            let Err(err) = GlobalRateLimitFactory.build(&config, &CTX) else {
                panic!("{config} must be refused");
            };
            assert!(err.to_string().contains(want), "{config}: {err}");
        }
    }
}
