//! Discovery from DNS (a real dnsmasq server on loopback), a discovery URL
//! (Python's http.server, with ETag) and a watched file, through the
//! release binary: endpoints follow the source without a reload, and a
//! failing source keeps the last known endpoints.

mod common;
#[path = "common/http.rs"]
mod http_peers;
#[path = "common/tls.rs"]
mod tls;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ChildGuard, Lines, Proxy, example_config, http_call, scratch_dir};
use http_peers::{Backend, Quirks};

fn cluster(proxy: &Proxy, name: &str) -> (Vec<String>, serde_json::Value) {
    proxy.cluster(name)
}

/// Waits until cluster `name` has exactly the endpoints `want`.
fn wait_endpoints(proxy: &Proxy, name: &str, want: &[&str], within: Duration) {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    let start = Instant::now();
    loop {
        let (addrs, status) = cluster(proxy, name);
        if addrs == want {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{name} has {addrs:?}, not {want:?}, after {within:?}; discovery {status}; logs:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// dnsmasq answering from a hosts file the test rewrites (SIGHUP re-reads it).
struct Dnsmasq {
    child: ChildGuard,
    hosts: std::path::PathBuf,
    port: u16,
}

impl Dnsmasq {
    fn start(records: &str) -> Dnsmasq {
        let dir = scratch_dir("dnsmasq");
        let hosts = dir.join("hosts");
        std::fs::write(&hosts, records).unwrap();
        // dnsmasq takes no port 0: take one the system just handed out.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("/usr/sbin/dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--local-ttl=0",
                "--log-facility=-",
                "--log-queries",
                "--user=root",
                "--pid-file",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--addn-hosts={}", hosts.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dnsmasq is needed: apt-get install dnsmasq-base (.ci/run does)");
        let log = Lines::spawn(child.stderr.take().unwrap());
        log.wait_for(Duration::from_secs(10), |l| {
            l.contains("read ") || l.contains("started")
        })
        .expect("dnsmasq did not start");
        Dnsmasq {
            child: ChildGuard(child),
            hosts,
            port,
        }
    }

    fn set(&self, records: &str) {
        std::fs::write(&self.hosts, records).unwrap();
        let status = Command::new("kill")
            .args(["-HUP", &self.child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[test]
fn dns_records_added_and_removed_are_followed_within_refresh() {
    let a = Backend::start_at("a", Quirks::default(), "127.0.0.2", 0);
    let port = a.addr.port();
    let b = Backend::start_at("b", Quirks::default(), "127.0.0.3", port);
    let dns = Dnsmasq::start("127.0.0.2 web.internal\n");
    let config = example_config(
        "examples/discovery/dns.yaml",
        &[
            ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
            ("port: 8080", format!("port: {port}")),
            ("127.0.0.1:5353", format!("127.0.0.1:{}", dns.port)),
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
        ],
    );
    let proxy = Proxy::start("dns", &config);
    let (ea, eb) = (a.address(), b.address());
    wait_endpoints(&proxy, "web", &[&ea], Duration::from_secs(5));
    let listener = proxy.addr("web-in");
    assert_eq!(http_call(listener, "GET", "/").0, 200);
    assert_eq!(a.count(), 1);

    // A record added: both endpoints within the 1 s refresh.
    dns.set("127.0.0.2 web.internal\n127.0.0.3 web.internal\n");
    wait_endpoints(&proxy, "web", &[&ea, &eb], Duration::from_secs(3));
    for _ in 0..10 {
        assert_eq!(http_call(listener, "GET", "/").0, 200);
    }
    assert!(b.count() >= 1, "the new endpoint takes traffic");

    // A record removed: its endpoint goes, traffic goes to the other.
    dns.set("127.0.0.3 web.internal\n");
    wait_endpoints(&proxy, "web", &[&eb], Duration::from_secs(3));
    let before = a.count();
    for _ in 0..10 {
        assert_eq!(http_call(listener, "GET", "/").0, 200);
    }
    assert_eq!(a.count(), before, "nothing goes to the removed endpoint");
    let (_, status) = cluster(&proxy, "web");
    assert_eq!(status["source"], "dns");
    assert_eq!(status["state"], "ok", "{status}");

    // The DNS server dies: the last known endpoints keep serving.
    drop(dns);
    let start = Instant::now();
    while cluster(&proxy, "web").1["state"] != "failing" {
        assert!(start.elapsed() < Duration::from_secs(15), "outage not seen");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cluster(&proxy, "web").0, vec![eb.clone()]);
    assert_eq!(http_call(listener, "GET", "/").0, 200);
}

/// The discovery URL: Python's http.server serving `file`.
fn endpoints_server(file: &std::path::Path) -> (ChildGuard, Lines, u16) {
    endpoints_server_with(file, &[])
}

/// [`endpoints_server`] with more arguments (`--tls CERT KEY ...`).
fn endpoints_server_with(file: &std::path::Path, args: &[&str]) -> (ChildGuard, Lines, u16) {
    let mut child = Command::new("python3")
        .arg(common::repo_root().join("tests/peers/discovery/endpoints_server.py"))
        .arg(file)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let lines = Lines::spawn(child.stdout.take().unwrap());
    let first = lines.next(Duration::from_secs(10)).expect("server started");
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    (ChildGuard(child), lines, v["port"].as_u64().unwrap() as u16)
}

fn list(addrs: &[&str]) -> String {
    let entries: Vec<String> = addrs
        .iter()
        .map(|a| format!(r#"{{"address":"{a}","labels":{{"version":"v1"}}}}"#))
        .collect();
    format!(r#"{{"endpoints":[{}]}}"#, entries.join(","))
}

#[test]
fn url_and_file_sources_follow_their_lists_and_survive_failures() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let (ea, eb) = (a.address(), b.address());
    let dir = scratch_dir("url-file");
    let served = dir.join("served.json");
    std::fs::write(&served, list(&[&ea])).unwrap();
    let (_server, requests, url_port) = endpoints_server(&served);
    let config = example_config(
        "examples/discovery/url_and_file.yaml",
        &[
            ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
            ("127.0.0.1:7070", format!("127.0.0.1:{url_port}")),
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
            (
                "path: endpoints.json",
                format!("path: {}", dir.join("file.json").display()),
            ),
        ],
    );
    std::fs::write(dir.join("file.json"), list(&[&eb])).unwrap();
    let proxy = Proxy::start("url-file", &config);
    let listener = proxy.addr("web-in");

    // The URL: first list, then 304s while unchanged, then a change.
    wait_endpoints(&proxy, "plugin-fed", &[&ea], Duration::from_secs(5));
    requests
        .wait_for(Duration::from_secs(5), |l| l.contains("304"))
        .expect("an unchanged list is asked with If-None-Match and answered 304");
    assert_eq!(http_call(listener, "GET", "/").0, 200);
    std::fs::write(&served, list(&[&ea, &eb])).unwrap();
    wait_endpoints(&proxy, "plugin-fed", &[&ea, &eb], Duration::from_secs(3));
    // The URL fails: the last list stays, the state says so.
    std::fs::write(&served, "fail").unwrap();
    let start = Instant::now();
    while cluster(&proxy, "plugin-fed").1["state"] != "failing" {
        assert!(start.elapsed() < Duration::from_secs(5), "failure not seen");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(cluster(&proxy, "plugin-fed").0.len(), 2);
    assert!(
        cluster(&proxy, "plugin-fed").1["last_error"]
            .as_str()
            .unwrap()
            .contains("503")
    );

    // The file: read at start, followed when rewritten; garbage keeps the last list.
    wait_endpoints(&proxy, "from-file", &[&eb], Duration::from_secs(5));
    let before = b.count();
    assert_eq!(http_call(listener, "GET", "/files/x").0, 200);
    assert_eq!(b.count(), before + 1);
    std::fs::write(dir.join("file.json"), list(&[&ea])).unwrap();
    wait_endpoints(&proxy, "from-file", &[&ea], Duration::from_secs(3));
    std::fs::write(dir.join("file.json"), "{ not json: [").unwrap();
    let start = Instant::now();
    while cluster(&proxy, "from-file").1["state"] != "failing" {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "bad file not seen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(cluster(&proxy, "from-file").0, vec![ea.clone()]);
    // An empty list: the route answers "no healthy upstream" (503).
    std::fs::write(dir.join("file.json"), "[]").unwrap();
    wait_endpoints(&proxy, "from-file", &[], Duration::from_secs(3));
    assert_eq!(http_call(listener, "GET", "/files/x").0, 503);
}

#[test]
fn an_https_discovery_url_is_verified_and_given_a_client_certificate() {
    let a = Backend::start("a");
    let ea = a.address();
    let dir = scratch_dir("https-url");
    let ca = tls::Ca::new(&dir, "discovery");
    let rogue = tls::Ca::new(&dir, "rogue");
    let server = ca.issue(&dir, "server", "discovery", &["127.0.0.1"], None);
    ca.issue(&dir, "proxy", "proxy", &[], None);
    let served = dir.join("served.json");
    std::fs::write(&served, list(&[&ea])).unwrap();
    // Python's ssl (OpenSSL) serves the list and requires a client
    // certificate signed by the same CA.
    let (_server, requests, port) = endpoints_server_with(
        &served,
        &[
            "--tls",
            tls::s(&server.cert),
            tls::s(&server.key),
            "--client-ca",
            tls::s(&ca.pem),
        ],
    );
    let config = |ca_file: &str| {
        example_config(
            "examples/discovery/https_url.yaml",
            &[
                ("127.0.0.1:8080", "127.0.0.1:0".to_string()),
                ("127.0.0.1:7443", format!("127.0.0.1:{port}")),
                ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
                ("certs/discovery-ca.pem", ca_file.to_string()),
                ("certs/", format!("{}/", dir.display())),
            ],
        )
    };

    let proxy = Proxy::start("https-url", &config(tls::s(&ca.pem)));
    wait_endpoints(&proxy, "fleet", &[&ea], Duration::from_secs(5));
    let before = a.count();
    assert_eq!(http_call(proxy.addr("web-in"), "GET", "/").0, 200);
    assert_eq!(a.count(), before + 1);
    requests
        .wait_for(Duration::from_secs(5), |l| l.contains("304"))
        .expect("ETag / If-None-Match work over HTTPS too");

    // A server the CA did not sign is refused: the source fails, nothing is
    // taken from it.
    let untrusting = Proxy::start("https-url-rogue", &config(tls::s(&rogue.pem)));
    let start = Instant::now();
    let status = loop {
        let (addrs, status) = cluster(&untrusting, "fleet");
        assert!(
            addrs.is_empty(),
            "endpoints taken from an unverified server"
        );
        if status["state"] == "failing" {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "failure not seen: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let why = status["last_error"].as_str().unwrap();
    assert!(why.contains("tls handshake"), "{why}");
    assert_eq!(http_call(untrusting.addr("web-in"), "GET", "/").0, 503);
}
