//! Discovery from a Dubbo registry in ZooKeeper, through the release
//! binary: a real ZooKeeper server (Apache's, from Debian), providers that
//! register themselves with their own registry client (sofa-rpc-node's
//! ZooKeeper registry, ephemeral nodes), and kazoo to inspect and edit nodes.

mod common;
#[path = "common/zookeeper.rs"]
mod zookeeper;

use std::time::{Duration, Instant};

use common::{DubboProvider, Proxy, dubbo_client, example_config};
use zookeeper::ZooKeeper;

const LISTENER: &str = "dubbo-in";
const PROVIDERS: &str = "/dubbo/org.apache.dubbo.samples.DemoService/providers";

fn start_proxy(test: &str, zk: &ZooKeeper) -> Proxy {
    let config = example_config(
        "examples/discovery/zookeeper.yaml",
        &[
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:2181", zk.address()),
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ],
    );
    Proxy::start(test, &config)
}

/// The addresses `/clusters` lists for cluster `demo`, and its discovery status.
fn demo(proxy: &Proxy) -> (Vec<String>, serde_json::Value) {
    proxy.cluster("demo")
}

/// Waits until `/clusters` lists `want` endpoints for `demo`; the time it took.
fn wait_endpoints(proxy: &Proxy, want: usize, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (addrs, status) = demo(proxy);
        if addrs.len() == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "demo has {addrs:?}, not {want} endpoints, after {within:?}; discovery {status}; logs:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn hello(proxy: &Proxy, count: usize, attach: Option<&str>) -> common::ClientSummary {
    let port = proxy.addr(LISTENER).port();
    let n = count.to_string();
    let mut args = vec!["--count", n.as_str(), "--concurrency", "4"];
    if let Some(a) = attach {
        args.extend(["--attach", a]);
    }
    dubbo_client(port, &args)
}

#[test]
fn registered_providers_are_routed_by_group_and_followed_as_they_come_and_go() {
    let zk = ZooKeeper::start("follow");
    let mut user1 = DubboProvider::start_registered("user1", &zk.address(), "user");
    let _batch = DubboProvider::start_registered("batch", &zk.address(), "batchjob");
    assert_eq!(zk.ls(PROVIDERS).len(), 2, "both providers registered");
    let proxy = start_proxy("zk-follow", &zk);
    wait_endpoints(&proxy, 2, Duration::from_secs(10));
    let (_, status) = demo(&proxy);
    assert_eq!(status["source"], "zookeeper", "{status}");
    assert_eq!(status["state"], "ok", "{status}");

    // The batchJob attachment reaches the batchjob group through the
    // subset on the discovered `group` label; other calls the user group.
    let s = hello(&proxy, 20, Some("batchJob=true"));
    assert_eq!(
        s.results.get("Hello bob, from batch"),
        Some(&20),
        "{}",
        s.raw
    );
    let s = hello(&proxy, 20, None);
    assert_eq!(
        s.results.get("Hello bob, from user1"),
        Some(&20),
        "{}",
        s.raw
    );

    // A third provider registers: it is routed to within a second (the
    // budget leaves room for a loaded CI machine; the time is printed).
    let user2 = DubboProvider::start_registered("user2", &zk.address(), "user");
    let took = wait_endpoints(&proxy, 3, Duration::from_secs(2));
    eprintln!("registration to endpoint: {took:?}");
    let s = hello(&proxy, 40, None);
    assert_eq!(s.ok, 40, "{}", s.raw);
    assert!(s.results.contains_key("Hello bob, from user2"), "{}", s.raw);

    // A provider is killed: calls keep succeeding (a try on the dead one is
    // a connect failure, retried on the other) and, once its session
    // expires, its node and then its endpoint go.
    user1.stop();
    let s = hello(&proxy, 40, None);
    assert_eq!(
        s.ok,
        40,
        "no call fails: {} / logs:\n{}",
        s.raw,
        proxy.logs()
    );
    assert_eq!(
        s.results.get("Hello bob, from user2"),
        Some(&40),
        "{}",
        s.raw
    );
    wait_endpoints(&proxy, 2, Duration::from_secs(15));
    let (addrs, _) = demo(&proxy);
    assert!(addrs.contains(&user2.address()), "{addrs:?}");
    assert!(!addrs.contains(&user1.address()), "{addrs:?}");
}

