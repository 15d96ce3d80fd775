//! Traffic policies through the real binary with real Dubbo peers
//! (sofa-rpc-node providers and client): retries, outlier detection,
//! active health checks (Dubbo heartbeats), circuit breakers, session
//! affinity, priority failover and mirroring.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{DubboProvider, Proxy, dead_address, dubbo_client};

fn listener(routes: &str) -> String {
    format!(
        "listeners:\n  - name: dubbo-in\n    address: 127.0.0.1:0\n    protocol: dubbo\n    routes:\n{routes}"
    )
}

#[test]
fn retries_move_to_another_endpoint_on_connect_failure() {
    let live = DubboProvider::start("live");
    let config = format!(
        r#"{}
clusters:
  - name: demo
    protocol: dubbo
    endpoints: [ {{ address: "{}" }}, {{ address: "{}" }} ]
"#,
        listener(
            "      - route: { cluster: demo, retries: { attempts: 2, on: [connect-failure] } }\n"
        ),
        dead_address(),
        live.address()
    );
    let proxy = Proxy::start("retry-connect", &config);
    let s = dubbo_client(proxy.addr("dubbo-in").port(), &["--count", "40"]);
    assert_eq!(s.ok, 40, "{} / logs:\n{}", s.raw, proxy.logs());
    assert!(proxy.logs().contains("retrying"), "retries happened");
}

#[test]
fn without_retries_the_dead_endpoint_shows() {
    let live = DubboProvider::start("live");
    let config = format!(
        r#"{}
clusters:
  - name: demo
    protocol: dubbo
    endpoints: [ {{ address: "{}" }}, {{ address: "{}" }} ]
"#,
        listener("      - route: { cluster: demo }\n"),
        dead_address(),
        live.address()
    );
    let proxy = Proxy::start("no-retry", &config);
    let s = dubbo_client(proxy.addr("dubbo-in").port(), &["--count", "40"]);
    assert!(
        s.errors >= 10 && s.ok >= 10,
        "round robin hits both: {}",
        s.raw
    );
}

#[test]
fn unavailable_answers_are_retried_elsewhere_and_outliers_ejected() {
    let busy = DubboProvider::start_failing(100, "thread pool is exhausted");
    let live = DubboProvider::start("live");
    let config = format!(
        r#"{}
clusters:
  - name: demo
    protocol: dubbo
    outlier_detection: {{ consecutive_gateway_errors: 3, base_ejection_time: 30s, max_ejection_percent: 50 }}
    endpoints: [ {{ address: "{}" }}, {{ address: "{}" }} ]
"#,
        listener("      - route: { cluster: demo, retries: { attempts: 2, on: [unavailable] } }\n"),
        busy.address(),
        live.address()
    );
    let proxy = Proxy::start("outlier", &config);
    let port = proxy.addr("dubbo-in").port();
    let s = dubbo_client(port, &["--count", "30"]);
    assert_eq!(s.ok, 30, "{} / logs:\n{}", s.raw, proxy.logs());
    assert!(
        proxy.logs().contains("outlier detection ejected"),
        "{}",
        proxy.logs()
    );
    // Once ejected, the busy endpoint gets no more traffic.
    let seen_before = busy.calls.all().len();
    let s = dubbo_client(port, &["--count", "30"]);
    assert_eq!(s.ok, 30, "{}", s.raw);
    assert_eq!(
        busy.calls.all().len(),
        seen_before,
        "ejected endpoint still called"
    );
}

