//! An HTTP/1.1 answer body as data: its framing taken off (chunk sizes
//! and extensions dropped, a chunked body's trailer fields kept as
//! trailers), each piece of data a slice of the connection's read buffer. For clients that are not HTTP/1.1 (an
//! HTTP/2 client's answer from an HTTP/1.1 upstream): the lean path's own
//! clients get the body relayed as framed instead.

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use super::chunked::{ChunkError, ChunkScanner};
use super::exchange::Framing;

/// The most trailer-section bytes kept; fields past it are dropped (each
/// line is bounded by the chunk scanner).
const MAX_TRAILERS: usize = 16 * 1024;

/// What a decoder takes out of the buffer.
#[derive(Debug, PartialEq)]
pub(crate) enum Piece {
    /// Body data.
    Data(Bytes),
    /// A chunked body's trailer fields (given once, at its end).
    Trailers(HeaderMap),
}

/// Where an answer body stands.
#[derive(Debug)]
enum State {
    /// `content-length` bytes still to come.
    Length(u64),
    /// Chunked: the scanner tells data from framing; the trailer section's
    /// bytes are kept as they pass.
    Chunked(ChunkScanner, Vec<u8>),
    /// Until the upstream closes.
    Close,
    /// The body is complete.
    Done,
}

/// Takes an answer body's data out of the bytes read for it.
#[derive(Debug)]
pub(crate) struct BodyDecoder(State);

/// The upstream closed before the body was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("upstream closed the connection before the answer body was complete")]
pub(crate) struct Truncated;

impl BodyDecoder {
    /// A decoder for a body delimited by `framing`.
    pub(crate) fn new(framing: Framing) -> Self {
        Self(match framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(ChunkScanner::default(), Vec::new()),
            Framing::Close => State::Close,
        })
    }

    /// Whether the whole body has been taken.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.0, State::Done)
    }

    /// The body's exact remaining length, when its framing says.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.0 {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// The next piece in `buf` (data split off it, or the trailers); `None`
    /// when `buf` holds none yet (or the body is done). Chunk framing is
    /// consumed from `buf` as it is read; bytes after the body's end stay
    /// there.
    pub(crate) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Piece>, ChunkError> {
        match &mut self.0 {
            State::Done => Ok(None),
            State::Length(left) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = usize::try_from(*left).map_or(buf.len(), |l| l.min(buf.len()));
                *left -= n as u64;
                if *left == 0 {
                    self.0 = State::Done;
                }
                Ok(Some(Piece::Data(buf.split_to(n).freeze())))
            }
            State::Close => Ok((!buf.is_empty()).then(|| Piece::Data(buf.split().freeze()))),
            State::Chunked(scanner, trailer) => loop {
                if scanner.is_done() {
                    let trailers = parse_trailers(trailer);
                    self.0 = State::Done;
                    return Ok((!trailers.is_empty()).then_some(Piece::Trailers(trailers)));
                }
                if buf.is_empty() {
                    return Ok(None);
                }
                let left = scanner.data_left();
                if left > 0 {
                    let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let data = buf.split_to(n).freeze();
                    scanner.advance(&data)?;
                    return Ok(Some(Piece::Data(data)));
                }
                // Framing: one byte at a time, so the scanner stops where
                // the next chunk's data (or the next message) begins.
                scanner.advance(&buf[..1])?;
                if scanner.in_trailers() && trailer.len() < MAX_TRAILERS {
                    trailer.push(buf[0]);
                }
                bytes::Buf::advance(buf, 1);
            },
        }
    }

    /// The upstream closed: the end of a close-delimited body, else a
    /// truncated one.
    pub(crate) fn closed(&mut self) -> Result<(), Truncated> {
        match self.0 {
            State::Close | State::Done => {
                self.0 = State::Done;
                Ok(())
            }
            _ => Err(Truncated),
        }
    }
}

/// The fields of a trailer section (`name: value` lines, CRLF-ended, as
/// the chunk scanner checked them); fields that are not valid, or that a
/// trailer may not carry (framing, routing), are dropped.
fn parse_trailers(section: &[u8]) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    for line in section.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        else {
            continue;
        };
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "host" | "trailer" | "connection"
        ) {
            trailers.append(name, value);
        }
    }
    trailers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `decoder` takes out of `input` fed in pieces of `step`
    /// bytes, and what is left in the buffer.
    fn decode(framing: Framing, input: &[u8], step: usize) -> (Vec<u8>, bool, Vec<u8>) {
        let mut decoder = BodyDecoder::new(framing);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            while let Some(piece) = decoder.next(&mut buf).unwrap() {
                match piece {
                    Piece::Data(data) => {
                        assert!(!data.is_empty());
                        out.extend_from_slice(&data);
                    }
                    Piece::Trailers(t) => {
                        for (n, v) in &t {
                            out.extend_from_slice(
                                format!("[{n}={}]", v.to_str().unwrap()).as_bytes(),
                            );
                        }
                    }
                }
            }
        }
        (out, decoder.is_done(), buf.to_vec())
    }

    #[test]
    fn a_chunked_body_is_its_data_in_any_pieces() {
        let input = b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1 \r\ncontent-length: 9\r\nx-u:2\r\n\r\nNEXT";
        for step in 1..input.len() {
            let (out, done, left) = decode(Framing::Chunked, input, step);
            assert_eq!(
                std::str::from_utf8(&out).unwrap(),
                "hello 0123456789[x-t=1][x-u=2]",
                "step {step}"
            );
            assert!(done, "step {step}");
            assert_eq!(left, b"NEXT", "step {step}");
        }
    }

    #[test]
    fn a_length_body_stops_at_its_length() {
        for step in 1..12 {
            let (out, done, left) = decode(Framing::Length(7), b"abcdefgHTTP", step);
            assert_eq!(out, b"abcdefg");
            assert!(done);
            assert_eq!(left, b"HTTP");
        }
        let mut d = BodyDecoder::new(Framing::Length(7));
        assert_eq!(d.remaining(), Some(7));
        assert_eq!(d.closed(), Err(Truncated));
    }

    #[test]
    fn a_close_delimited_body_ends_when_the_upstream_closes() {
        let (out, done, _) = decode(Framing::Close, b"all of it", 4);
        assert_eq!(out, b"all of it");
        assert!(!done);
        let mut d = BodyDecoder::new(Framing::Close);
        assert_eq!(d.closed(), Ok(()));
        assert!(d.is_done());
    }

    #[test]
    fn broken_chunk_framing_is_an_error() {
        let mut d = BodyDecoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&b"zz\r\n"[..]);
        assert_eq!(d.next(&mut buf), Err(ChunkError::Size));
        let mut d = BodyDecoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&b"2\r\nabX"[..]);
        assert_eq!(
            d.next(&mut buf).unwrap(),
            Some(Piece::Data(Bytes::from_static(b"ab")))
        );
        assert_eq!(d.next(&mut buf), Err(ChunkError::DataEnd));
        // A truncated chunked body.
        assert_eq!(d.closed(), Err(Truncated));
    }

    #[test]
    fn no_body_is_done_from_the_start() {
        for framing in [Framing::None, Framing::Length(0)] {
            let d = BodyDecoder::new(framing);
            assert!(d.is_done());
        }
    }
}