#[test]
fn a_zookeeper_outage_keeps_the_last_known_providers_and_the_watch_resumes() {
    let mut zk = ZooKeeper::start("outage");
    let _p = DubboProvider::start_registered("user1", &zk.address(), "user");
    let proxy = start_proxy("zk-outage", &zk);
    wait_endpoints(&proxy, 1, Duration::from_secs(10));

    zk.stop();
    // The outage is seen and reported...
    let start = Instant::now();
    loop {
        let (_, status) = demo(&proxy);
        if status["state"] == "failing" {
            assert!(status["last_error"].is_string(), "{status}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{status}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // ...and calls keep flowing to the last known provider.
    let s = hello(&proxy, 20, None);
    assert_eq!(
        s.results.get("Hello bob, from user1"),
        Some(&20),
        "{}",
        s.raw
    );
    assert_eq!(demo(&proxy).0.len(), 1);
    assert!(proxy.metric("metaproxy_discovery_updates_total{cluster=\"demo\",source=\"zookeeper\",result=\"error\"}") >= 1.0);

    // ZooKeeper comes back: the watch resumes and a new provider is seen.
    zk.restart();
    let _p2 = DubboProvider::start_registered("user2", &zk.address(), "user");
    wait_endpoints(&proxy, 2, Duration::from_secs(15));
    let (_, status) = demo(&proxy);
    assert_eq!(status["state"], "ok", "{status}");
    let s = hello(&proxy, 40, None);
    assert_eq!(s.ok, 40, "{}", s.raw);
    assert!(s.results.contains_key("Hello bob, from user2"), "{}", s.raw);
}

#[test]
fn hostile_bulk_and_flapping_provider_nodes_never_stop_the_proxy() {
    let zk = ZooKeeper::start("hostile");
    let p = DubboProvider::start_registered("user1", &zk.address(), "user");
    // Malformed and URL-decoding-hostile nodes beside the real one.
    let bad = [
        "not-a-url",
        "dubbo%3A%2F%2F127.0.0.1%2Fmissing-port",
        "dubbo%3A%2F%2Fhost.example%3A20880%2Fx",
        "%FF%FE%FD",
        "dubbo%3A%2F%2F127.0.0.1%3A0%2Fzero",
        "dubbo%3A%2F%2F127.0.0.1%3A1%2Fx%3Fcategory%3Dconsumers",
        "dubbo%3A%2F%2F127.0.0.1%3A2%2Fx%3Fenabled%3Dfalse",
    ];
    let paths: Vec<String> = bad.iter().map(|b| format!("{PROVIDERS}/{b}")).collect();
    let mut args = vec!["create"];
    args.extend(paths.iter().map(String::as_str));
    zk.kazoo(&args);
    let proxy = start_proxy("zk-hostile", &zk);
    wait_endpoints(&proxy, 1, Duration::from_secs(10));
    let (addrs, _) = demo(&proxy);
    assert_eq!(addrs, vec![p.address()], "only the real provider counts");

    // A registry flapping every 100 ms while calls flow: no call fails.
    let flapping = format!(
        "{PROVIDERS}/dubbo%3A%2F%2F127.0.0.1%3A9%2Forg.apache.dubbo.samples.DemoService%3Fgroup%3Dother"
    );
    let updates = |proxy: &Proxy| demo(proxy).1["updates"].as_u64().unwrap();
    let before = updates(&proxy);
    let flap = {
        let zk_addr = zk.address();
        std::thread::spawn(move || {
            let z = zookeeper_hosts(&zk_addr);
            z.kazoo(&["flap", &flapping, "15", "100"]);
        })
    };
    let s = hello(&proxy, 200, None);
    flap.join().unwrap();
    assert!(
        updates(&proxy) >= before + 2,
        "the flapping provider changed the endpoint set"
    );
    assert_eq!(s.ok, 200, "{} / logs:\n{}", s.raw, proxy.logs());

    // 9 999 more provider nodes, 10 000 in all (the default max_endpoints):
    // all applied, and the proxy keeps serving the real provider.
    let out = zk.kazoo(&["bulk", PROVIDERS, "9999"]);
    assert!(out.contains("9999"), "{out}");
    // (The gauge, not /clusters: 10 000 endpoints make a large page.)
    let gauge = "metaproxy_discovered_endpoints{cluster=\"demo\"}";
    let start = Instant::now();
    while proxy.metric(gauge) != 10_000.0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} endpoints after 30 s",
            proxy.metric(gauge)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("9 999 nodes created to applied: {:?}", start.elapsed());
    let s = hello(&proxy, 20, None);
    assert_eq!(
        s.results.get("Hello bob, from user1"),
        Some(&20),
        "{}",
        s.raw
    );
}

/// A handle on an existing server for another thread's kazoo calls.
fn zookeeper_hosts(address: &str) -> zookeeper::Hosts {
    zookeeper::Hosts(address.to_string())
}
