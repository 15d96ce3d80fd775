//! Parsing an HTTP/1.1 head (request or response) out of the read buffer
//! with `httparse`, keeping offsets instead of copies: the head becomes one
//! frozen `Bytes` whose slices are the metadata values and the bytes sent on.
//! Header names are lower-cased in place (HTTP/1 names are case-insensitive;
//! metadata keys are lower-case).

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// Most headers the lean path parses; a listener allowing more hands such
/// requests to hyper.
pub(crate) const MAX_LEAN_HEADERS: usize = 128;

/// Largest request body the lean path reads whole before forwarding; larger
/// (and chunked) request bodies are streamed by the hyper path.
pub(crate) const MAX_LEAN_BODY: usize = 256 * 1024;

/// A parsed head: the bytes and where each part sits in them.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// The whole head, final empty line included, names lower-cased.
    pub bytes: Bytes,
    /// Request: the method. Response: the status code digits.
    pub first: Range<usize>,
    /// Request: the request-target. Response: the reason phrase.
    pub second: Range<usize>,
    /// `(name, value)` of each header, in order.
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    /// The minor HTTP version (`1` for HTTP/1.1).
    pub minor: u8,
}

impl Head {
    /// The bytes of `r`.
    pub(crate) fn at(&self, r: &Range<usize>) -> &[u8] {
        &self.bytes[r.clone()]
    }

    /// The first value of header `name` (lower-case).
    pub(crate) fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| self.at(n) == name)
            .map(|(_, v)| self.at(v))
    }

    /// How many times header `name` (lower-case) appears.
    pub(crate) fn count(&self, name: &[u8]) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| self.at(n) == name)
            .count()
    }

    /// Whether a `connection` header lists `token`.
    pub(crate) fn connection_has(&self, token: &[u8]) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| self.at(n) == b"connection")
            .flat_map(|(_, v)| self.at(v).split(|b| *b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
    }

    /// The single, valid `content-length`; `Err` when repeated with
    /// different values or not a number.
    pub(crate) fn content_length(&self) -> Result<Option<u64>, ()> {
        let mut found: Option<u64> = None;
        for (n, v) in &self.headers {
            if self.at(n) != b"content-length" {
                continue;
            }
            let text = std::str::from_utf8(self.at(v)).map_err(|_| ())?.trim();
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            let value: u64 = text.parse().map_err(|_| ())?;
            match found {
                Some(f) if f != value => return Err(()),
                _ => found = Some(value),
            }
        }
        Ok(found)
    }
}

/// Why a head could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeadError {
    /// More headers than the parser's array holds.
    #[error("too many headers")]
    TooManyHeaders,
    /// Anything else the grammar rejects.
    #[error("malformed head: {0}")]
    Malformed(&'static str),
}

fn describe(e: httparse::Error) -> HeadError {
    match e {
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
        httparse::Error::HeaderName => HeadError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HeadError::Malformed("invalid header value"),
        httparse::Error::NewLine => HeadError::Malformed("invalid line ending"),
        httparse::Error::Status => HeadError::Malformed("invalid status"),
        httparse::Error::Token => HeadError::Malformed("invalid token"),
        httparse::Error::Version => HeadError::Malformed("invalid HTTP version"),
    }
}

/// Where `part` (a slice httparse returned) sits in the buffer at `base`;
/// an empty range for an empty part (httparse may return a static "").
fn span(base: *const u8, part: &[u8]) -> Range<usize> {
    if part.is_empty() {
        return 0..0;
    }
    let start = (part.as_ptr() as usize).wrapping_sub(base as usize);
    start..start + part.len()
}

/// Lower-cases header names in place, then splits the head off `buf`.
fn finish(
    buf: &mut BytesMut,
    len: usize,
    first: Range<usize>,
    second: Range<usize>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    minor: u8,
) -> Head {
    for (n, _) in &headers {
        buf[n.clone()].make_ascii_lowercase();
    }
    Head {
        bytes: buf.split_to(len).freeze(),
        first,
        second,
        headers,
        minor,
    }
}

