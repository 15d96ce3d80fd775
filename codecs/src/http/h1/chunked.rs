//! Finding where a chunked body ends without decoding it: the proxy relays
//! the chunks verbatim (sizes, extensions, trailers and all) and only needs
//! to know which byte is the last one of the message.

/// A chunked body that breaks the grammar (RFC 9112 §7.1), read strictly:
/// a chunk-size line is hex digits, optional `;` extensions and CRLF (no
/// whitespace after the size, no bare LF); every line ends in CRLF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChunkError {
    /// A chunk size that is missing or not hexadecimal, or a byte other
    /// than `;` or CR after it (whitespace included).
    #[error("bad chunk size")]
    Size,
    /// A chunk size that does not fit in 64 bits.
    #[error("chunk size too large")]
    Overflow,
    /// A control byte in a chunk extension.
    #[error("bad chunk extension")]
    Extension,
    /// A line ending in a bare LF, or a CR not followed by LF.
    #[error("chunk line not ending in CRLF")]
    LineEnd,
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    DataEnd,
    /// A chunk-size line or trailer line longer than allowed.
    #[error("chunk line too long")]
    LineTooLong,
}

/// The longest chunk-size line (extensions included) or trailer line accepted.
const MAX_LINE: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size { value: u64, digits: bool },
    /// Inside the extensions, up to the line's CR.
    Extension { value: u64 },
    /// After the size line's CR: LF expected.
    SizeLf { value: u64 },
    /// Inside a chunk's data, `left` bytes to go.
    Data { left: u64 },
    /// After the data: CR expected.
    DataCr,
    /// After the data's CR: LF expected.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// A trailer line's CR seen: LF expected.
    TrailerLf,
    /// The final empty line's CR seen: LF expected.
    EndLf,
    /// The body is complete.
    Done,
}

/// Walks a chunked body as it arrives, in pieces of any size.
#[derive(Debug, Clone)]
pub(crate) struct ChunkScanner {
    state: State,
    line: u32,
    /// The first chunk-size line has been read whole.
    started: bool,
}

impl Default for ChunkScanner {
    fn default() -> Self {
        Self {
            state: Self::size_start(),
            line: 0,
            started: false,
        }
    }
}

impl ChunkScanner {
    /// Whether the last chunk and the trailers have been seen.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the first chunk-size line has been read whole (so the
    /// framing is known to start well).
    pub(crate) fn past_first_line(&self) -> bool {
        self.started
    }

    /// Data bytes of the current chunk still to come (0 outside a chunk's
    /// data).
    pub(crate) fn data_left(&self) -> u64 {
        match self.state {
            State::Data { left } => left,
            _ => 0,
        }
    }

    /// Whether the last chunk has been read and the trailer section (or
    /// the final empty line) is being read.
    pub(crate) fn in_trailers(&self) -> bool {
        matches!(
            self.state,
            State::TrailerStart | State::Trailer | State::TrailerLf | State::EndLf
        )
    }

