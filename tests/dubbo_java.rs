//! Interoperability with Apache Dubbo's Java reference implementation
//! (3.3.6, tests/peers/dubbo-java) through the release binary: Dubbo Java
//! consumers call Dubbo Java providers through the proxy, with static
//! endpoints and with providers that Dubbo's own ZooKeeper registry client
//! (Curator 5) registers; and a Dubbo Java consumer finds the proxy through
//! the node the proxy writes for itself (the sidecar pattern).

mod common;
#[path = "common/dubbo_java.rs"]
mod dubbo_java;
#[allow(dead_code)]
#[path = "common/zookeeper.rs"]
mod zookeeper;

use std::time::{Duration, Instant};

use common::{ClientSummary, Proxy, example_config};
use dubbo_java::{JavaProvider, java_consumers};
use zookeeper::ZooKeeper;

const LISTENER: &str = "dubbo-in";
const PROVIDERS: &str = "/dubbo/org.apache.dubbo.samples.DemoService/providers";

/// Consumer arguments: direct to the proxy's Dubbo listener, `calls` calls.
fn via(proxy: &Proxy, calls: usize, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--url".to_string(),
        format!("dubbo://{}", proxy.addr(LISTENER)),
        "--calls".to_string(),
        calls.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Every call answered, only by the providers tagged in `tags`.
fn assert_answered_by(s: &ClientSummary, calls: u64, tags: &[&str], proxy: &Proxy) {
    assert_eq!(
        (s.ok, s.errors),
        (calls, 0),
        "{} / proxy logs:\n{}",
        s.raw,
        proxy.logs()
    );
    for reply in s.results.keys() {
        assert!(
            tags.iter()
                .any(|t| reply == &format!("Hello bob, from {t}")),
            "{reply} is not from {tags:?}: {}",
            s.raw
        );
    }
}

/// Waits until `/clusters` lists exactly `want` for cluster `name`; the time it took.
fn wait_cluster(proxy: &Proxy, name: &str, want: &[String], within: Duration) -> Duration {
    let mut want = want.to_vec();
    want.sort();
    let start = Instant::now();
    loop {
        let (addrs, status) = proxy.cluster(name);
        if addrs == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{name} has {addrs:?}, not {want:?}, after {within:?}; discovery {status}; logs:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn java_consumer_reaches_java_providers_through_the_proxy_routed_by_attachment() {
    let started = Instant::now();
    let providers = JavaProvider::start_all(&[
        ("v1", None, None),
        ("v2", None, None),
        ("batch", None, None),
    ]);
    let (v1, v2, batch) = (&providers[0], &providers[1], &providers[2]);
    let config = example_config(
        "examples/dubbo_batchjob/config.yaml",
        &[
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:20881", v1.address()),
            ("127.0.0.1:20882", v2.address()),
            ("127.0.0.1:20883", batch.address()),
        ],
    );
    let proxy = Proxy::start("dubbo-java-static", &config);

    let runs = java_consumers(&[
        via(&proxy, 20, &[]),
        via(&proxy, 10, &["--attachment", "batchJob=true"]),
        // The proxy's metadata_mutation filter adds x-forwarded-by: Dubbo
        // Java's RpcContext sees it as an attachment.
        via(
            &proxy,
            1,
            &["--method", "getAttachment", "--arg", "x-forwarded-by"],
        ),
        via(
            &proxy,
            5,
            &[
                "--serialization",
                "default",
                "--attachment",
                "batchJob=true",
            ],
        ),
    ]);
    // Other calls go to the user group (v1 and v2, 90/10).
    assert_answered_by(&runs[0], 20, &["v1", "v2"], &proxy);
    // batchJob=true, a Dubbo Java RpcContext attachment, goes to the batch provider only.
    assert_answered_by(&runs[1], 10, &["batch"], &proxy);
    let call = batch
        .wait_call("sayHello", Duration::from_secs(5))
        .expect("the batch provider logged the call");
    assert_eq!(call["attachments"]["batchJob"], "true", "{call}");
    assert_eq!(call["attachments"]["x-forwarded-by"], "metaproxy", "{call}");
    assert_eq!(
        runs[2].results.get("metaproxy"),
        Some(&1),
        "{}",
        runs[2].raw
    );
    // A consumer left to Dubbo's serialization defaults (no registry URL
    // to prefer one) sends hessian2 too: its attachment routes it.
    assert_answered_by(&runs[3], 5, &["batch"], &proxy);
    eprintln!("static endpoints: {:?}", started.elapsed());
}

#[test]
fn java_providers_registered_in_zookeeper_are_discovered_and_followed() {
    let started = Instant::now();
    let zk = ZooKeeper::start("java-follow");
    let zk_addr = zk.address();
    let mut providers = JavaProvider::start_all(&[
        ("user1", Some(&zk_addr), Some("user")),
        ("user2", Some(&zk_addr), Some("user")),
        ("batch", Some(&zk_addr), Some("batchjob")),
    ]);
    for p in &providers {
        // Dubbo registered the loopback address (see Peer.java) and the group.
        assert!(
            p.url.starts_with(&format!("dubbo://{}/", p.address())),
            "{}",
            p.url
        );
    }
    let config = example_config(
        "examples/discovery/zookeeper.yaml",
        &[
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:2181", zk.address()),
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ],
    );
    let proxy = Proxy::start("dubbo-java-zk", &config);
    let all: Vec<String> = providers.iter().map(JavaProvider::address).collect();
    wait_cluster(&proxy, "demo", &all, Duration::from_secs(10));
    let (_, status) = proxy.cluster("demo");
    assert_eq!(status["source"], "zookeeper", "{status}");

    // A Dubbo Java provider only answers calls for its own group (the
    // `group` attachment is part of its exporter's key), so consumers name
    // the group they want; the batchJob attachment picks the subset.
    let runs = java_consumers(&[
        via(&proxy, 20, &["--group", "user"]),
        via(
            &proxy,
            10,
            &["--group", "batchjob", "--attachment", "batchJob=true"],
        ),
        // Routed to the batchjob group while naming group user: the
        // provider's own refusal comes back through the proxy.
        via(
            &proxy,
            2,
            &["--group", "user", "--attachment", "batchJob=true"],
        ),
    ]);
    assert_answered_by(&runs[0], 20, &["user1", "user2"], &proxy);
    assert_eq!(
        runs[0].results.len(),
        2,
        "both user providers: {}",
        runs[0].raw
    );
    assert_answered_by(&runs[1], 10, &["batch"], &proxy);
    assert_eq!((runs[2].ok, runs[2].errors), (0, 2), "{}", runs[2].raw);
    assert!(
        runs[2]
            .error_messages
            .keys()
            .all(|m| m.contains(
                "Not found exported service: user/org.apache.dubbo.samples.DemoService:1.0.0"
            ) && m.contains("[batchjob/org.apache.dubbo.samples.DemoService:1.0.0")),
        "{}",
        runs[2].raw
    );

    // user1's JVM is killed: its ephemeral node goes when its session
    // (4 s) expires, and so does its endpoint. The batch provider stops
    // gracefully: Dubbo deletes its node at once.
    let took = Instant::now();
    providers[0].kill();
    assert!(
        providers[2].stop(Duration::from_secs(20)),
        "batch did not stop"
    );
    let left = vec![providers[1].address()];
    wait_cluster(&proxy, "demo", &left, Duration::from_secs(20));
    eprintln!("kill and stop to endpoints gone: {:?}", took.elapsed());
    let runs = java_consumers(&[via(&proxy, 10, &["--group", "user"])]);
    assert_answered_by(&runs[0], 10, &["user2"], &proxy);
    eprintln!("zookeeper discovery: {:?}", started.elapsed());
}

#[test]
fn a_java_consumer_finds_the_proxy_through_the_node_it_registers() {
    let started = Instant::now();
    let zk = ZooKeeper::start("java-sidecar");
    // The provider behind the sidecar does not register itself.
    let local = JavaProvider::start("local", None, None);
    let config = example_config(
        "examples/discovery/zookeeper_sidecar.yaml",
        &[
            ("127.0.0.1:20880", "127.0.0.1:0".to_string()),
            ("127.0.0.1:20881", local.address()),
            ("127.0.0.1:2181", zk.address()),
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ],
    );
    let path = common::write_config("dubbo-java-sidecar", &config);
    let proxy = Proxy::start_file(&path, &[]);
    let mine = format!(
        "dubbo%3A%2F%2F{}%2Forg.apache.dubbo.samples.DemoService%3F",
        proxy.addr(LISTENER).to_string().replace(':', "%3A")
    );
    let node = wait_node(&zk, &proxy, &mine, |_| true);
    eprintln!("the proxy's node: {node}");

    // Dubbo Java's registry client reads the proxy's node (interface-level
    // discovery) and calls through the proxy, the only provider it can find.
    let zk_addr = zk.address();
    let runs = java_consumers(&[
        vec![
            "--zk".to_string(),
            zk_addr.clone(),
            "--calls".to_string(),
            "10".to_string(),
        ],
        // A consumer left to Dubbo's serialization defaults also gets through.
        vec![
            "--zk".to_string(),
            zk_addr,
            "--calls".to_string(),
            "5".to_string(),
            "--serialization".to_string(),
            "default".to_string(),
        ],
    ]);
    assert_answered_by(&runs[0], 10, &["local"], &proxy);
    assert_answered_by(&runs[1], 5, &["local"], &proxy);
    assert!(
        local
            .wait_call("sayHello", Duration::from_secs(2))
            .is_some()
    );

    // The least the node needs for Dubbo Java: reloaded with only the
    // `version` its consumers reference (no `methods`, no `application`),
    // the proxy replaces its node and the consumer still gets through.
    std::fs::write(
        &path,
        config.replace(
            r#"parameters: { application: demo-sidecar, version: 1.0.0, methods: "sayHello,getAttachment" }"#,
            "parameters: { version: 1.0.0 }",
        ),
    )
    .unwrap();
    let (status, body) = proxy.admin("POST", "/reload");
    assert_eq!(status, 200, "{body}");
    let node = wait_node(&zk, &proxy, &mine, |url| !url.contains("methods="));
    eprintln!("the proxy's node, reloaded: {node}");
    let runs = java_consumers(&[vec![
        "--zk".to_string(),
        zk.address(),
        "--calls".to_string(),
        "5".to_string(),
    ]]);
    assert_answered_by(&runs[0], 5, &["local"], &proxy);
    eprintln!("sidecar: {:?}", started.elapsed());
}

/// Waits (10 s at most) for a provider node under [`PROVIDERS`] that starts
/// with `prefix` (encoded) and whose decoded URL satisfies `pred`; that URL.
fn wait_node(zk: &ZooKeeper, proxy: &Proxy, prefix: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let nodes = zk.ls(PROVIDERS);
        let found = nodes
            .iter()
            .filter(|n| n.starts_with(prefix))
            .find_map(|n| {
                let url = percent_encoding::percent_decode_str(n)
                    .decode_utf8_lossy()
                    .into_owned();
                pred(&url).then_some(url)
            });
        if let Some(url) = found {
            return url;
        }
        assert!(
            Instant::now() < deadline,
            "no such node of the proxy: {nodes:?}; logs:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