#[test]
fn heartbeat_health_checks_take_dead_providers_out() {
    let live = DubboProvider::start("live");
    let mut doomed = DubboProvider::start("doomed");
    let config = format!(
        r#"{}
clusters:
  - name: demo
    protocol: dubbo
    health_check: {{ interval: 100ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1 }}
    endpoints: [ {{ address: "{}" }}, {{ address: "{}" }} ]
"#,
        listener("      - route: { cluster: demo }\n"),
        live.address(),
        doomed.address()
    );
    let proxy = Proxy::start("health", &config);
    let port = proxy.addr("dubbo-in").port();
    let s = dubbo_client(port, &["--count", "20"]);
    assert_eq!(s.ok, 20, "both healthy: {}", s.raw);
    assert!(
        s.results.contains_key("Hello bob, from doomed"),
        "{}",
        s.raw
    );
    doomed.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy.logs().contains("endpoint is unhealthy") {
        assert!(
            Instant::now() < deadline,
            "no health verdict:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = dubbo_client(port, &["--count", "20"]);
    assert_eq!(s.ok, 20, "only the live provider is used: {}", s.raw);
}

#[test]
fn circuit_breaker_refuses_requests_over_the_limit() {
    let slow = DubboProvider::start("slow");
    let shadow = DubboProvider::start("shadow");
    let config = format!(
        r#"{}
clusters:
  - name: demo
    protocol: dubbo
    circuit_breaker: {{ max_requests: 2 }}
    endpoints: [ {{ address: "{}" }} ]
  - name: shadow
    protocol: dubbo
    endpoints: [ {{ address: "{}" }} ]
"#,
        listener("      - route: { cluster: demo, mirror: { cluster: shadow, percent: 100 } }\n"),
        slow.address(),
        shadow.address()
    );
    let proxy = Proxy::start("breaker", &config);
    let s = dubbo_client(
        proxy.addr("dubbo-in").port(),
        &[
            "--method",
            "sleep",
            "--arg",
            "300",
            "--count",
            "8",
            "--concurrency",
            "8",
        ],
    );
    assert!(s.ok >= 2 && s.errors >= 4, "{}", s.raw);
    let msg = s.error_messages.keys().next().unwrap();
    assert!(msg.contains("too many requests in flight"), "{msg}");
    // Only admitted requests are mirrored: the breaker runs before the
    // mirror, so a refused request never reaches the shadow cluster.
    let mirrored = || {
        shadow
            .calls
            .all()
            .iter()
            .filter(|l| l.contains("\"method\":\"sleep\""))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while mirrored() < s.ok as usize {
        assert!(
            Instant::now() < deadline,
            "mirrored {} of {}",
            mirrored(),
            s.ok
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(mirrored(), s.ok as usize, "{}", s.raw);
}

#[test]
fn ring_hash_keeps_a_user_on_one_provider() {
    let providers: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|t| DubboProvider::start(t))
        .collect();
    let endpoints: Vec<String> = providers
        .iter()
        .map(|p| format!("{{ address: \"{}\" }}", p.address()))
        .collect();
    let config = format!(
        r#"{}
clusters:
  - name: demo
    protocol: dubbo
    lb: ring_hash
    hash: [ {{ key: user-id }} ]
    endpoints: [ {} ]
"#,
        listener("      - route: { cluster: demo }\n"),
        endpoints.join(", ")
    );
    let proxy = Proxy::start("ring-hash", &config);
    let port = proxy.addr("dubbo-in").port();
    let mut owners = HashSet::new();
    for user in 0..12 {
        let attach = format!("user-id=user-{user}");
        let s = dubbo_client(port, &["--count", "10", "--attach", &attach]);
        assert_eq!(s.ok, 10, "{}", s.raw);
        assert_eq!(
            s.results.len(),
            1,
            "user-{user} moved between providers: {}",
            s.raw
        );
        owners.insert(s.results.keys().next().unwrap().clone());
    }
    assert!(
        owners.len() >= 2,
        "12 users all on one provider: {owners:?}"
    );
}

#[test]
fn priority_failover_and_mirroring() {
    let primary = DubboProvider::start("primary");
    let backup = DubboProvider::start("backup");
    let shadow = DubboProvider::start("shadow");
    let config = format!(
        r#"{}
clusters:
  - name: demo
    protocol: dubbo
    health_check: {{ interval: 100ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1 }}
    endpoints:
      - {{ address: "{}", priority: 0 }}
      - {{ address: "{}", priority: 0 }}
      - {{ address: "{}", priority: 1 }}
  - name: shadow
    protocol: dubbo
    endpoints: [ {{ address: "{}" }} ]
"#,
        listener("      - route: { cluster: demo, mirror: { cluster: shadow, percent: 100 } }\n"),
        primary.address(),
        dead_address(),
        backup.address(),
        shadow.address()
    );
    let proxy = Proxy::start("failover", &config);
    let port = proxy.addr("dubbo-in").port();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy.logs().contains("endpoint is unhealthy") {
        assert!(
            Instant::now() < deadline,
            "dead endpoint not detected:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // 1 of 2 healthy × 1.4 = 70% stays on priority 0, 30% spills to priority 1.
    let s = dubbo_client(port, &["--count", "400", "--concurrency", "8"]);
    assert_eq!(s.ok, 400, "{} / logs:\n{}", s.raw, proxy.logs());
    let to_backup = *s.results.get("Hello bob, from backup").unwrap_or(&0);
    assert!(
        (70..=170).contains(&to_backup),
        "spill-over {to_backup} of 400: {}",
        s.raw
    );
    assert!(
        !s.results.contains_key("Hello bob, from shadow"),
        "mirror answers are dropped"
    );
    // Every request was copied to the shadow cluster.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shadow
        .calls
        .all()
        .iter()
        .filter(|l| l.contains("sayHello"))
        .count()
        < 400
    {
        assert!(
            Instant::now() < deadline,
            "shadow saw {} calls",
            shadow.calls.all().len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
