//! Discovery from a Dubbo registry in ZooKeeper, through the release
//! binary: a real ZooKeeper server (Apache's, from Debian), providers that
//! register themselves with their own registry client (sofa-rpc-node's
//! ZooKeeper registry, ephemeral nodes), and kazoo to inspect and edit nodes.

mod common;
#[path = "common/zookeeper.rs"]
mod zookeeper;

use std::time::{Duration, Instant};

use common::{DubboProvider, Proxy, dubbo_client, dubbo_client_via_registry, example_config};
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
/// The provider URLs under [`PROVIDERS`], decoded.
fn provider_urls(zk: &ZooKeeper) -> Vec<String> {
    zk.ls(PROVIDERS)
        .iter()
        .map(|n| {
            percent_encoding::percent_decode_str(n)
                .decode_utf8()
                .unwrap()
                .into_owned()
        })
        .collect()
}

/// Waits until `urls` holds (true) or `within` passes; the time it took.
fn wait_providers(
    zk: &ZooKeeper,
    within: Duration,
    urls: impl Fn(&[String]) -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if urls(&provider_urls(zk)) {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_proxy_registers_its_listener_consumers_find_it_and_it_deregisters_on_shutdown() {
    let zk = ZooKeeper::start("register");
    // The provider behind the sidecar does not register itself.
    let local = DubboProvider::start("local");
    let config = example_config(
        "examples/discovery/zookeeper_sidecar.yaml",
        &[
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:20881", local.address()),
            ("127.0.0.1:2181", zk.address()),
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ],
    );
    let path = common::write_config("zk-sidecar", &config);
    let mut sidecar = Proxy::start_file(&path, &[]);
    let listener = sidecar.addr(LISTENER);
    let mine = format!("dubbo://{listener}/org.apache.dubbo.samples.DemoService?");
    let took = wait_providers(&zk, Duration::from_secs(5), |u| {
        u.len() == 1 && u[0].starts_with(&mine)
    })
    .unwrap_or_else(|| {
        panic!(
            "registration: {:?}; logs:\n{}",
            provider_urls(&zk),
            sidecar.logs()
        )
    });
    eprintln!("start to registered: {took:?}");
    let url = &provider_urls(&zk)[0];
    for param in [
        "application=demo-sidecar",
        "version=1.0.0",
        "side=provider",
        "category=providers",
        "methods=sayHello,getAttachment",
    ] {
        assert!(url.contains(param), "{param} in {url}");
    }

    // A consumer that reads the registry (sofa-rpc-node's ZooKeeper client)
    // finds the proxy and reaches the provider through it.
    let s = dubbo_client_via_registry(&zk.address(), &["--count", "10"]);
    assert_eq!(
        s.results.get("Hello bob, from local"),
        Some(&10),
        "{}",
        s.raw
    );
    assert!(
        local
            .wait_call("sayHello", Duration::from_secs(2))
            .is_some()
    );

    // A reload that leaves the listener and its `register:` alone leaves the
    // node alone; one that changes the parameters replaces it.
    let before = zk.ls(PROVIDERS);
    std::fs::write(&path, config.replace("timeout: 3s", "timeout: 2s")).unwrap();
    let (status, body) = sidecar.admin("POST", "/reload");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        zk.ls(PROVIDERS),
        before,
        "an unrelated reload keeps the node"
    );
    std::fs::write(
        &path,
        config.replace("application: demo-sidecar", "application: sidecar-2"),
    )
    .unwrap();
    let (status, body) = sidecar.admin("POST", "/reload");
    assert_eq!(status, 200, "{body}");
    wait_providers(&zk, Duration::from_secs(5), |u| {
        u.len() == 1 && u[0].starts_with(&mine) && u[0].contains("application=sidecar-2")
    })
    .unwrap_or_else(|| panic!("re-registered: {:?}", provider_urls(&zk)));

    // A gateway that discovers DemoService's providers in the same registry
    // and registers its own listener there too: it routes to the sidecar,
    // never to itself.
    let gateway_config = format!(
        r#"
listeners:
  - name: gateway-in
    address: 127.0.0.1:0
    protocol: dubbo
    register:
      zookeeper:
        servers: [{zk}]
        interfaces: [org.apache.dubbo.samples.DemoService]
    routes:
      - match: [{{ key: interface, exact: org.apache.dubbo.samples.DemoService }}]
        route: {{ cluster: demo }}
clusters:
  - name: demo
    protocol: dubbo
    discovery:
      zookeeper: {{ servers: [{zk}], interface: org.apache.dubbo.samples.DemoService }}
admin: {{ address: 127.0.0.1:0 }}
"#,
        zk = zk.address()
    );
    let gateway = Proxy::start("zk-gateway", &gateway_config);
    wait_providers(&zk, Duration::from_secs(5), |u| u.len() == 2)
        .unwrap_or_else(|| panic!("both registered: {:?}", provider_urls(&zk)));
    wait_endpoints(&gateway, 1, Duration::from_secs(5));
    let (addrs, _) = gateway.cluster("demo");
    assert_eq!(addrs, vec![listener.to_string()], "only the sidecar");
    let s = dubbo_client(gateway.addr("gateway-in").port(), &["--count", "5"]);
    assert_eq!(
        s.results.get("Hello bob, from local"),
        Some(&5),
        "{}",
        s.raw
    );

    // SIGTERM: the node goes as the proxy stops, well before its session
    // would expire.
    sidecar.signal("TERM");
    let exited = Instant::now();
    while sidecar.is_running() {
        assert!(
            exited.elapsed() < Duration::from_secs(10),
            "sidecar did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let gone = wait_providers(&zk, Duration::from_secs(1), |u| {
        u.iter().all(|p| !p.starts_with(&mine))
    });
    assert!(
        gone.is_some(),
        "still registered after shutdown: {:?}; logs:\n{}",
        provider_urls(&zk),
        sidecar.logs()
    );
    assert!(
        sidecar.logs().contains("deregistered from ZooKeeper"),
        "{}",
        sidecar.logs()
    );
}

fn zookeeper_hosts(address: &str) -> zookeeper::Hosts {
    zookeeper::Hosts(address.to_string())
}
