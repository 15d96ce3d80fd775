//! Entry points for the cargo-fuzz targets in `fuzz/` (not a public API):
//! thin wrappers over the crate-private HTTP/1 parsers, so that the fuzz
//! crate reaches them without making their types public.

use bytes::BytesMut;

use crate::http::h1::{
    BodyDecoder, ChunkScanner, Framing, Head, Piece, parse_request, parse_response, status,
};

/// What a parsed HTTP/1 head looked like, as far as the fuzz targets check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadSummary {
    /// Bytes of the head (final empty line included) taken off the buffer.
    pub len: usize,
    /// The minor HTTP version.
    pub minor: u8,
    /// How many headers it has.
    pub headers: usize,
    /// The checked `content-length`.
    pub content_length: Option<u64>,
    /// Whether it has a (checked) `transfer-encoding: chunked`.
    pub chunked: bool,
    /// A response's status code (0 for a request).
    pub status: u16,
}

/// Parses a request head at the start of `buf` with the lean path's parser
/// (`max_headers` at most); `Ok(None)` when more bytes are needed, `Err`
/// with the reason when it is refused. On success the head is removed
/// from `buf`.
pub fn parse_request_head(
    buf: &mut BytesMut,
    max_headers: usize,
) -> Result<Option<HeadSummary>, String> {
    let head = parse_request(buf, max_headers).map_err(|e| e.to_string())?;
    Ok(head.map(|h| summary(&h, 0)))
}

/// Parses a response head at the start of `buf` (see [`parse_request_head`]).
pub fn parse_response_head(buf: &mut BytesMut) -> Result<Option<HeadSummary>, String> {
    let head = parse_response(buf).map_err(|e| e.to_string())?;
    Ok(head.map(|h| {
        let code = status(&h);
        summary(&h, code)
    }))
}

/// Walks a chunked body given in `pieces` (read one after the other) with
/// the lean path's scanner: `Ok(Some(n))` when the body ends after `n`
/// bytes, `Ok(None)` when it has not ended, `Err` with the reason when it
/// breaks the grammar.
pub fn chunked_body_end<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<usize>, String> {
    let mut scanner = ChunkScanner::default();
    let mut used = 0;
    for piece in pieces {
        let n = scanner.advance(piece).map_err(|e| e.to_string())?;
        used += n;
        if scanner.is_done() {
            return Ok(Some(used));
        }
        assert_eq!(
            n,
            piece.len(),
            "the scanner stopped inside an unfinished body"
        );
    }
    Ok(None)
}

/// What the chunked-body decoder (HTTP/2 clients' answers from HTTP/1.1
/// upstreams) made of a body: its data, its trailer fields, and how many
/// bytes followed its end (`None` while it has not ended).
pub type DecodedBody = (Vec<u8>, Vec<(String, String)>, Option<usize>);

/// Decodes a chunked body given in `pieces` (read one after the other)
/// with that decoder; `Err` with the reason when it breaks the grammar.
pub fn chunked_body_decode<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Result<DecodedBody, String> {
    let mut decoder = BodyDecoder::new(Framing::Chunked);
    let mut buf = BytesMut::new();
    let (mut data, mut trailers) = (Vec::new(), Vec::new());
    for piece in pieces {
        buf.extend_from_slice(piece);
        while let Some(p) = decoder.next(&mut buf).map_err(|e| e.to_string())? {
            match p {
                Piece::Data(d) => data.extend_from_slice(&d),
                Piece::Trailers(t) => trailers.extend(t.iter().map(|(n, v)| {
                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (n.to_string(), v)
                })),
            }
        }
    }
    Ok((data, trailers, decoder.is_done().then_some(buf.len())))
}

/// The summary of `head`, running every lookup the lean path does.
fn summary(head: &Head, status: u16) -> HeadSummary {
    for name in [&b"host"[..], b"expect", b"x-request-id", b"x-other"] {
        let _ = head.header(name);
        let _ = head.count(name);
    }
    let _ = head.connection_has(b"close");
    let _ = (head.at(&head.first), head.at(&head.second));
    HeadSummary {
        len: head.bytes.len(),
        minor: head.minor,
        headers: head.headers.len(),
        content_length: head.content_length().ok().flatten(),
        chunked: head.is_chunked(),
        status,
    }
}