    /// Consumes `bytes` up to the end of the body; returns how many of
    /// them belong to the body (all of them unless it ends inside).
    pub(crate) fn advance(&mut self, bytes: &[u8]) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            self.state = match self.state {
                State::Done => return Ok(i),
                State::Data { left } => {
                    let take = left.min((bytes.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == left {
                        State::DataCr
                    } else {
                        State::Data { left: left - take }
                    };
                    continue;
                }
                State::Size { value, digits } => {
                    self.count()?;
                    match (hex(b), b) {
                        (Some(_), _) if value >> 60 != 0 => return Err(ChunkError::Overflow),
                        (Some(d), _) => State::Size {
                            value: value << 4 | u64::from(d),
                            digits: true,
                        },
                        (None, b';') if digits => State::Extension { value },
                        (None, b'\r') if digits => State::SizeLf { value },
                        (None, b'\n') if digits => return Err(ChunkError::LineEnd),
                        _ => return Err(ChunkError::Size),
                    }
                }
                State::Extension { value } => {
                    self.count()?;
                    match b {
                        b'\r' => State::SizeLf { value },
                        b'\n' => return Err(ChunkError::LineEnd),
                        b'\t' | 0x20..=0x7e | 0x80.. => State::Extension { value },
                        _ => return Err(ChunkError::Extension),
                    }
                }
                State::SizeLf { value } => match b {
                    b'\n' => {
                        self.line = 0;
                        self.started = true;
                        if value == 0 {
                            State::TrailerStart
                        } else {
                            State::Data { left: value }
                        }
                    }
                    _ => return Err(ChunkError::LineEnd),
                },
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    _ => return Err(ChunkError::DataEnd),
                },
                State::DataLf => match b {
                    b'\n' => Self::size_start(),
                    _ => return Err(ChunkError::DataEnd),
                },
                State::TrailerStart => match b {
                    b'\r' => State::EndLf,
                    b'\n' => return Err(ChunkError::LineEnd),
                    _ => {
                        self.line = 1;
                        State::Trailer
                    }
                },
                State::Trailer => {
                    self.count()?;
                    match b {
                        b'\r' => State::TrailerLf,
                        b'\n' => return Err(ChunkError::LineEnd),
                        _ => State::Trailer,
                    }
                }
                State::TrailerLf | State::EndLf if b != b'\n' => {
                    return Err(ChunkError::LineEnd);
                }
                State::TrailerLf => {
                    self.line = 0;
                    State::TrailerStart
                }
                State::EndLf => State::Done,
            };
            i += 1;
        }
        Ok(i)
    }

    /// One more byte on the current line.
    fn count(&mut self) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_LINE {
            return Err(ChunkError::LineTooLong);
        }
        Ok(())
    }

    fn size_start() -> State {
        State::Size {
            value: 0,
            digits: false,
        }
    }
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
    use super::*;

    /// Feeds `body` in pieces of `step` bytes; returns the body length seen.
    fn scan(body: &[u8], step: usize) -> Result<Option<usize>, ChunkError> {
        let mut s = ChunkScanner::default();
        let mut used = 0;
        for piece in body.chunks(step) {
            let n = s.advance(piece)?;
            used += n;
            if s.is_done() {
                return Ok(Some(used));
            }
            assert_eq!(n, piece.len());
        }
        Ok(None)
    }

    #[test]
    fn finds_the_end_in_any_split() {
        let body = b"5\r\nhello\r\n1a;ext=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\ngrpc-status: 0\r\n\r\n";
        for step in 1..body.len() + 1 {
            let mut with_next = body.to_vec();
            with_next.extend_from_slice(b"GET / HTTP/1.1\r\n");
            assert_eq!(scan(&with_next, step), Ok(Some(body.len())), "step {step}");
        }
    }

    #[test]
    fn no_trailers_and_leading_zeros() {
        assert_eq!(scan(b"0\r\n\r\n", 1), Ok(Some(5)));
        let body = b"00000000000000000003\r\nabc\r\n0\r\n\r\n";
        assert_eq!(scan(body, 2), Ok(Some(body.len())));
    }

    #[test]
    fn incomplete_bodies_are_not_done() {
        assert_eq!(scan(b"5\r\nhel", 3), Ok(None));
        assert_eq!(scan(b"0\r\nx-trailer: 1\r\n", 4), Ok(None));
    }

    #[test]
    fn grammar_errors() {
        assert_eq!(scan(b"zz\r\n", 1), Err(ChunkError::Size));
        assert_eq!(scan(b"\r\n", 1), Err(ChunkError::Size));
        assert_eq!(scan(b";x\r\n", 1), Err(ChunkError::Size));
        assert_eq!(scan(b"3\r\nabcX", 8), Err(ChunkError::DataEnd));
        assert_eq!(
            scan(b"10000000000000000\r\n", 32),
            Err(ChunkError::Overflow)
        );
        let long = format!("1;{}\r\n", "x".repeat(5000));
        assert_eq!(scan(long.as_bytes(), 64), Err(ChunkError::LineTooLong));
        let long = format!("0\r\nx-t: {}\r\n\r\n", "x".repeat(5000));
        assert_eq!(scan(long.as_bytes(), 64), Err(ChunkError::LineTooLong));
    }

    #[test]
    fn whitespace_and_bare_lf_are_refused() {
        for (body, want) in [
            (&b"3 \r\nabc\r\n0\r\n\r\n"[..], ChunkError::Size),
            (b"3\t\r\nabc\r\n0\r\n\r\n", ChunkError::Size),
            (b" 3\r\nabc\r\n0\r\n\r\n", ChunkError::Size),
            (b"3 ;x\r\nabc\r\n0\r\n\r\n", ChunkError::Size),
            (b"3\nabc\r\n0\r\n\r\n", ChunkError::LineEnd),
            (b"3;x\nabc\r\n0\r\n\r\n", ChunkError::LineEnd),
            (b"3\rabc\r\n0\r\n\r\n", ChunkError::LineEnd),
            (b"3\r\nabc\n0\r\n\r\n", ChunkError::DataEnd),
            (b"3\r\nabc\r\n0\r\n\n", ChunkError::LineEnd),
            (b"3\r\nabc\r\n0\r\nx: 1\n\r\n", ChunkError::LineEnd),
            (b"3;a\x00\r\nabc\r\n0\r\n\r\n", ChunkError::Extension),
            (b"3x\r\nabc\r\n0\r\n\r\n", ChunkError::Size),
        ] {
            for step in [1, 3, body.len()] {
                assert_eq!(
                    scan(body, step),
                    Err(want),
                    "{:?} step {step}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }

    #[test]
    fn extensions_with_quoted_values_pass() {
        let body = b"3;name=\"a b\";x\r\nabc\r\n0;last\r\n\r\n";
        assert_eq!(scan(body, 1), Ok(Some(body.len())));
    }
}
