//! An HTTP request head as routable metadata.
//!
//! Keys, in lookup order (the first entry of a key wins):
//! `protocol` (`http`), `service` (= `:authority`), `method` (= `:method`),
//! `request_id` (= `x-request-id`), `:method`, `:path` (path and query as
//! sent), `:path_only` (the path without the query), `:authority`,
//! `:scheme`, `grpc.service` / `grpc.method` for gRPC requests,
//! `query.<name>` (percent-decoded), `cookie.<name>`, then every header
//! under its lower-case name (the first value of a repeated header).

use http::request::Parts;
use http::{HeaderMap, Uri, header};
use metaproxy_core::metadata::{Metadata, keys};

/// `:method`.
pub const METHOD: &str = ":method";
/// `:path`: path and query as the client sent them.
pub const PATH: &str = ":path";
/// `:path_only`: the path without the query string.
pub const PATH_ONLY: &str = ":path_only";
/// `:authority`: the HTTP/2 authority, or the HTTP/1.1 `Host` header.
pub const AUTHORITY: &str = ":authority";
/// `:scheme`.
pub const SCHEME: &str = ":scheme";
/// `:status` (response metadata).
pub const STATUS: &str = ":status";
/// The gRPC service of `/pkg.Service/Method`.
pub const GRPC_SERVICE: &str = "grpc.service";
/// The gRPC method of `/pkg.Service/Method`.
pub const GRPC_METHOD: &str = "grpc.method";
/// Prefix of query parameter keys.
pub const QUERY_PREFIX: &str = "query.";
/// Prefix of cookie keys.
pub const COOKIE_PREFIX: &str = "cookie.";

/// The request's authority: the URI's (HTTP/2, absolute-form) or the `Host` header.
pub fn authority(uri: &Uri, headers: &HeaderMap) -> String {
    if let Some(a) = uri.authority() {
        return a.as_str().to_string();
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Whether the request is gRPC (`content-type: application/grpc*`).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Builds the request's metadata. `scheme` is the listener's scheme.
pub fn request_metadata(parts: &Parts, scheme: &str) -> Metadata {
    let headers = &parts.headers;
    let mut m = Metadata::with_capacity(12 + headers.len());
    let authority = authority(&parts.uri, headers);
    let method = parts.method.as_str();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    m.push(keys::PROTOCOL.into(), super::HTTP.into());
    m.push(keys::SERVICE.into(), authority.as_str().into());
    m.push(keys::METHOD.into(), method.into());
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        m.push(keys::REQUEST_ID.into(), id.into());
    }
    m.push(METHOD.into(), method.into());
    m.push(PATH.into(), path.into());
    m.push(PATH_ONLY.into(), parts.uri.path().into());
    m.push(AUTHORITY.into(), authority.into());
    m.push(
        SCHEME.into(),
        parts.uri.scheme_str().unwrap_or(scheme).into(),
    );
    if is_grpc(headers) {
        let mut it = parts.uri.path().trim_start_matches('/').splitn(2, '/');
        if let (Some(service), Some(method)) = (it.next(), it.next()) {
            m.push(GRPC_SERVICE.into(), service.into());
            m.push(GRPC_METHOD.into(), method.into());
        }
    }
    if let Some(query) = parts.uri.query() {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if let (Some(k), Some(v)) = (percent_decode(k), percent_decode(v)) {
                m.push(format!("{QUERY_PREFIX}{k}").into(), v.into());
            }
        }
    }
    for cookie in headers.get_all(header::COOKIE) {
        let Ok(text) = cookie.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                m.push(
                    format!("{COOKIE_PREFIX}{}", k.trim()).into(),
                    v.trim().trim_matches('"').into(),
                );
            }
        }
    }
    for (name, value) in headers {
        if let Ok(v) = std::str::from_utf8(value.as_bytes()) {
            m.push(name.as_str().into(), v.into());
        }
    }
    m
}

/// Decodes `%XX` escapes and `+` (a space, as in forms); `None` if the
/// result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(text.to_string());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
