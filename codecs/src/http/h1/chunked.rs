//! Finding where a chunked body ends without decoding it: the proxy relays
//! the chunks verbatim (sizes, extensions, trailers and all) and only needs
//! to know which byte is the last one of the message.

/// A chunked body that breaks the grammar (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChunkError {
    /// A chunk size that is not hexadecimal, or too large.
    #[error("bad chunk size")]
    Size,
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
    Size { value: u64, digits: u8 },
    /// After the size: extensions or whitespace up to the line end.
    SizeRest { value: u64 },
    /// Inside a chunk's data, `left` bytes to go.
    Data { left: u64 },
    /// After the data: CR or LF expected.
    DataCr,
    /// After the data's CR: LF expected.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
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
}

impl Default for ChunkScanner {
    fn default() -> Self {
        Self {
            state: State::Size {
                value: 0,
                digits: 0,
            },
            line: 0,
        }
    }
}

impl ChunkScanner {
    /// Whether the last chunk and the trailers have been seen.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
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
                State::Size { value, digits } => match hex(b) {
                    Some(d) if digits < 15 => State::Size {
                        value: value << 4 | u64::from(d),
                        digits: digits + 1,
                    },
                    Some(_) => return Err(ChunkError::Size),
                    None if digits == 0 => return Err(ChunkError::Size),
                    None => self.size_end(value, b)?,
                },
                State::SizeRest { value } => {
                    self.line += 1;
                    if self.line > MAX_LINE {
                        return Err(ChunkError::LineTooLong);
                    }
                    self.size_end(value, b)?
                }
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    b'\n' => Self::size_start(),
                    _ => return Err(ChunkError::DataEnd),
                },
                State::DataLf => match b {
                    b'\n' => Self::size_start(),
                    _ => return Err(ChunkError::DataEnd),
                },
                State::TrailerStart => match b {
                    b'\r' => State::EndLf,
                    b'\n' => State::Done,
                    _ => {
                        self.line = 1;
                        State::Trailer
                    }
                },
                State::Trailer => {
                    self.line += 1;
                    if self.line > MAX_LINE {
                        return Err(ChunkError::LineTooLong);
                    }
                    if b == b'\n' {
                        State::TrailerStart
                    } else {
                        State::Trailer
                    }
                }
                State::EndLf => match b {
                    b'\n' => State::Done,
                    _ => return Err(ChunkError::DataEnd),
                },
            };
            i += 1;
        }
        Ok(i)
    }

    fn size_start() -> State {
        State::Size {
            value: 0,
            digits: 0,
        }
    }

    /// A byte after the size digits: the line ends (LF), or extensions follow.
    fn size_end(&mut self, value: u64, b: u8) -> Result<State, ChunkError> {
        Ok(match b {
            b'\n' => {
                self.line = 0;
                if value == 0 {
                    State::TrailerStart
                } else {
                    State::Data { left: value }
                }
            }
            b'\r' | b';' | b' ' | b'\t' | b'=' | b'"' => State::SizeRest { value },
            _ if b.is_ascii_graphic() => State::SizeRest { value },
            _ => return Err(ChunkError::Size),
        })
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
    fn bare_lf_and_no_trailers() {
        assert_eq!(scan(b"3\nabc\n0\n\n", 2), Ok(Some(9)));
        assert_eq!(scan(b"0\r\n\r\n", 1), Ok(Some(5)));
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
        assert_eq!(scan(b"3\r\nabcX", 8), Err(ChunkError::DataEnd));
        assert_eq!(scan(b"1000000000000000\r\n", 32), Err(ChunkError::Size));
        let long = format!("1;{}\r\n", "x".repeat(5000));
        assert_eq!(scan(long.as_bytes(), 64), Err(ChunkError::LineTooLong));
    }
}
