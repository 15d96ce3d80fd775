//! `global_ratelimit` end to end: two metaproxy processes share one real
//! `redis-server` (apt package `redis-server`), and the limit holds across
//! both; with Redis gone, `failure_mode` decides.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{ChildGuard, DubboProvider, Proxy, dubbo_client, example_config};

const LISTENER: &str = "dubbo-in";
const EXAMPLE: &str = "examples/filters/global_ratelimit.yaml";

/// A `redis-server` on a free loopback port (killed on drop).
struct Redis {
    child: Option<ChildGuard>,
    address: String,
}

impl Redis {
    fn start() -> Redis {
        // `--port 0` is not supported: take a free port from the OS, release it, use it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server is needed (apt-get install -y redis-server)");
        let redis = Redis {
            child: Some(ChildGuard(child)),
            address: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + common::START_TIMEOUT;
        while !redis.ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on {}",
                redis.address
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(&self.address) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn stop(&mut self) {
        self.child = None;
    }
}

fn hour() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600
}

/// The example (10 calls per user per hour) for one proxy of the fleet.
fn fleet_config(redis: &str, provider: &DubboProvider, domain: &str) -> String {
    example_config(
        EXAMPLE,
        &[
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:20881", provider.address()),
            ("127.0.0.1:6379", redis.to_string()),
            // A slow CI machine must not fall back to failure_mode here.
            ("timeout: 20ms", "timeout: 2s".to_string()),
            ("domain: demo-fleet", format!("domain: {domain}")),
        ],
    )
}

#[test]
fn two_proxies_share_one_limit() {
    let redis = Redis::start();
    let provider = DubboProvider::start("fleet");
    // A run that straddles the hour boundary counts in two windows: run again.
    for attempt in 0..3 {
        let before = hour();
        let domain = format!("fleet-{attempt}");
        let a = Proxy::start("grl-a", &fleet_config(&redis.address, &provider, &domain));
        let b = Proxy::start("grl-b", &fleet_config(&redis.address, &provider, &domain));
        let mut ok = 0;
        for proxy in [&a, &b, &a, &b] {
            let port = proxy.addr(LISTENER).port();
            let c = dubbo_client(port, &["--count", "4", "--attach", "x-user-id=erin"]);
            assert_eq!(c.ok + c.errors, 4, "{}", c.raw);
            ok += c.ok;
        }
        // Another user has a limit of its own.
        let c = dubbo_client(
            b.addr(LISTENER).port(),
            &["--count", "12", "--attach", "x-user-id=frank"],
        );
        if hour() != before {
            continue;
        }
        assert_eq!(
            ok, 10,
            "16 calls through two proxies, limit 10 per user in all"
        );
        assert_eq!(c.ok, 10, "{}", c.raw);
        return;
    }
    panic!("three runs straddled an hour boundary");
}

#[test]
fn failure_mode_when_redis_goes_away() {
    let mut redis = Redis::start();
    let provider = DubboProvider::start("grl-down");
    let allow = example_config(
        EXAMPLE,
        &[
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:20881", provider.address()),
            ("127.0.0.1:6379", redis.address.clone()),
        ],
    );
    let deny = allow.replace("failure_mode: allow", "failure_mode: deny");
    let open = Proxy::start("grl-allow", &allow);
    let closed = Proxy::start("grl-deny", &deny);
    // While Redis is up both enforce the limit.
    for proxy in [&open, &closed] {
        let port = proxy.addr(LISTENER).port();
        let c = dubbo_client(port, &["--count", "3", "--attach", "x-user-id=gus"]);
        assert_eq!(c.ok, 3, "{} / logs:\n{}", c.raw, proxy.logs());
    }
    redis.stop();
    assert!(!redis.ping());
    // Allow: everything passes (no counting), each answer well within the client's timeout.
    let start = Instant::now();
    let c = dubbo_client(
        open.addr(LISTENER).port(),
        &[
            "--count",
            "30",
            "--attach",
            "x-user-id=gus",
            "--timeout",
            "2000",
        ],
    );
    assert_eq!(c.ok, 30, "{}", c.raw);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    // Deny: everything is refused.
    let c = dubbo_client(
        closed.addr(LISTENER).port(),
        &["--count", "10", "--attach", "x-user-id=gus"],
    );
    assert_eq!((c.ok, c.errors), (0, 10), "{}", c.raw);
    assert!(open.logs().contains("redis unavailable"), "{}", open.logs());
}
