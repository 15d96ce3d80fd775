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
    /// The `content-length` (checked: digits only, repeats equal).
    length: Option<u64>,
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

/// The bits of the framing headers in [`WELL_KNOWN`].
const HOST: u16 = 1 << 0;
const CONTENT_LENGTH: u16 = 1 << 1;
const TRANSFER_ENCODING: u16 = 1 << 2;

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

/// The digits of a `content-length` value (optional whitespace around
/// them); `None` when it is anything else (a sign, a list, hex) or does
/// not fit.
fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = trim_ows(value);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// `bytes` without leading and trailing spaces and tabs (RFC 9110 OWS).
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Which side of an exchange a head comes from: the framing rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// A client's request.
    Request,
    /// An upstream's answer.
    Response,
}

/// Framing that two HTTP parsers could read differently (RFC 9112 §6–7,
/// RFC 9110 §8.6): such a head is refused, never forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FramingError {
    /// A `content-length` that is not exactly digits (or does not fit).
    #[error("{}", self.reason())]
    ContentLength,
    /// Repeated `content-length` headers with different values.
    #[error("{}", self.reason())]
    ContentLengthDiffers,
    /// A request with more than one `content-length` (even equal ones:
    /// nginx refuses them too; an answer may repeat an equal one).
    #[error("{}", self.reason())]
    ContentLengthRepeated,
    /// A `transfer-encoding` whose final coding is not `chunked`, or with
    /// `chunked` more than once.
    #[error("{}", self.reason())]
    NotChunked,
    /// A transfer-coding the proxy does not relay (`identity`, an unknown
    /// one, an empty list member; on a request anything but `chunked`).
    #[error("{}", self.reason())]
    UnknownCoding,
    /// A `transfer-encoding` in an HTTP/1.0 message.
    #[error("{}", self.reason())]
    TransferEncodingHttp10,
    /// An answer with both `content-length` and `transfer-encoding`.
    #[error("{}", self.reason())]
    LengthAndEncoding,
    /// A tab or another control byte in a `transfer-encoding` line.
    #[error("{}", self.reason())]
    TransferEncodingControl,
    /// A request head line ending in a bare LF.
    #[error("{}", self.reason())]
    BareLf,
    /// An HTTP/1.1 request without a `host`.
    #[error("{}", self.reason())]
    NoHost,
    /// A request with more than one `host`.
    #[error("{}", self.reason())]
    ManyHosts,
}

impl FramingError {
    /// A short description, for the error answer.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            FramingError::ContentLength => "invalid content-length",
            FramingError::ContentLengthDiffers => "content-length values differ",
            FramingError::ContentLengthRepeated => "more than one content-length",
            FramingError::NotChunked => "transfer-encoding does not end in chunked",
            FramingError::UnknownCoding => "unsupported transfer-coding",
            FramingError::TransferEncodingHttp10 => "transfer-encoding in an HTTP/1.0 message",
            FramingError::LengthAndEncoding => "both content-length and transfer-encoding",
            FramingError::TransferEncodingControl => "control character in transfer-encoding",
            FramingError::BareLf => "header line not ending in CRLF",
            FramingError::NoHost => "no host header",
            FramingError::ManyHosts => "more than one host header",
        }
    }
}

