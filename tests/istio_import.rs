//! `metaproxy import istio`: Istio's Bookinfo traffic management (our
//! example, and Istio's own published samples fetched from the Go module
//! proxy) and an Aeraki MetaRouter (`examples/istio/`) become configs that
//! validate and route real clients as the resources describe (curl for
//! HTTP, sofa-rpc-node for Dubbo); what cannot be carried is printed with
//! its file, line and path.

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

/// Istio's own Bookinfo samples, as Istio publishes them
/// (`samples/bookinfo/networking` of the istio.io/istio module, fetched by
/// `tests/peers/istio/fetch.sh` from the Go module proxy), unchanged.
fn istio_samples() -> std::path::PathBuf {
    let out = Command::new("bash")
        .arg(repo_root().join("tests/peers/istio/fetch.sh"))
        .output()
        .expect("run tests/peers/istio/fetch.sh");
    assert!(
        out.status.success(),
        "fetch.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().into()
}

/// The published samples: the gateway, every destination rule, and the
/// traffic-management tasks' virtual services, imported one task at a time
/// and routing curl as Istio's task pages describe.
#[test]
fn istios_published_bookinfo_samples_route_as_their_tasks_describe() {
    let samples = istio_samples();
    let dir = scratch_dir("istio-samples");
    let (page, v1, v2, v3, ratings) = (
        Backend::start("productpage"),
        Backend::start("reviews-v1"),
        Backend::start("reviews-v2"),
        Backend::start("reviews-v3"),
        Backend::start("ratings"),
    );
    let endpoints = dir.join("endpoints.yaml");
    std::fs::write(
        &endpoints,
        rewrite(
            &repo_root().join("examples/istio/bookinfo-endpoints.yaml"),
            &[
                ("http: 9081", format!("http: {}", port(&page))),
                ("http: 9082", format!("http: {}", port(&v1))),
                ("http: 9083", format!("http: {}", port(&v2))),
                ("http: 9085", format!("http: {}", port(&v3))),
                ("http: 9084", format!("http: {}", port(&ratings))),
            ],
        ),
    )
    .unwrap();
    // One proxy per task: the gateway, the destination rules and the
    // task's virtual services.
    let task = |name: &str, virtual_services: &[&str]| -> Proxy {
        let mut files = vec![
            samples.join("bookinfo-gateway.yaml"),
            samples.join("destination-rule-all.yaml"),
        ];
        files.extend(virtual_services.iter().map(|f| samples.join(f)));
        files.push(endpoints.clone());
        let out = dir.join(format!("{name}.yaml"));
        let notes = import(&files.iter().map(|p| p.as_path()).collect::<Vec<_>>(), &out);
        assert!(notes.contains("bookinfo-gateway.yaml:"), "{notes}");
        let (ok, stdout, stderr) = validate(&out);
        assert!(ok, "{name}: {stdout}{stderr}");
        let config = rewrite(
            &out,
            &[
                ("0.0.0.0:8080", "127.0.0.1:0".into()),
                ("127.0.0.1:15001", "127.0.0.1:0".into()),
            ],
        );
        Proxy::start(&format!("istio-samples-{name}"), &config)
    };
    let get = |proxy: &Proxy, host: &str, path: &str, user: Option<&str>| {
        let url = format!("http://{}{path}", proxy.addr("mesh-outbound"));
        let host = format!("Host: {host}");
        let mut args = vec!["-H", host.as_str()];
        let user = user.map(|u| format!("end-user: {u}"));
        if let Some(u) = &user {
            args.extend(["-H", u.as_str()]);
        }
        args.push(&url);
        curl(&args)
    };
    // Request routing: jason sees reviews v2, everyone else v1; the
    // gateway serves the product page.
    let routing = task(
        "routing",
        &[
            "virtual-service-reviews-test-v2.yaml",
            "virtual-service-ratings-test-abort.yaml",
        ],
    );
    let gateway = routing.addr("bookinfo-gateway-8080");
    let r = curl(&[&format!("http://{gateway}/productpage")]);
    assert_eq!((r.status, tag(&r)), (200, "productpage"), "{r:?}");
    for _ in 0..5 {
        let r = get(&routing, "reviews", "/reviews/0", None);
        assert_eq!(tag(&r), "reviews-v1", "{r:?}");
        let r = get(&routing, "reviews", "/reviews/0", Some("jason"));
        assert_eq!(tag(&r), "reviews-v2", "{r:?}");
    }
    // Fault injection: ratings abort with 500 for jason only.
    assert_eq!(get(&routing, "ratings", "/ratings/0", None).status, 200);
    assert_eq!(
        get(&routing, "ratings", "/ratings/0", Some("jason")).status,
        500
    );
    drop(routing);

    // Traffic shifting: 50% to v3, then all of it.
    let half = task("shift-50", &["virtual-service-reviews-50-v3.yaml"]);
    let before = (v1.count(), v3.count());
    for _ in 0..200 {
        assert_eq!(get(&half, "reviews", "/reviews/0", None).status, 200);
    }
    let (to_v1, to_v3) = (v1.count() - before.0, v3.count() - before.1);
    assert_eq!(to_v1 + to_v3, 200, "only v1 and v3 answer");
    assert!(
        (70..=130).contains(&to_v3),
        "50/50 over 200 requests: {to_v1} to v1, {to_v3} to v3"
    );
    drop(half);
    let all = task("shift-100", &["virtual-service-reviews-v3.yaml"]);
    for _ in 0..10 {
        let r = get(&all, "reviews", "/reviews/0", None);
        assert_eq!(tag(&r), "reviews-v3", "{r:?}");
    }
}