/// Parses a request head at the start of `buf`; `Ok(None)` when more bytes
/// are needed. On success the head is removed from `buf`.
pub(crate) fn parse_request(
    buf: &mut BytesMut,
    max_headers: usize,
) -> Result<Option<Head>, HeadError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_LEAN_HEADERS];
    let slots = &mut slots[..max_headers.min(MAX_LEAN_HEADERS)];
    let base = buf.as_ptr();
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(describe(e)),
    };
    let first = span(base, req.method.unwrap_or_default().as_bytes());
    let second = span(base, req.path.unwrap_or_default().as_bytes());
    let minor = req.version.unwrap_or(1);
    let headers = req
        .headers
        .iter()
        .map(|h| (span(base, h.name.as_bytes()), span(base, h.value)))
        .collect();
    Ok(Some(finish(buf, len, first, second, headers, minor)))
}

/// Parses a response head at the start of `buf` (see [`parse_request`]).
pub(crate) fn parse_response(buf: &mut BytesMut) -> Result<Option<Head>, HeadError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_LEAN_HEADERS];
    let base = buf.as_ptr();
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(describe(e)),
    };
    let code = resp.code.unwrap_or(0);
    // The status digits are the three bytes after "HTTP/1.x ".
    let first = 9..12;
    if buf
        .get(first.clone())
        .is_none_or(|d| d != code.to_string().as_bytes())
    {
        return Err(HeadError::Malformed("invalid status"));
    }
    let second = span(base, resp.reason.unwrap_or_default().as_bytes());
    let second = if second.start < 12 { 12..12 } else { second };
    let minor = resp.version.unwrap_or(1);
    let headers = resp
        .headers
        .iter()
        .map(|h| (span(base, h.name.as_bytes()), span(base, h.value)))
        .collect();
    Ok(Some(finish(buf, len, first, second, headers, minor)))
}

/// The status code of a response head.
pub(crate) fn status(head: &Head) -> u16 {
    let d = head.at(&head.first);
    d.iter().fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_head_offsets_and_lowercase_names() {
        let mut buf =
            BytesMut::from(&b"GET /a?b=1 HTTP/1.1\r\nHost: x.test\r\nX-User: Ann\r\n\r\nNEXT"[..]);
        let head = parse_request(&mut buf, 100).unwrap().unwrap();
        assert_eq!(&buf[..], b"NEXT");
        assert_eq!(head.at(&head.first), b"GET");
        assert_eq!(head.at(&head.second), b"/a?b=1");
        assert_eq!(head.header(b"host"), Some(&b"x.test"[..]));
        assert_eq!(head.header(b"x-user"), Some(&b"Ann"[..]));
        assert_eq!(head.minor, 1);
    }

    #[test]
    fn partial_and_bad_requests() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\r\n"[..]);
        assert_eq!(parse_request(&mut buf, 100).unwrap().map(|_| ()), None);
        let mut buf = BytesMut::from(&b"GARBAGE\x01 / HTTP/9\r\n\r\n"[..]);
        assert!(matches!(
            parse_request(&mut buf, 100),
            Err(HeadError::Malformed(_))
        ));
        let many: String = (0..5).map(|i| format!("x-{i}: v\r\n")).collect();
        let mut buf = BytesMut::from(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
        assert_eq!(
            parse_request(&mut buf, 4).map(|_| ()),
            Err(HeadError::TooManyHeaders)
        );
    }

    #[test]
    fn content_length_rules() {
        let parse = |text: &str| {
            let mut buf = BytesMut::from(text.as_bytes());
            parse_request(&mut buf, 100).unwrap().unwrap()
        };
        assert_eq!(parse("GET / HTTP/1.1\r\n\r\n").content_length(), Ok(None));
        assert_eq!(
            parse("POST / HTTP/1.1\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n")
                .content_length(),
            Ok(Some(12))
        );
        assert!(
            parse("POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n")
                .content_length()
                .is_err()
        );
        assert!(
            parse("POST / HTTP/1.1\r\ncontent-length: +3\r\n\r\n")
                .content_length()
                .is_err()
        );
    }

    #[test]
    fn response_head() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"[..],
        );
        let head = parse_response(&mut buf).unwrap().unwrap();
        assert_eq!(status(&head), 404);
        assert_eq!(head.at(&head.second), b"Not Found");
        assert!(head.connection_has(b"close"));
        assert_eq!(&buf[..], b"abc");
        let mut buf = BytesMut::from(&b"HTTP/1.1 204\r\n\r\n"[..]);
        let head = parse_response(&mut buf).unwrap().unwrap();
        assert_eq!(status(&head), 204);
        assert_eq!(head.at(&head.second), b"");
    }
}