/// Transfer-codings an answer may carry before its final `chunked`.
const KNOWN_CODINGS: [&[u8]; 5] = [b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"];

/// The `transfer-encoding` members seen so far (over repeated headers).
#[derive(Debug, Default)]
struct Codings {
    /// Any member seen.
    any: bool,
    /// The last member is `chunked`.
    last_chunked: bool,
}

impl Codings {
    /// Takes in one `transfer-encoding` line: `rest` is everything after
    /// its colon up to the line end.
    fn add(&mut self, rest: &[u8], side: Side) -> Result<(), FramingError> {
        if rest.iter().any(|b| *b == b'\t' || *b < 0x20 || *b == 0x7f) {
            return Err(FramingError::TransferEncodingControl);
        }
        for member in rest.split(|b| *b == b',') {
            let member = trim_ows(member);
            if member.eq_ignore_ascii_case(b"chunked") {
                if self.last_chunked {
                    return Err(FramingError::NotChunked);
                }
                // A request may carry `chunked` alone: the proxy decodes
                // no other coding (and would drop it silently).
                if side == Side::Request && self.any {
                    return Err(FramingError::UnknownCoding);
                }
                self.last_chunked = true;
            } else if side == Side::Response
                && KNOWN_CODINGS.iter().any(|k| member.eq_ignore_ascii_case(k))
            {
                if self.last_chunked {
                    return Err(FramingError::NotChunked);
                }
            } else {
                return Err(FramingError::UnknownCoding);
            }
            self.any = true;
        }
        Ok(())
    }
}

/// Checks the head of an HTTP/1.x request hyper parsed, for what hyper
/// accepts and the lean path does not: an HTTP/1.1 request has exactly one
/// `host` (an HTTP/1.0 one at most one), at most one `content-length`, and
/// a `transfer-encoding` is `chunked` alone (hyper takes any list ending in
/// `chunked`). hyper itself
/// refuses bad or differing lengths, whitespace before a colon, obs-fold,
/// control bytes in values, `transfer-encoding` on HTTP/1.0 or not ending
/// in `chunked`; it drops a `content-length` sent with `transfer-encoding`
/// and closes the connection after the answer.
pub(crate) fn check_parsed_request(
    version: http::Version,
    headers: &http::HeaderMap,
) -> Result<(), FramingError> {
    let hosts = headers.get_all(http::header::HOST).iter().count();
    match (version, hosts) {
        (http::Version::HTTP_11, 0) => return Err(FramingError::NoHost),
        (_, 0 | 1) => {}
        _ => return Err(FramingError::ManyHosts),
    }
    if headers.get_all(http::header::CONTENT_LENGTH).iter().count() > 1 {
        return Err(FramingError::ContentLengthRepeated);
    }
    let mut codings = Codings::default();
    for value in &headers.get_all(http::header::TRANSFER_ENCODING) {
        codings.add(value.as_bytes(), Side::Request)?;
    }
    if codings.any && !codings.last_chunked {
        return Err(FramingError::NotChunked);
    }
    Ok(())
}

/// Checks the framing headers of an HTTP/1.x answer hyper parsed, for
/// what hyper accepts and the lean path does not: a `transfer-encoding`
/// with unknown codings or not ending in `chunked` (hyper reads such a body
/// to the connection's end), with a `content-length` too (hyper ignores the
/// length but keeps the header), or in an HTTP/1.0 answer.
pub(crate) fn check_parsed_answer(
    version: http::Version,
    headers: &http::HeaderMap,
) -> Result<(), FramingError> {
    let mut codings = Codings::default();
    for value in &headers.get_all(http::header::TRANSFER_ENCODING) {
        codings.add(value.as_bytes(), Side::Response)?;
    }
    if !codings.any {
        return Ok(());
    }
    if version == http::Version::HTTP_10 {
        return Err(FramingError::TransferEncodingHttp10);
    }
    if !codings.last_chunked {
        return Err(FramingError::NotChunked);
    }
    if headers.contains_key(http::header::CONTENT_LENGTH) {
        return Err(FramingError::LengthAndEncoding);
    }
    Ok(())
}

/// The bytes after a header's colon up to the end of its line.
fn line_rest(bytes: &[u8], colon: usize) -> &[u8] {
    let rest = bytes.get(colon + 1..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(rest.len());
    &rest[..end]
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

    /// The `content-length`. Parsing refused any invalid or differing
    /// one, so this is never `Err` (the type is the callers' contract).
    pub(crate) fn content_length(&self) -> Result<Option<u64>, ()> {
        Ok(self.length)
    }

    /// Whether the head has a `transfer-encoding` (checked: it ends in
    /// `chunked`).
    pub(crate) fn is_chunked(&self) -> bool {
        self.seen & TRANSFER_ENCODING != 0
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

/// Lower-cases header names in place and checks the framing headers (in
/// the same pass), then splits the head off `buf`.
fn finish(
    buf: &mut BytesMut,
    len: usize,
    first: Range<usize>,
    second: Range<usize>,
    headers: HeaderSpans,
    minor: u8,
    side: Side,
) -> Result<Head, HeadError> {
    let mut seen = 0;
    let mut length: Option<u64> = None;
    let mut codings = Codings::default();
    let mut hosts = 0u32;
    let mut problem = None;
    if side == Side::Request && buf.get(len.saturating_sub(4)..len) != Some(b"\r\n\r\n") {
        problem = Some(FramingError::BareLf);
    }
    for (n, v) in &headers {
        // Every request line ends in CRLF: the previous line's end is just
        // before this name.
        if side == Side::Request && (n.start < 2 || buf[n.start - 2] != b'\r') {
            problem = problem.or(Some(FramingError::BareLf));
        }
        let name = &mut buf[n.clone()];
        name.make_ascii_lowercase();
        let bit = well_known_bit(name);
        seen |= bit;
        if bit == HOST {
            hosts += 1;
        } else if bit == CONTENT_LENGTH {
            let value = parse_length(&buf[v.clone()]);
            let checked = match (value, length) {
                (None, _) => Err(FramingError::ContentLength),
                (Some(a), Some(b)) if a != b => Err(FramingError::ContentLengthDiffers),
                (Some(_), Some(_)) if side == Side::Request => {
                    Err(FramingError::ContentLengthRepeated)
                }
                (Some(a), _) => Ok(a),
            };
            match checked {
                Ok(a) => length = Some(a),
                Err(e) => problem = problem.or(Some(e)),
            }
        } else if bit == TRANSFER_ENCODING
            && let Err(e) = codings.add(line_rest(buf, n.end), side)
        {
            problem = problem.or(Some(e));
        }
    }
    if codings.any {
        if minor == 0 {
            problem = problem.or(Some(FramingError::TransferEncodingHttp10));
        } else if !codings.last_chunked {
            problem = problem.or(Some(FramingError::NotChunked));
        } else if side == Side::Response && length.is_some() {
            problem = problem.or(Some(FramingError::LengthAndEncoding));
        }
    }
    if side == Side::Request && minor == 1 {
        match hosts {
            0 => problem = problem.or(Some(FramingError::NoHost)),
            1 => {}
            _ => problem = problem.or(Some(FramingError::ManyHosts)),
        }
    } else if side == Side::Request && hosts > 1 {
        problem = problem.or(Some(FramingError::ManyHosts));
    }
    if let Some(e) = problem {
        spare::return_header_spans(headers);
        return Err(HeadError::Malformed(e.reason()));
    }
    Ok(Head {
        bytes: buf.split_to(len).freeze(),
        first,
        second,
        headers,
        minor,
        length,
        seen,
    })
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
    finish(buf, len, first, second, headers, minor, Side::Request).map(Some)
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
    finish(buf, len, first, second, headers, minor, Side::Response).map(Some)
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

    fn request(text: &[u8]) -> Result<Head, HeadError> {
        let mut buf = BytesMut::from(text);
        parse_request(&mut buf, 100).map(|h| h.expect("complete head"))
    }

    fn response(text: &[u8]) -> Result<Head, HeadError> {
        let mut buf = BytesMut::from(text);
        parse_response(&mut buf).map(|h| h.expect("complete head"))
    }

    fn refused(e: FramingError) -> Result<(), HeadError> {
        Err(HeadError::Malformed(e.reason()))
    }

    #[test]
    fn content_length_rules() {
        let length = |text: &str| request(text.as_bytes()).map(|h| h.content_length());
        assert_eq!(length("GET / HTTP/1.1\r\nhost: a\r\n\r\n"), Ok(Ok(None)));
        assert_eq!(
            length(
                "POST / HTTP/1.1\r\nhost: a\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n"
            ),
            Err(HeadError::Malformed(
                FramingError::ContentLengthRepeated.reason()
            ))
        );
        assert_eq!(
            length("POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"),
            Err(HeadError::Malformed(
                FramingError::ContentLengthDiffers.reason()
            ))
        );
        for bad in [
            "+3",
            "",
            "1 2",
            "0x10",
            "99999999999999999999",
            "-1",
            "3, 3",
            "3,4",
            "3.0",
        ] {
            let text = format!("POST / HTTP/1.1\r\nhost: a\r\ncontent-length: {bad}\r\n\r\n");
            assert_eq!(
                length(&text),
                Err(HeadError::Malformed(FramingError::ContentLength.reason())),
                "{bad:?}"
            );
        }
        assert_eq!(
            length("POST / HTTP/1.1\r\nhost: a\r\nContent-Length:  007 \r\n\r\n"),
            Ok(Ok(Some(7)))
        );
        assert_eq!(
            length("POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 18446744073709551615\r\n\r\n"),
            Ok(Ok(Some(u64::MAX)))
        );
    }

    #[test]
    fn request_framing_verdicts() {
        use FramingError as F;
        let cases: &[(&[u8], Result<(), FramingError>)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.1\r\n\r\n", Err(F::NoHost)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", Err(F::ManyHosts)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", Err(F::ManyHosts)),
            (b"GET / HTTP/1.0\r\n\r\n", Ok(())),
            (b"GET / HTTP/1.0\r\nhost: a\r\nhost: b\r\n\r\n", Err(F::ManyHosts)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", Ok(())),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked \r\n\r\n", Ok(())),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n", Err(F::TransferEncodingControl)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t\r\n\r\n", Err(F::TransferEncodingControl)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", Err(F::UnknownCoding)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n", Err(F::UnknownCoding)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Err(F::UnknownCoding)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Err(F::UnknownCoding)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Err(F::NotChunked)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", Err(F::NotChunked)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", Err(F::UnknownCoding)),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", Err(F::UnknownCoding)),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Err(F::TransferEncodingHttp10)),
            // The CL+TE choice: the length is dropped and the body read as
            // chunked (by hyper, which then closes the connection).
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Ok(())),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n", Err(F::ContentLength)),
            (b"GET / HTTP/1.1\nHost: a\r\n\r\n", Err(F::BareLf)),
            (b"GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n", Err(F::BareLf)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX:\n\r\n", Err(F::BareLf)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\n", Err(F::BareLf)),
            (b"GET / HTTP/1.1\n\n", Err(F::BareLf)),
        ];
        for (text, want) in cases {
            let got = request(text).map(|_| ());
            let want = match want {
                Ok(()) => Ok(()),
                Err(e) => refused(*e),
            };
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn the_grammar_httparse_refuses() {
        for text in [
            &b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\tfolded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x0bb\r\n\r\n",
        ] {
            assert!(
                matches!(request(text), Err(HeadError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn response_framing_verdicts() {
        use FramingError as F;
        let cases: &[(&[u8], Result<(), FramingError>)] = &[
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Ok(()),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n",
                Ok(()),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 3\r\n\r\n",
                Err(F::ContentLengthDiffers),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2 3\r\n\r\n",
                Err(F::ContentLength),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                Err(F::NotChunked),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                Err(F::NotChunked),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
                Err(F::UnknownCoding),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(F::LengthAndEncoding),
            ),
            (
                b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(F::TransferEncodingHttp10),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\tchunked\r\n\r\n",
                Err(F::TransferEncodingControl),
            ),
        ];
        for (text, want) in cases {
            let got = response(text).map(|_| ());
            let want = match want {
                Ok(()) => Ok(()),
                Err(e) => refused(*e),
            };
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn answers_hyper_parsed() {
        use http::{HeaderMap, HeaderValue, Version};
        let map = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (n, v) in pairs {
                m.append(*n, HeaderValue::from_static(v));
            }
            m
        };
        let check = check_parsed_answer;
        let v11 = Version::HTTP_11;
        assert_eq!(check(v11, &map(&[("content-length", "3")])), Ok(()));
        assert_eq!(
            check(v11, &map(&[("transfer-encoding", "gzip, chunked")])),
            Ok(())
        );
        assert_eq!(
            check(v11, &map(&[("transfer-encoding", "gzip")])),
            Err(FramingError::NotChunked)
        );
        assert_eq!(
            check(v11, &map(&[("transfer-encoding", "identity")])),
            Err(FramingError::UnknownCoding)
        );
        assert_eq!(
            check(
                v11,
                &map(&[("transfer-encoding", "chunked"), ("content-length", "3")])
            ),
            Err(FramingError::LengthAndEncoding)
        );
        assert_eq!(
            check(Version::HTTP_10, &map(&[("transfer-encoding", "chunked")])),
            Err(FramingError::TransferEncodingHttp10)
        );
    }

    #[test]
    fn requests_hyper_parsed() {
        use http::{HeaderMap, HeaderValue, Version};
        let map = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (n, v) in pairs {
                m.append(*n, HeaderValue::from_static(v));
            }
            m
        };
        let check = check_parsed_request;
        assert_eq!(check(Version::HTTP_11, &map(&[("host", "a")])), Ok(()));
        assert_eq!(
            check(Version::HTTP_11, &map(&[])),
            Err(FramingError::NoHost)
        );
        assert_eq!(check(Version::HTTP_10, &map(&[])), Ok(()));
        assert_eq!(
            check(Version::HTTP_10, &map(&[("host", "a"), ("host", "b")])),
            Err(FramingError::ManyHosts)
        );
        let te = |v| map(&[("host", "a"), ("transfer-encoding", v)]);
        assert_eq!(check(Version::HTTP_11, &te("chunked")), Ok(()));
        assert_eq!(
            check(Version::HTTP_11, &te("gzip, chunked")),
            Err(FramingError::UnknownCoding)
        );
        assert_eq!(
            check(Version::HTTP_11, &te("identity, chunked")),
            Err(FramingError::UnknownCoding)
        );
        assert_eq!(
            check(Version::HTTP_11, &te("chunked\t")),
            Err(FramingError::TransferEncodingControl)
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
        assert_eq!(well_known_bit(b"host"), HOST);
        assert_eq!(well_known_bit(b"content-length"), CONTENT_LENGTH);
        assert_eq!(well_known_bit(b"transfer-encoding"), TRANSFER_ENCODING);
    }

    #[test]
    fn well_known_names_found_whatever_their_case_and_absent_ones_skipped() {
        let mut buf = BytesMut::from(
            &b"GET / HTTP/1.1\r\nHOST: a\r\nConnection: Close\r\nX-Other: o\r\nX-other: p\r\n\r\n"
                [..],
        );
        let head = parse_request(&mut buf, 100).unwrap().unwrap();
        assert_eq!(head.count(b"x-other"), 2);
        assert_eq!(head.count(b"host"), 1);
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
