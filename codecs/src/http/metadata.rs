//! An HTTP request head as routable metadata.
//!
//! Keys, in lookup order (the first entry of a key wins):
//! `protocol` (`http`), `service` (= `:authority`), `method` (= `:method`),
//! `request_id` (= `x-request-id`), `:method`, `:path` (path and query as
//! sent), `:path_only` (the path without the query), `:authority`,
//! `:scheme`, `grpc.service` / `grpc.method` for gRPC requests,
//! `query.<name>` (percent-decoded), `cookie.<name>`, then every header
//! under its lower-case name (the first value of a repeated header).

use bytes::BytesMut;
use bytestring::ByteString;
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
    authority_str(uri, headers).to_string()
}

fn authority_str<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> &'a str {
    if let Some(a) = uri.authority() {
        return a.as_str();
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
}

/// Whether the request is gRPC (`content-type: application/grpc*`).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Copies text into one shared buffer and hands out slices of it, so a
/// request's metadata costs one allocation instead of one per entry.
struct Arena {
    buf: BytesMut,
}

impl Arena {
    fn put(&mut self, text: &[u8]) -> (usize, usize) {
        let start = self.buf.len();
        self.buf.extend_from_slice(text);
        (start, self.buf.len())
    }
}

/// Builds the request's metadata. `scheme` is the listener's scheme.
pub fn request_metadata(parts: &Parts, scheme: &str) -> Metadata {
    let headers = &parts.headers;
    let mut m = Metadata::with_capacity(12 + headers.len());
    let authority = authority_str(&parts.uri, headers);
    let method = parts.method.as_str();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let path_only = parts.uri.path();
    let size = authority.len()
        + method.len()
        + path.len()
        + path_only.len()
        + headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum::<usize>();
    let mut arena = Arena {
        buf: BytesMut::with_capacity(size),
    };
    let a = arena.put(authority.as_bytes());
    let me = arena.put(method.as_bytes());
    let p = arena.put(path.as_bytes());
    let po = arena.put(path_only.as_bytes());
    let mut spans = Vec::with_capacity(headers.len());
    let mut request_id = None;
    for (name, value) in headers {
        if std::str::from_utf8(value.as_bytes()).is_ok() {
            let span = (
                arena.put(name.as_str().as_bytes()),
                arena.put(value.as_bytes()),
            );
            if request_id.is_none() && name == super::headers::REQUEST_ID {
                request_id = Some(span.1);
            }
            spans.push(span);
        }
    }
    let buf = arena.buf.freeze();
    // Every span is a copy of a `&str` (or of checked UTF-8), so each slice is UTF-8.
    let text = |(from, to): (usize, usize)| -> ByteString {
        ByteString::try_from(buf.slice(from..to)).unwrap_or_default()
    };
    let key = ByteString::from_static;
    m.push(key(keys::PROTOCOL), key(super::HTTP));
    m.push(key(keys::SERVICE), text(a));
    m.push(key(keys::METHOD), text(me));
    if let Some(id) = request_id {
        m.push(key(keys::REQUEST_ID), text(id));
    }
    m.push(key(METHOD), text(me));
    m.push(key(PATH), text(p));
    m.push(key(PATH_ONLY), text(po));
    m.push(key(AUTHORITY), text(a));
    m.push(
        key(SCHEME),
        match parts.uri.scheme_str().unwrap_or(scheme) {
            "http" => key("http"),
            "https" => key("https"),
            other => other.into(),
        },
    );
    if is_grpc(headers)
        && let Some((service, method)) = grpc_service_and_method(path_only)
    {
        // Slices of the path's copy: no allocation of their own.
        let at = |(from, to): (usize, usize)| text((po.0 + from, po.0 + to));
        m.push(key(GRPC_SERVICE), at(service));
        m.push(key(GRPC_METHOD), at(method));
    }
    if let Some(query) = parts.uri.query() {
        push_query(&mut m, query);
    }
    for cookie in headers.get_all(header::COOKIE) {
        if let Ok(text) = cookie.to_str() {
            push_cookies(&mut m, text);
        }
    }
    for (k, v) in spans {
        m.push(text(k), text(v));
    }
    m
}

/// Where the service and the method of a gRPC path (`/pkg.Service/Method`)
/// are in `path`: byte ranges, or `None` when it has no second segment.
fn grpc_service_and_method(path: &str) -> Option<((usize, usize), (usize, usize))> {
    let start = path.len() - path.trim_start_matches('/').len();
    let slash = start + path[start..].find('/')?;
    Some(((start, slash), (slash + 1, path.len())))
}

/// Adds `query.<name>` entries for each parameter of a query string.
pub(crate) fn push_query(m: &mut Metadata, query: &str) {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if let (Some(k), Some(v)) = (percent_decode(k), percent_decode(v)) {
            m.push(format!("{QUERY_PREFIX}{k}").into(), v.into());
        }
    }
}

/// Adds `cookie.<name>` entries for each pair of a `cookie` header value.
pub(crate) fn push_cookies(m: &mut Metadata, text: &str) {
    for pair in text.split(';') {
        if let Some((k, v)) = pair.trim().split_once('=') {
            m.push(
                format!("{COOKIE_PREFIX}{}", k.trim()).into(),
                v.trim().trim_matches('"').into(),
            );
        }
    }
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

#[cfg(test)]
mod tests {
    use super::grpc_service_and_method;

    fn split(path: &str) -> Option<(&str, &str)> {
        grpc_service_and_method(path).map(|((a, b), (c, d))| (&path[a..b], &path[c..d]))
    }

    #[test]
    fn a_grpc_path_splits_at_its_first_slash_after_the_leading_ones() {
        assert_eq!(split("/demo.Echo/Unary"), Some(("demo.Echo", "Unary")));
        assert_eq!(split("//demo.Echo/Unary"), Some(("demo.Echo", "Unary")));
        assert_eq!(split("/a/b/c"), Some(("a", "b/c")));
        assert_eq!(split("/a/"), Some(("a", "")));
        assert_eq!(split("/demo.Echo"), None);
        assert_eq!(split("/"), None);
    }
}
