//! `metaproxy import istio`: Istio's Bookinfo-style traffic management and
//! an Aeraki MetaRouter (`examples/istio/`) become configs that validate
//! and route real clients as the resources describe (curl for HTTP,
//! sofa-rpc-node for Dubbo); what cannot be carried is printed with its
//! file, line and path.

mod common;
#[path = "common/http.rs"]
mod http_peers;

use std::path::Path;
use std::process::Command;

use common::{DubboProvider, Proxy, repo_root, scratch_dir, validate};
use http_peers::{Backend, curl};

/// Runs the import; returns the config text and the notes (stderr).
fn import(files: &[&Path], out: &Path) -> String {
    let result = Command::new(env!("CARGO_BIN_EXE_metaproxy"))
        .args(["import", "istio", "-o"])
        .arg(out)
        .args(files)
        .output()
        .expect("run metaproxy import");
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    assert!(result.status.success(), "{stderr}");
    stderr
}

/// The config at `path` with `(from, to)` replaced.
fn rewrite(path: &Path, replacements: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "no `{from}` in:\n{text}");
        text = text.replace(from, to);
    }
    text
}

fn port(b: &Backend) -> String {
    b.address().rsplit(':').next().unwrap().to_string()
}

/// The backend's tag from its answer (`<tag> ...`).
fn tag(r: &http_peers::CurlOut) -> &str {
    r.body.split_whitespace().next().unwrap_or_default()
}

#[test]
fn bookinfo_traffic_management_imports_and_routes_as_istio_describes() {
    let dir = scratch_dir("istio-bookinfo");
    let examples = repo_root().join("examples/istio");
    let (page, v1, v2, ratings) = (
        Backend::start("productpage"),
        Backend::start("reviews-v1"),
        Backend::start("reviews-v2"),
        Backend::start("ratings"),
    );
    // Where the services run: the example's endpoints, on these backends.
    let endpoints = dir.join("endpoints.yaml");
    std::fs::write(
        &endpoints,
        rewrite(
            &examples.join("bookinfo-endpoints.yaml"),
            &[
                ("http: 9081", format!("http: {}", port(&page))),
                ("http: 9082", format!("http: {}", port(&v1))),
                ("http: 9083", format!("http: {}", port(&v2))),
                ("http: 9084", format!("http: {}", port(&ratings))),
            ],
        ),
    )
    .unwrap();
    let out = dir.join("imported.yaml");
    let notes = import(&[&examples.join("bookinfo.yaml"), &endpoints], &out);
    // Kubernetes-only fields are named with their place, not dropped quietly.
    for (what, path) in [
        ("Gateway default/bookinfo-gateway", "spec.selector"),
        ("DestinationRule default/ratings", "spec.exportTo"),
        ("ServiceEntry default/ratings", "spec.workloadSelector"),
    ] {
        assert!(
            notes
                .lines()
                .any(|l| l.contains(what) && l.contains(&format!(": {path}: "))),
            "no note of {what} {path}:\n{notes}"
        );
    }
    assert!(
        notes.contains("bookinfo.yaml:5:"),
        "notes name the line: {notes}"
    );
    let (ok, stdout, stderr) = validate(&out);
    assert!(ok, "{stdout}{stderr}");

    let config = rewrite(
        &out,
        &[
            ("0.0.0.0:8080", "127.0.0.1:0".into()),
            ("127.0.0.1:15001", "127.0.0.1:0".into()),
        ],
    );
    let proxy = Proxy::start("istio-bookinfo", &config);
    let gateway = proxy.addr("bookinfo-gateway-8080");
    for path in [
        "/productpage",
        "/static/app.css",
        "/login",
        "/api/v1/products/1",
    ] {
        let r = curl(&[&format!("http://{gateway}{path}")]);
        assert_eq!((r.status, tag(&r)), (200, "productpage"), "{path}: {r:?}");
    }
    assert_eq!(curl(&[&format!("http://{gateway}/admin")]).status, 404);

    let mesh = proxy.addr("mesh-outbound");
    let reviews = |extra: &[&str]| {
        let mut args = vec!["-H", "Host: reviews:9080"];
        args.extend_from_slice(extra);
        let url = format!("http://{mesh}/reviews/0");
        args.push(&url);
        let r = curl(&args);
        assert_eq!(r.status, 200, "{r:?}\n{}", proxy.logs());
        tag(&r).to_string()
    };
    for _ in 0..5 {
        assert_eq!(reviews(&[]), "reviews-v1");
        assert_eq!(reviews(&["-H", "end-user: jason"]), "reviews-v2");
    }
    let ratings_for = |user: Option<&str>| {
        let header = user.map(|u| format!("end-user: {u}"));
        let mut args = vec!["-H", "Host: ratings.default.svc.cluster.local"];
        if let Some(h) = &header {
            args.extend(["-H", h.as_str()]);
        }
        let url = format!("http://{mesh}/ratings/0");
        args.push(&url);
        curl(&args).status
    };
    assert_eq!(ratings_for(None), 200);
    assert_eq!(ratings_for(Some("jason")), 500, "the fault Istio describes");
}

#[test]
fn an_aeraki_meta_router_routes_dubbo_by_attachment() {
    let dir = scratch_dir("istio-aeraki");
    let (v1, v2) = (DubboProvider::start("v1"), DubboProvider::start("v2"));
    let port = |p: &DubboProvider| p.address().rsplit(':').next().unwrap().to_string();
    let input = dir.join("aeraki.yaml");
    std::fs::write(
        &input,
        rewrite(
            &repo_root().join("examples/istio/aeraki-dubbo.yaml"),
            &[
                ("hessian2: 20881", format!("hessian2: {}", port(&v1))),
                ("hessian2: 20882", format!("hessian2: {}", port(&v2))),
            ],
        ),
    )
    .unwrap();
    let out = dir.join("imported.yaml");
    let notes = import(&[&input], &out);
    let (ok, stdout, stderr) = validate(&out);
    assert!(ok, "{stdout}{stderr}\nnotes:\n{notes}");
    let config = rewrite(&out, &[("0.0.0.0:20880", "127.0.0.1:0".into())]);
    let proxy = Proxy::start("istio-aeraki", &config);
    let addr = proxy.addr("dubbo-demo-20880");
    let batch = common::dubbo_client(addr.port(), &["--count", "5", "--attach", "batchJob=true"]);
    assert_eq!(
        batch.results.get("Hello bob, from v2"),
        Some(&5),
        "{}",
        batch.raw
    );
    let other = common::dubbo_client(addr.port(), &["--count", "5"]);
    assert_eq!(
        other.results.get("Hello bob, from v1"),
        Some(&5),
        "{}",
        other.raw
    );
}
