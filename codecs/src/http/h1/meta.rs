//! A parsed HTTP/1.1 request head as routable metadata, with the same keys
//! as the hyper path (`super::super::metadata`), every value a slice of the
//! head's bytes (no copies, apart from decoded query parameters and cookies).

use bytes::Bytes;
use bytestring::ByteString;
use metaproxy_core::metadata::{Metadata, keys};

use super::head::Head;
use crate::http::metadata::{self as md, push_cookies, push_query};

/// Builds the request's metadata. `request_id` is the id the request goes
/// upstream with (the client's `x-request-id`, or a generated one that is
/// also added as the `x-request-id` entry).
pub(crate) fn request_metadata(
    head: &Head,
    scheme: &'static str,
    request_id: &Bytes,
    generated: bool,
) -> Metadata {
    let text = |r: &std::ops::Range<usize>| -> Option<ByteString> {
        ByteString::try_from(head.bytes.slice(r.clone())).ok()
    };
    let key = ByteString::from_static;
    let mut m = Metadata::with_capacity(12 + head.headers.len());
    let authority = head
        .headers
        .iter()
        .find(|(n, _)| head.at(n) == b"host")
        .and_then(|(_, v)| text(v))
        .unwrap_or_default();
    let method = match head.at(&head.first) {
        b"GET" => key("GET"),
        b"POST" => key("POST"),
        b"PUT" => key("PUT"),
        b"DELETE" => key("DELETE"),
        b"HEAD" => key("HEAD"),
        b"OPTIONS" => key("OPTIONS"),
        b"PATCH" => key("PATCH"),
        _ => text(&head.first).unwrap_or_default(),
    };
    let path = text(&head.second).unwrap_or_else(|| key("/"));
    let id = ByteString::try_from(request_id.clone()).unwrap_or_default();
    m.push(key(keys::PROTOCOL), key(crate::http::HTTP));
    m.push(key(keys::SERVICE), authority.clone());
    m.push(key(keys::METHOD), method.clone());
    m.push(key(keys::REQUEST_ID), id.clone());
    m.push(key(md::METHOD), method);
    let (path_only, query) = match path.find('?') {
        Some(i) => (
            path.slice_ref(&path[..i]),
            Some(path.slice_ref(&path[i + 1..])),
        ),
        None => (path.clone(), None),
    };
    m.push(key(md::PATH), path);
    m.push(key(md::PATH_ONLY), path_only);
    m.push(key(md::AUTHORITY), authority);
    m.push(key(md::SCHEME), key(scheme));
    if let Some(q) = query {
        push_query(&mut m, &q);
    }
    for (n, v) in &head.headers {
        if head.at(n) == b"cookie"
            && let Ok(t) = std::str::from_utf8(head.at(v))
        {
            push_cookies(&mut m, t);
        }
    }
    if generated {
        m.push(key("x-request-id"), id);
    }
    for (n, v) in &head.headers {
        let name = common_name(head.at(n)).map_or_else(|| text(n), |s| Some(key(s)));
        if let (Some(n), Some(v)) = (name, text(v)) {
            m.push(n, v);
        }
    }
    m
}

/// The static copy of a common (lower-case) header name: its metadata key
/// then costs no reference to the head's buffer.
fn common_name(name: &[u8]) -> Option<&'static str> {
    Some(match name {
        b"host" => "host",
        b"accept" => "accept",
        b"accept-encoding" => "accept-encoding",
        b"accept-language" => "accept-language",
        b"authorization" => "authorization",
        b"cache-control" => "cache-control",
        b"connection" => "connection",
        b"content-length" => "content-length",
        b"content-type" => "content-type",
        b"cookie" => "cookie",
        b"origin" => "origin",
        b"referer" => "referer",
        b"user-agent" => "user-agent",
        b"x-forwarded-for" => "x-forwarded-for",
        b"x-forwarded-proto" => "x-forwarded-proto",
        b"x-request-id" => "x-request-id",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use metaproxy_core::metadata::MetadataView;

    #[test]
    fn same_keys_as_the_hyper_path() {
        let mut buf = BytesMut::from(
            &b"GET /p/q?a=1&b=x%20y HTTP/1.1\r\nHost: shop.test\r\nCookie: sid=42; cart=\"c1\"\r\nX-User: ann\r\n\r\n"[..],
        );
        let head = super::super::head::parse_request(&mut buf, 100)
            .unwrap()
            .unwrap();
        let id = Bytes::from_static(b"id-1");
        let m = request_metadata(&head, "http", &id, true);
        assert_eq!(m.lookup(":path"), Some("/p/q?a=1&b=x%20y"));
        assert_eq!(m.lookup(":path_only"), Some("/p/q"));
        assert_eq!(m.lookup(":authority"), Some("shop.test"));
        assert_eq!(m.lookup("service"), Some("shop.test"));
        assert_eq!(m.lookup(":method"), Some("GET"));
        assert_eq!(m.lookup("query.b"), Some("x y"));
        assert_eq!(m.lookup("cookie.cart"), Some("c1"));
        assert_eq!(m.lookup("x-user"), Some("ann"));
        assert_eq!(m.lookup("x-request-id"), Some("id-1"));
        assert_eq!(m.lookup("request_id"), Some("id-1"));
        assert_eq!(m.lookup(":scheme"), Some("http"));
        assert_eq!(m.lookup("host"), Some("shop.test"));
        assert_eq!(m.lookup("cookie"), Some("sid=42; cart=\"c1\""));
    }
}
