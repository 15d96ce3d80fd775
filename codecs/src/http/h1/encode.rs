//! Writing heads: the upstream request (hop-by-hop headers dropped,
//! forwarding headers and the route's mutation applied, the client's other
//! header bytes copied as they are) and the answer to the client.

use bytes::{BufMut, Bytes, BytesMut};
use http::Response;
use metaproxy_core::mutation::{Mutation, MutationOp};

use super::head::Head;
use crate::http::ProxyBody;

/// Headers that never cross the proxy (framing headers are handled apart).
const HOP_BY_HOP: [&[u8]; 6] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"upgrade",
    b"proxy-authenticate",
    b"transfer-encoding",
];

/// A mutation folded to its final effect per header: `Some(value)` to set,
/// `None` to remove. Pseudo-headers are split out.
#[derive(Debug, Default)]
pub(crate) struct HeaderChanges<'a> {
    /// Plain headers, lower-case names.
    pub headers: Vec<(String, Option<&'a str>)>,
    /// A new `:path`.
    pub path: Option<&'a str>,
    /// A new `:authority`.
    pub authority: Option<&'a str>,
    /// Ops that cannot be written (bad name or value, other pseudo-headers).
    pub problems: Vec<String>,
}

impl<'a> HeaderChanges<'a> {
    /// Folds `mutation`.
    pub(crate) fn of(mutation: &'a Mutation) -> Self {
        let mut c = HeaderChanges::default();
        for op in mutation.ops() {
            let (key, value) = match op {
                MutationOp::Set(k, v) => (&**k, Some(&**v)),
                MutationOp::Remove(k) => (&**k, None),
            };
            match (key, value) {
                (":path", Some(v)) => c.path = Some(v),
                (":authority", Some(v)) => c.authority = Some(v),
                _ if !is_token(key) || value.is_some_and(|v| !is_value(v)) => {
                    c.problems.push(format!("cannot change header `{key}`"));
                }
                _ => {
                    let name = key.to_ascii_lowercase();
                    c.headers.retain(|(n, _)| *n != name);
                    c.headers.push((name, value));
                }
            }
        }
        c
    }

    fn touches(&self, name: &[u8]) -> bool {
        self.headers.iter().any(|(n, _)| n.as_bytes() == name)
    }

