//! Unit tests of the HTTP pieces that need no sockets.

use http::{HeaderMap, HeaderValue, Request};
use metaproxy_core::mutation::Mutation;
use metaproxy_core::router::Redirect;
use metaproxy_core::{ErrorKind, Origin, ProxyError};

use super::headers::{
    add_forwarded, apply_mutation, ensure_request_id, new_request_id, strip_hop_by_hop,
};
use super::metadata::{percent_decode, request_metadata};
use super::reply::{grpc_percent_encode, local_reply, redirect_location, split_host_port};

#[test]
fn request_head_becomes_metadata() {
    let req = Request::builder()
        .method("POST")
        .uri("/demo.Echo/Unary?a=1&b=x%20y&flag&c=%E2%9C%93+z")
        .header("Host", "shop.example.com:8080")
        .header("Content-Type", "application/grpc")
        .header("X-User", "ann")
        .header("x-request-id", "rid-1")
        .header("cookie", "sid=abc; theme=\"dark\"")
        .header("cookie", "more=1")
        .header("service", "spoofed")
        .body(())
        .unwrap();
    let (parts, ()) = req.into_parts();
    let m = request_metadata(&parts, "http");
    let get = |k: &str| m.get(k);
    assert_eq!(get("protocol"), Some("http"));
    assert_eq!(get("service"), Some("shop.example.com:8080"));
    assert_eq!(get("method"), Some("POST"));
    assert_eq!(get("request_id"), Some("rid-1"));
    assert_eq!(get(":method"), Some("POST"));
    assert_eq!(
        get(":path"),
        Some("/demo.Echo/Unary?a=1&b=x%20y&flag&c=%E2%9C%93+z")
    );
    assert_eq!(get(":path_only"), Some("/demo.Echo/Unary"));
    assert_eq!(get(":authority"), Some("shop.example.com:8080"));
    assert_eq!(get(":scheme"), Some("http"));
    assert_eq!(get("grpc.service"), Some("demo.Echo"));
    assert_eq!(get("grpc.method"), Some("Unary"));
    assert_eq!(get("query.a"), Some("1"));
    assert_eq!(get("query.b"), Some("x y"));
    assert_eq!(get("query.flag"), Some(""));
    assert_eq!(get("query.c"), Some("✓ z"));
    assert_eq!(get("cookie.sid"), Some("abc"));
    assert_eq!(get("cookie.theme"), Some("dark"));
    assert_eq!(get("cookie.more"), Some("1"));
    assert_eq!(get("x-user"), Some("ann"));
    assert_eq!(get("content-type"), Some("application/grpc"));
}

#[test]
fn h2_authority_comes_from_the_uri() {
    let req = Request::builder()
        .uri("http://api.example.com/v1/x")
        .body(())
        .unwrap();
    let (parts, ()) = req.into_parts();
    let m = request_metadata(&parts, "http");
    assert_eq!(m.get(":authority"), Some("api.example.com"));
    assert_eq!(m.get(":path"), Some("/v1/x"));
    assert_eq!(m.get("request_id"), None);
}

#[test]
fn percent_decoding_is_lenient_and_utf8_checked() {
    assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
    assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
    assert_eq!(percent_decode("%zz").as_deref(), Some("%zz"));
    assert_eq!(percent_decode("%ff"), None);
}

#[test]
fn hop_by_hop_headers_are_stripped_but_te_trailers_kept() {
    let mut h = HeaderMap::new();
    h.insert(
        "connection",
        HeaderValue::from_static("keep-alive, X-Secret"),
    );
    h.insert("x-secret", HeaderValue::from_static("1"));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
    h.insert("upgrade", HeaderValue::from_static("websocket"));
    h.insert("te", HeaderValue::from_static("trailers"));
    h.insert("x-keep", HeaderValue::from_static("yes"));
    strip_hop_by_hop(&mut h);
    let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, vec!["x-keep", "te"]);
    let mut h = HeaderMap::new();
    h.insert("te", HeaderValue::from_static("gzip"));
    strip_hop_by_hop(&mut h);
    assert!(h.is_empty());
}

#[test]
fn each_hop_by_hop_header_alone_is_stripped_and_plain_requests_are_untouched() {
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
    ] {
        let mut h = HeaderMap::new();
        h.insert("x-keep", HeaderValue::from_static("yes"));
        h.insert(name, HeaderValue::from_static("x"));
        strip_hop_by_hop(&mut h);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-keep"], "{name} kept");
    }
    // `te: Trailers` is normalised; `te: trailers` and the rest stay as sent.
    let mut h = HeaderMap::new();
    h.insert("te", HeaderValue::from_static("Trailers"));
    strip_hop_by_hop(&mut h);
    assert_eq!(h["te"], "trailers");
    let mut h = HeaderMap::new();
    h.insert("te", HeaderValue::from_static("trailers"));
    h.append("x-list", HeaderValue::from_static("a"));
    h.append("x-list", HeaderValue::from_static("b"));
    let before = h.clone();
    strip_hop_by_hop(&mut h);
    assert_eq!(h, before);
}

