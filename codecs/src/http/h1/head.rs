//! Parsing an HTTP/1.1 head (request or response) out of the read buffer
//! with `httparse`, keeping offsets instead of copies: the head becomes one
//! frozen `Bytes` whose slices are the metadata values and the bytes sent on.
//! Header names are lower-cased in place (HTTP/1 names are case-insensitive;
//! metadata keys are lower-case).

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::spare::{self, HeaderSpans};

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
    pub headers: HeaderSpans,
    /// The minor HTTP version (`1` for HTTP/1.1).
    pub minor: u8,
    /// Which of the [`WELL_KNOWN`] names appear: a lookup of one that does
    /// not costs no scan.
    seen: u16,
}

/// Header names the lean path looks up on every request, each with its
/// bit in [`Head`]'s `seen` set.
const WELL_KNOWN: [&[u8]; 10] = [
    b"host",
    b"content-length",
    b"transfer-encoding",
    b"connection",
    b"expect",
    b"upgrade",
    b"x-request-id",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"grpc-status",
];

/// Bit `n` is set when some [`WELL_KNOWN`] name is `n` bytes long.
const WELL_KNOWN_LENGTHS: u32 = {
    let mut lengths = 0;
    let mut i = 0;
    while i < WELL_KNOWN.len() {
        lengths |= 1 << WELL_KNOWN[i].len();
        i += 1;
    }
    lengths
};

/// The bit of a well-known (lower-case) name; 0 for any other name.
fn well_known_bit(name: &[u8]) -> u16 {
    // Most names are not well-known: their length alone says so.
    if name.len() >= 32 || WELL_KNOWN_LENGTHS & (1 << name.len()) == 0 {
        return 0;
    }
    WELL_KNOWN
        .iter()
        .position(|k| *k == name)
        .map_or(0, |i| 1 << i)
}

/// The digits of a `content-length` value (surrounding whitespace
/// allowed); `None` when it is not a number or does not fit.
fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

impl Head {
    /// The bytes of `r`.
    pub(crate) fn at(&self, r: &Range<usize>) -> &[u8] {
        &self.bytes[r.clone()]
    }

    /// Whether header `name` (lower-case) may appear: false only for a
    /// well-known name the head does not have.
    pub(crate) fn may_have(&self, name: &[u8]) -> bool {
        let bit = well_known_bit(name);
        bit == 0 || self.seen & bit != 0
    }

    /// The first value of header `name` (lower-case).
    pub(crate) fn header(&self, name: &[u8]) -> Option<&[u8]> {
        if !self.may_have(name) {
            return None;
        }
        self.headers
            .iter()
            .find(|(n, _)| self.at(n) == name)
            .map(|(_, v)| self.at(v))
    }

    /// How many times header `name` (lower-case) appears.
    pub(crate) fn count(&self, name: &[u8]) -> usize {
        if !self.may_have(name) {
            return 0;
        }
        self.headers
            .iter()
            .filter(|(n, _)| self.at(n) == name)
            .count()
    }

    /// Whether a `connection` header lists `token`.
    pub(crate) fn connection_has(&self, token: &[u8]) -> bool {
        if !self.may_have(b"connection") {
            return false;
        }
        self.headers
            .iter()
            .filter(|(n, _)| self.at(n) == b"connection")
            .flat_map(|(_, v)| self.at(v).split(|b| *b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
    }

    /// The single, valid `content-length`; `Err` when repeated with
    /// different values or not a number.
    pub(crate) fn content_length(&self) -> Result<Option<u64>, ()> {
        if !self.may_have(b"content-length") {
            return Ok(None);
        }
        let mut found: Option<u64> = None;
        for (n, v) in &self.headers {
            if self.at(n) != b"content-length" {
                continue;
            }
            let value = parse_length(self.at(v)).ok_or(())?;
            match found {
                Some(f) if f != value => return Err(()),
                _ => found = Some(value),
            }
        }
        Ok(found)
    }
}

impl Drop for Head {
    fn drop(&mut self) {
        spare::return_header_spans(std::mem::take(&mut self.headers));
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
    headers: HeaderSpans,
    minor: u8,
) -> Head {
    let mut seen = 0;
    for (n, _) in &headers {
        let name = &mut buf[n.clone()];
        name.make_ascii_lowercase();
        seen |= well_known_bit(name);
    }
    Head {
        bytes: buf.split_to(len).freeze(),
        first,
        second,
        headers,
        minor,
        seen,
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
    let mut headers = spare::header_spans();
    headers.extend(
        req.headers
            .iter()
            .map(|h| (span(base, h.name.as_bytes()), span(base, h.value))),
    );
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
    let digits = [
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ];
    if code > 999 || buf.get(first.clone()).is_none_or(|d| d != digits) {
        return Err(HeadError::Malformed("invalid status"));
    }
    let second = span(base, resp.reason.unwrap_or_default().as_bytes());
    let second = if second.start < 12 { 12..12 } else { second };
    let minor = resp.version.unwrap_or(1);
    let mut headers = spare::header_spans();
    headers.extend(
        resp.headers
            .iter()
            .map(|h| (span(base, h.name.as_bytes()), span(base, h.value))),
    );
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
        for bad in ["+3", "", "1 2", "0x10", "99999999999999999999", "-1"] {
            let text = format!("POST / HTTP/1.1\r\ncontent-length: {bad}\r\n\r\n");
            assert!(parse(&text).content_length().is_err(), "{bad:?}");
        }
        assert_eq!(
            parse("POST / HTTP/1.1\r\nContent-Length:  007 \r\n\r\n").content_length(),
            Ok(Some(7))
        );
        assert_eq!(
            parse("POST / HTTP/1.1\r\ncontent-length: 18446744073709551615\r\n\r\n")
                .content_length(),
            Ok(Some(u64::MAX))
        );
    }

    #[test]
    fn every_well_known_name_has_its_bit() {
        for (i, name) in WELL_KNOWN.iter().enumerate() {
            assert_eq!(
                well_known_bit(name),
                1 << i,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
        assert_eq!(well_known_bit(b"x-user"), 0);
    }

    #[test]
    fn well_known_names_found_whatever_their_case_and_absent_ones_skipped() {
        let mut buf = BytesMut::from(
            &b"GET / HTTP/1.1\r\nHOST: a\r\nConnection: Close\r\nX-Other: o\r\nhost: b\r\n\r\n"[..],
        );
        let head = parse_request(&mut buf, 100).unwrap().unwrap();
        assert_eq!(head.count(b"host"), 2);
        assert_eq!(head.header(b"host"), Some(&b"a"[..]));
        assert!(head.connection_has(b"close"));
        assert!(head.may_have(b"x-anything"));
        assert!(!head.may_have(b"transfer-encoding"));
        assert_eq!(head.header(b"expect"), None);
        assert_eq!(head.header(b"x-other"), Some(&b"o"[..]));
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
