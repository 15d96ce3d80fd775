//! The HTTP/1.1 pieces the client and the echo server share: finding the
//! end of a head, reading its framing headers, walking a chunked body.

/// Largest head either side accepts.
pub const MAX_HEAD: usize = 16 * 1024;

/// Why a message cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The head is longer than [`MAX_HEAD`].
    #[error("head too large")]
    HeadTooLarge,
    /// A framing header or chunk size does not parse.
    #[error("bad framing")]
    BadFraming,
}

/// The offset just past `\r\n\r\n`, if the head is complete.
pub fn head_end(buf: &[u8]) -> Result<Option<usize>, WireError> {
    let limit = buf.len().min(MAX_HEAD);
    match buf[..limit].windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => Ok(Some(i + 4)),
        None if buf.len() >= MAX_HEAD => Err(WireError::HeadTooLarge),
        None => Ok(None),
    }
}

/// How the body after a head is delimited, and whether the sender closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Framing {
    /// `Content-Length`, if sent.
    pub content_length: Option<usize>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `Connection: close`.
    pub close: bool,
}

/// Reads the framing headers of `head` (from the start line to the blank line).
pub fn framing(head: &[u8]) -> Result<Framing, WireError> {
    let mut f = Framing::default();
    for line in head.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            let text = std::str::from_utf8(value).map_err(|_| WireError::BadFraming)?;
            f.content_length = Some(text.parse().map_err(|_| WireError::BadFraming)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            f.chunked = value.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            f.close = value.eq_ignore_ascii_case(b"close");
        }
    }
    Ok(f)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &v[start..end]
}

/// Walks the chunked body starting at `at`; returns the offset just past
/// it, appending its data to `data` when given. `Ok(None)`: incomplete.
pub fn chunked_end(
    buf: &[u8],
    mut at: usize,
    mut data: Option<&mut Vec<u8>>,
) -> Result<Option<usize>, WireError> {
    loop {
        let Some(nl) = buf[at.min(buf.len())..]
            .windows(2)
            .position(|w| w == b"\r\n")
        else {
            return Ok(None);
        };
        let line = &buf[at..at + nl];
        let hex = line.split(|b| *b == b';').next().unwrap_or(line);
        let text = std::str::from_utf8(trim(hex)).map_err(|_| WireError::BadFraming)?;
        let size = usize::from_str_radix(text, 16).map_err(|_| WireError::BadFraming)?;
        at += nl + 2;
        if size == 0 {
            // Trailers (none expected), then the final CRLF.
            return match head_end_from(buf, at) {
                Some(end) => Ok(Some(end)),
                None => Ok(None),
            };
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        if let Some(d) = data.as_deref_mut() {
            d.extend_from_slice(&buf[at..at + size]);
        }
        at += size + 2;
    }
}

/// After the last chunk: either `\r\n` at once, or trailers ending in a blank line.
fn head_end_from(buf: &[u8], at: usize) -> Option<usize> {
    if buf.get(at..at + 2)? == b"\r\n" {
        return Some(at + 2);
    }
    buf[at..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| at + i + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_heads_and_chunks() {
        let msg = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: Close\r\n\r\nhello";
        let end = head_end(msg).unwrap().unwrap();
        let f = framing(&msg[..end]).unwrap();
        assert_eq!(f.content_length, Some(5));
        assert!(f.close && !f.chunked);
        let chunked = b"5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\n\r\n";
        let mut data = Vec::new();
        assert_eq!(
            chunked_end(chunked, 0, Some(&mut data)),
            Ok(Some(chunked.len()))
        );
        assert_eq!(data, b"helloabc");
        assert_eq!(
            chunked_end(&chunked[..chunked.len() - 1], 0, None),
            Ok(None)
        );
        assert_eq!(chunked_end(b"zz\r\n", 0, None), Err(WireError::BadFraming));
    }
}