#[test]
fn request_ids_and_forwarding_headers() {
    let id = new_request_id();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
    assert_ne!(id, new_request_id());
    let mut h = HeaderMap::new();
    let made = ensure_request_id(&mut h);
    assert_eq!(h["x-request-id"], made.as_str());
    assert_eq!(ensure_request_id(&mut h), made);

    add_forwarded(&mut h, "127.0.0.1", "http");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    add_forwarded(&mut h, "10.0.0.2", "http");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1, 10.0.0.2");
    assert_eq!(h["x-forwarded-proto"], "https");
}

#[test]
fn mutations_set_replace_and_remove() {
    let mut h = HeaderMap::new();
    h.append("x-a", HeaderValue::from_static("1"));
    h.append("x-a", HeaderValue::from_static("2"));
    h.insert("x-b", HeaderValue::from_static("b"));
    let mut m = Mutation::new();
    m.set("X-A", "only");
    m.remove("x-b");
    m.set(":path", "/new");
    m.set("bad header", "v");
    let (pseudo, problems) = apply_mutation(&mut h, &m);
    assert_eq!(h.get_all("x-a").iter().count(), 1);
    assert_eq!(h["x-a"], "only");
    assert!(!h.contains_key("x-b"));
    assert_eq!(pseudo.path.as_deref(), Some("/new"));
    assert_eq!(problems.len(), 1);
}

#[test]
fn redirect_locations() {
    let r = |scheme: Option<&str>, host: Option<&str>, port: Option<u16>, path: Option<&str>| {
        Redirect {
            scheme: scheme.map(Into::into),
            host: host.map(Into::into),
            port,
            path: path.map(Into::into),
            code: 301,
        }
    };
    let loc = |rd: &Redirect, auth: &str, pq: &str| redirect_location(rd, "http", auth, pq);
    assert_eq!(
        loc(&r(None, None, None, Some("/new")), "a.com:8080", "/old?q=1"),
        "http://a.com:8080/new?q=1"
    );
    assert_eq!(
        loc(&r(Some("https"), None, None, None), "a.com:8080", "/x?q"),
        "https://a.com/x?q"
    );
    assert_eq!(
        loc(
            &r(None, Some("b.com"), Some(9000), Some("/p?z=2")),
            "a.com",
            "/x?q"
        ),
        "http://b.com:9000/p?z=2"
    );
    assert_eq!(
        loc(&r(Some("https"), None, Some(443), None), "a.com", "/"),
        "https://a.com/"
    );
    assert_eq!(split_host_port("[::1]:80"), ("[::1]", Some("80")));
    assert_eq!(split_host_port("a.com"), ("a.com", None));
}

#[test]
fn local_replies_in_http_and_grpc_form() {
    let err = ProxyError::new(
        ErrorKind::RouteNotFound,
        Origin::Internal,
        "no route ✓ 100%",
    );
    let r = local_reply(&err, false);
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-metaproxy-reason"], "route_not_found");
    let r = local_reply(&err, true);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["grpc-status"], "12");
    assert_eq!(r.headers()["content-type"], "application/grpc");
    assert_eq!(
        r.headers()["grpc-message"],
        "metaproxy: route not found: no route %E2%9C%93 100%25"
    );
    assert_eq!(grpc_percent_encode("a\nb"), "a%0Ab");

    let over = ProxyError::new(ErrorKind::OverLimit, Origin::Internal, "slow down");
    assert_eq!(local_reply(&over, false).status(), 503);
    let limited = over
        .clone()
        .with_reply_status(429)
        .with_reply_metadata("retry-after", "1");
    let r = local_reply(&limited, false);
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let g = local_reply(&limited, true);
    assert_eq!(g.status(), 200, "gRPC ignores the reply status");
    assert_eq!(g.headers()["grpc-status"], "8");
    assert_eq!(g.headers()["retry-after"], "1", "custom metadata");
    let spoof = limited
        .with_reply_metadata("grpc-status", "0")
        .with_reply_metadata("content-type", "text/html");
    let g = local_reply(&spoof, true);
    assert_eq!(g.headers().get_all("grpc-status").iter().count(), 1);
    assert_eq!(g.headers()["grpc-status"], "8");
    assert_eq!(g.headers()["content-type"], "application/grpc");
}