    fn write_sets(&self, out: &mut BytesMut) {
        for (n, v) in &self.headers {
            if let Some(v) = v {
                put_header(out, n.as_bytes(), v.as_bytes());
            }
        }
    }
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn put_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

fn put_length(out: &mut BytesMut, n: usize) {
    put_header(
        out,
        b"content-length",
        itoa::Buffer::new().format(n).as_bytes(),
    );
}

/// The HTTP/1.1 request head of a request hyper read (an HTTP/2
/// client's, sent to an HTTP/1.1 upstream by the lean path): the request
/// line, `host`, then `headers` in order (hop-by-hop ones were removed
/// before; a `host` or `content-length` among them is replaced), and the
/// body's `content-length` when it has one or the client sent one. The
/// `cookie` fields an HTTP/2 client may split a cookie list into are
/// joined into one with `; ` (RFC 9113 §8.2.3).
pub(crate) fn request_head_of(
    method: &[u8],
    path: &[u8],
    host: &[u8],
    headers: &http::HeaderMap,
    body_len: usize,
) -> Bytes {
    let size = 48
        + method.len()
        + path.len()
        + host.len()
        + headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>();
    let mut out = BytesMut::with_capacity(size);
    out.put_slice(method);
    out.put_u8(b' ');
    out.put_slice(path);
    out.put_slice(b" HTTP/1.1\r\n");
    put_header(&mut out, b"host", host);
    let mut length = body_len > 0;
    let mut cookies_written = false;
    for (name, value) in headers {
        if name == http::header::HOST {
            continue;
        }
        if name == http::header::CONTENT_LENGTH {
            length = true;
            continue;
        }
        if name == http::header::COOKIE {
            if !cookies_written {
                cookies_written = true;
                put_cookies(&mut out, headers);
            }
            continue;
        }
        put_header(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    if length {
        put_length(&mut out, body_len);
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

/// Writes every `cookie` field of `headers` as one `cookie` line.
fn put_cookies(out: &mut BytesMut, headers: &http::HeaderMap) {
    out.put_slice(b"cookie: ");
    for (i, value) in headers.get_all(http::header::COOKIE).iter().enumerate() {
        if i > 0 {
            out.put_slice(b"; ");
        }
        out.put_slice(value.as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// Copies kept header lines of a head to the output, each run of
/// consecutive kept lines with one copy (the client's bytes as they are:
/// names lower-cased, values untouched). A line not ending in CRLF is
/// written normalized instead.
struct LineCopy<'h> {
    head: &'h Head,
    run: std::ops::Range<usize>,
}

impl<'h> LineCopy<'h> {
    fn new(head: &'h Head) -> Self {
        Self { head, run: 0..0 }
    }

    /// Keeps header `(n, v)`.
    fn keep(&mut self, out: &mut BytesMut, n: &std::ops::Range<usize>, v: &std::ops::Range<usize>) {
        let bytes = &self.head.bytes[..];
        // The value excludes trailing whitespace; an empty one is 0..0.
        let from = if v.is_empty() { n.end } else { v.end };
        let end = bytes[from..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |i| from + i + 1);
        if end < n.start + 2 || bytes[end - 2] != b'\r' {
            self.flush(out);
            put_header(out, &bytes[n.clone()], &bytes[v.clone()]);
            return;
        }
        if self.run.end != n.start || self.run.is_empty() {
            self.flush(out);
            self.run.start = n.start;
        }
        self.run.end = end;
    }

    /// Writes the pending run.
    fn flush(&mut self, out: &mut BytesMut) {
        if !self.run.is_empty() {
            out.put_slice(&self.head.bytes[self.run.clone()]);
        }
        self.run = 0..0;
    }
}

/// The header names a head's `connection` headers list (lower-cased
/// comparisons happen in [`hop_by_hop`]).
fn connection_tokens(head: &Head) -> Vec<&[u8]> {
    if !head.may_have(b"connection") {
        return Vec::new();
    }
    head.headers
        .iter()
        .filter(|(n, _)| head.at(n) == b"connection")
        .flat_map(|(_, v)| head.at(v).split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether header `name` must not be copied: hop-by-hop, or named by the
/// head's `connection` headers (`named`).
fn hop_by_hop(named: &[&[u8]], name: &[u8]) -> bool {
    HOP_BY_HOP.contains(&name)
        || (name != b"te" && named.iter().any(|t| t.eq_ignore_ascii_case(name)))
}

/// What the upstream request head is made of besides the client's head.
pub(crate) struct RequestParts<'a> {
    /// The path and query to send.
    pub path: &'a [u8],
    /// A new `host`, when rewritten.
    pub host: Option<&'a [u8]>,
    /// The client's address, appended to `x-forwarded-for`.
    pub client_ip: &'a [u8],
    /// `x-forwarded-proto` when the client sent none.
    pub scheme: &'a str,
    /// A generated `x-request-id`, when the client sent none.
    pub request_id: Option<&'a [u8]>,
    /// The route's and filters' header changes.
    pub changes: &'a HeaderChanges<'a>,
    /// The body's length.
    pub body_len: usize,
}

/// Encodes the upstream request head at the end of `out` (a scratch
/// buffer) and splits it off.
pub(crate) fn request_head(out: &mut BytesMut, head: &Head, p: &RequestParts<'_>) -> Bytes {
    out.reserve(head.bytes.len() + 160);
    // The request line as sent when the path stays and it is plain HTTP/1.1.
    let line_end = head.second.end + b" HTTP/1.1\r\n".len();
    if p.path == head.at(&head.second)
        && head.bytes.get(head.second.end..line_end) == Some(b" HTTP/1.1\r\n")
    {
        out.put_slice(&head.bytes[..line_end]);
    } else {
        out.put_slice(head.at(&head.first));
        out.put_u8(b' ');
        out.put_slice(p.path);
        out.put_slice(b" HTTP/1.1\r\n");
    }
    let named = connection_tokens(head);
    let mut forwarded_for: Vec<&[u8]> = Vec::new();
    let mut has_proto = false;
    let mut lines = LineCopy::new(head);
    for (n, v) in &head.headers {
        let name = head.at(n);
        let value = head.at(v);
        match name {
            b"x-forwarded-for" => {
                forwarded_for.push(value);
                continue;
            }
            b"content-length" => continue,
            b"host" if p.host.is_some() => continue,
            b"te" if !value.trim_ascii().eq_ignore_ascii_case(b"trailers") => continue,
            b"x-forwarded-proto" => has_proto = true,
            _ => {}
        }
        if hop_by_hop(&named, name) || p.changes.touches(name) {
            continue;
        }
        lines.keep(out, n, v);
    }
    lines.flush(out);
    if let Some(host) = p.host {
        put_header(out, b"host", host);
    }
    if !p.changes.touches(b"x-forwarded-for") {
        out.put_slice(b"x-forwarded-for: ");
        for v in forwarded_for {
            out.put_slice(v);
            out.put_slice(b", ");
        }
        out.put_slice(p.client_ip);
        out.put_slice(b"\r\n");
    }
    if !has_proto && !p.changes.touches(b"x-forwarded-proto") {
        match p.scheme {
            "http" => out.put_slice(b"x-forwarded-proto: http\r\n"),
            "https" => out.put_slice(b"x-forwarded-proto: https\r\n"),
            other => put_header(out, b"x-forwarded-proto", other.as_bytes()),
        }
    }
    if let Some(id) = p.request_id {
        put_header(out, b"x-request-id", id);
    }
    p.changes.write_sets(out);
    if p.body_len > 0 || head.header(b"content-length").is_some() {
        put_length(out, p.body_len);
    }
    out.put_slice(b"\r\n");
    out.split().freeze()
}

/// Encodes the answer head for the client: the upstream's status line and
/// headers without hop-by-hop ones (framing headers kept: the body is
/// relayed as framed), the mutation, an affinity cookie,
/// `transfer-encoding: chunked` when a close-delimited body is re-chunked
/// (`rechunk`), and `connection: close` when the client connection ends
/// after this answer. Written at the end of `out` (a scratch buffer) and
/// split off.
pub(crate) fn answer_head(
    out: &mut BytesMut,
    head: &Head,
    changes: &HeaderChanges<'_>,
    set_cookie: Option<&str>,
    close: bool,
    rechunk: bool,
) -> Bytes {
    out.reserve(head.bytes.len() + 64);
    // The status line as sent when it is a plain HTTP/1.1 one.
    let line_end = head.second.end + 2;
    if head.bytes.starts_with(b"HTTP/1.1 ")
        && head.second.start > head.first.end
        && head.bytes.get(head.second.end..line_end) == Some(b"\r\n")
    {
        out.put_slice(&head.bytes[..line_end]);
    } else {
        out.put_slice(b"HTTP/1.1 ");
        out.put_slice(head.at(&head.first));
        out.put_u8(b' ');
        out.put_slice(head.at(&head.second));
        out.put_slice(b"\r\n");
    }
    let named = connection_tokens(head);
    let mut lines = LineCopy::new(head);
    for (n, v) in &head.headers {
        let name = head.at(n);
        let framing = name == b"transfer-encoding";
        if (!framing && hop_by_hop(&named, name)) || changes.touches(name) {
            continue;
        }
        lines.keep(out, n, v);
    }
    lines.flush(out);
    changes.write_sets(out);
    if let Some(cookie) = set_cookie.filter(|c| is_value(c)) {
        put_header(out, b"set-cookie", cookie.as_bytes());
    }
    if rechunk {
        out.put_slice(b"transfer-encoding: chunked\r\n");
    }
    if close {
        out.put_slice(b"connection: close\r\n");
    }
    out.put_slice(b"\r\n");
    out.split().freeze()
}

/// Serializes a complete local answer (status, headers, small body).
pub(crate) fn local_answer(resp: Response<ProxyBody>, close: bool) -> Bytes {
    let (parts, body) = resp.into_parts();
    let body = match body {
        ProxyBody::Full(Some(b)) => b,
        _ => Bytes::new(),
    };
    let mut out = BytesMut::with_capacity(128 + body.len());
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(parts.status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    out.put_slice(b"\r\n");
    for (n, v) in &parts.headers {
        put_header(&mut out, n.as_str().as_bytes(), v.as_bytes());
    }
    put_length(&mut out, body.len());
    if close {
        out.put_slice(b"connection: close\r\n");
    }
    out.put_slice(b"\r\n");
    out.put_slice(&body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::super::head::{parse_request, parse_response};
    use super::*;

    fn head(text: &str) -> Head {
        parse_request(&mut BytesMut::from(text.as_bytes()), 100)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_request_from_a_header_map_gets_host_length_and_one_cookie_line() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "old.example".parse().unwrap());
        headers.append("cookie", "a=1".parse().unwrap());
        headers.insert("x-one", "1".parse().unwrap());
        headers.append("cookie", "b=2".parse().unwrap());
        headers.insert("content-length", "99".parse().unwrap());
        let out = request_head_of(b"POST", b"/p?q=1", b"new.example", &headers, 3);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(
            text.starts_with("POST /p?q=1 HTTP/1.1\r\nhost: new.example\r\n"),
            "{text}"
        );
        assert!(text.contains("cookie: a=1; b=2\r\n"), "{text}");
        assert_eq!(text.matches("cookie").count(), 1, "{text}");
        assert!(text.contains("x-one: 1\r\n"), "{text}");
        assert!(!text.contains("old.example"), "{text}");
        assert!(text.ends_with("content-length: 3\r\n\r\n"), "{text}");
        // No body, none announced: no length.
        let out = request_head_of(b"GET", b"/", b"h", &http::HeaderMap::new(), 0);
        assert_eq!(&out[..], b"GET / HTTP/1.1\r\nhost: h\r\n\r\n");
        // A parse of it is a request head.
        parse_request(&mut BytesMut::from(&out[..]), 100)
            .unwrap()
            .unwrap();
    }

    #[test]
    fn upstream_request_drops_hop_by_hop_and_applies_changes() {
        let h = head(
            "GET /a HTTP/1.1\r\nHost: shop\r\nConnection: keep-alive, x-secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\nX-Drop: 1\r\nX-Keep: k\r\n\r\n",
        );
        let mut m = Mutation::default();
        m.set("x-route", "product");
        m.remove("x-drop");
        let changes = HeaderChanges::of(&m);
        let out = request_head(
            &mut BytesMut::new(),
            &h,
            &RequestParts {
                path: b"/b",
                host: None,
                client_ip: b"127.0.0.1",
                scheme: "http",
                request_id: Some(b"rid"),
                changes: &changes,
                body_len: 0,
            },
        );
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("GET /b HTTP/1.1\r\n"), "{text}");
        for gone in ["connection", "x-secret", "keep-alive", "x-drop"] {
            assert!(!text.contains(&format!("{gone}:")), "{gone} in {text}");
        }
        for kept in [
            "host: shop\r\n",
            "te: trailers\r\n",
            "x-keep: k\r\n",
            "x-forwarded-for: 10.0.0.1, 127.0.0.1\r\n",
            "x-forwarded-proto: http\r\n",
            "x-request-id: rid\r\n",
            "x-route: product\r\n",
        ] {
            assert!(text.contains(kept), "{kept} missing in {text}");
        }
        assert!(text.ends_with("\r\n\r\n"));
        assert!(!text.contains("content-length"), "{text}");
    }

    #[test]
    fn kept_lines_are_copied_as_sent() {
        // (A request line ending in a bare LF is refused by the parser.)
        let h = head(
            "POST /u HTTP/1.1\r\nHost: shop\r\nX-A:a  \r\nX-Empty:\r\nConnection: close\r\nX-B: b\r\nX-C: c\r\n\r\n",
        );
        let changes = HeaderChanges::default();
        let out = request_head(
            &mut BytesMut::new(),
            &h,
            &RequestParts {
                path: b"/u",
                host: None,
                client_ip: b"10.1.1.1",
                scheme: "https",
                request_id: None,
                changes: &changes,
                body_len: 0,
            },
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "POST /u HTTP/1.1\r\nhost: shop\r\nx-a:a  \r\nx-empty:\r\nx-b: b\r\nx-c: c\r\nx-forwarded-for: 10.1.1.1\r\nx-forwarded-proto: https\r\n\r\n"
        );
    }

    #[test]
    fn status_lines_other_than_plain_http_1_1_are_rewritten() {
        for (sent, want) in [
            ("HTTP/1.0 404 Not Found\r\n", "HTTP/1.1 404 Not Found\r\n"),
            ("HTTP/1.1 204\r\n", "HTTP/1.1 204 \r\n"),
            ("HTTP/1.1 200 OK\n", "HTTP/1.1 200 OK\r\n"),
            ("HTTP/1.1 503 Slow Down\r\n", "HTTP/1.1 503 Slow Down\r\n"),
        ] {
            let h = parse_response(&mut BytesMut::from(
                format!("{sent}x-a: 1\r\n\r\n").as_bytes(),
            ))
            .unwrap()
            .unwrap();
            let out = answer_head(
                &mut BytesMut::new(),
                &h,
                &HeaderChanges::default(),
                None,
                false,
                false,
            );
            assert_eq!(
                std::str::from_utf8(&out).unwrap(),
                format!("{want}x-a: 1\r\n\r\n"),
                "{sent:?}"
            );
        }
    }

    #[test]
    fn answer_head_keeps_framing_and_adds_close() {
        let h = parse_response(&mut BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nX-Backend: b\r\n\r\n"[..],
        ))
        .unwrap()
        .unwrap();
        let mut m = Mutation::default();
        m.remove("x-backend");
        m.set("x-served-by", "metaproxy");
        let out = answer_head(
            &mut BytesMut::new(),
            &h,
            &HeaderChanges::of(&m),
            Some("cart=1; Max-Age=3600"),
            true,
            false,
        );
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-served-by: metaproxy\r\nset-cookie: cart=1; Max-Age=3600\r\nconnection: close\r\n\r\n"
        );
    }
}
