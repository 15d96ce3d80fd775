//! `examples/tls/config.yaml` as shipped, next to certificates made here:
//! curl over HTTPS with SNI routing, and the sofa-rpc-node Dubbo client
//! over mutual TLS (carried by a Node `tls` tunnel, since that client has
//! no TLS of its own), allowed only with the cart's SPIFFE identity.

mod common;
#[path = "common/http.rs"]
mod http_peers;
#[path = "common/tls.rs"]
mod tls;

use common::{DubboProvider, Proxy, START_TIMEOUT, dubbo_client, repo_root, scratch_dir, validate};
use http_peers::{Backend, curl};
use tls::{Ca, s, tunnel};

#[test]
fn the_tls_example_serves_https_by_sni_and_dubbo_over_mutual_tls() {
    let dir = scratch_dir("tls-example");
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let ca = Ca::new(&certs, "mesh");
    std::fs::rename(&ca.pem, certs.join("ca.pem")).unwrap();
    let ca_pem = certs.join("ca.pem");
    ca.issue(&certs, "default", "default.test", &["localhost"], None);
    ca.issue(
        &certs,
        "shop",
        "shop.example.com",
        &["shop.example.com", "*.shop.example.com"],
        None,
    );
    let cart = ca.issue(
        &certs,
        "cart",
        "cart",
        &[],
        Some("spiffe://cluster.local/ns/shop/sa/cart"),
    );
    let other = ca.issue(
        &certs,
        "other",
        "other",
        &[],
        Some("spiffe://cluster.local/ns/shop/sa/other"),
    );

    // As shipped, next to its certificates, the example is valid.
    let shipped = dir.join("shipped.yaml");
    std::fs::copy(repo_root().join("examples/tls/config.yaml"), &shipped).unwrap();
    let (ok, out, err) = validate(&shipped);
    assert!(ok, "{out}{err}");

    let shop = Backend::start("shop");
    let web = Backend::start("web");
    let orders = DubboProvider::start("orders");
    let text = common::example_config(
        "examples/tls/config.yaml",
        &[
            ("127.0.0.1:9901", "127.0.0.1:0".to_string()),
            ("127.0.0.1:8443", "127.0.0.1:0".to_string()),
            ("127.0.0.1:20443", "127.0.0.1:0".to_string()),
            ("127.0.0.1:8081", shop.address()),
            ("127.0.0.1:8082", web.address()),
            ("127.0.0.1:20881", orders.address()),
        ],
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    let proxy = Proxy::start_file(&path, &[]);

    let https = proxy.addr("https");
    let call = |name: &str| {
        let resolve = format!("{name}:{}:127.0.0.1", https.port());
        let url = format!("https://{name}:{}/", https.port());
        curl(&[
            "--cacert",
            s(&ca_pem),
            "--resolve",
            &resolve,
            "--http2",
            &url,
        ])
    };
    let r = call("shop.example.com");
    assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
    assert!(r.body.starts_with("shop GET / HTTP/1.1"), "{r:?}");
    let r = call("localhost");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.starts_with("web GET /"), "{r:?}");

    let dubbo = proxy.addr("dubbo-mtls");
    let (_t, port, _) = tunnel(dubbo, s(&ca_pem), Some(&cart));
    let sum = dubbo_client(port, &["--count", "3"]);
    assert_eq!(sum.ok, 3, "{}\n{}", sum.raw, proxy.logs());
    assert_eq!(
        sum.results.get("Hello bob, from orders"),
        Some(&3),
        "{}",
        sum.raw
    );
    let seen = orders
        .wait_call("sayHello", std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(seen["args"][0], "bob", "{seen}");

    // Another identity is refused by the route; no certificate, by TLS.
    let (_t, port, _) = tunnel(dubbo, s(&ca_pem), Some(&other));
    let sum = dubbo_client(port, &["--count", "1"]);
    assert_eq!(sum.ok, 0, "{}", sum.raw);
    assert!(
        sum.error_messages
            .keys()
            .any(|m| m.to_lowercase().contains("route")),
        "{}",
        sum.raw
    );
    let (_t, port, tls_errors) = tunnel(dubbo, s(&ca_pem), None);
    let sum = dubbo_client(port, &["--count", "1", "--timeout", "3000"]);
    assert_eq!(sum.ok, 0, "{}", sum.raw);
    assert!(
        tls_errors
            .wait_for(START_TIMEOUT, |l| l.contains("tls_error"))
            .is_some()
    );
}
