//! Telling protocols apart by a connection's first bytes.

/// What the first bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    /// A TLS record (a ClientHello).
    Tls,
    /// HTTP/1.x request line or the HTTP/2 preface.
    Http,
    /// Dubbo's magic number.
    Dubbo,
    /// Thrift: framed, THeader or unframed, binary or compact.
    Thrift,
    /// Nothing we serve.
    Unknown,
    /// Too few bytes to tell yet.
    NeedMore,
}

/// The most bytes [`sniff`] ever needs.
pub(crate) const SNIFF_BYTES: usize = 16;

/// Looks at the first bytes of a connection.
pub(crate) fn sniff(b: &[u8]) -> Sniffed {
    let Some(&first) = b.first() else {
        return Sniffed::NeedMore;
    };
    match first {
        // TLS handshake record, version 3.x.
        0x16 => return at(b, 1).map_or(Sniffed::NeedMore, |v| tell(v == 0x03, Sniffed::Tls)),
        0xda => return at(b, 1).map_or(Sniffed::NeedMore, |v| tell(v == 0xbb, Sniffed::Dubbo)),
        // Unframed Thrift: strict binary (0x80 0x01) or compact (0x82, version 1).
        0x80 => return at(b, 1).map_or(Sniffed::NeedMore, |v| tell(v == 0x01, Sniffed::Thrift)),
        0x82 => {
            return at(b, 1).map_or(Sniffed::NeedMore, |v| tell(v & 0x1f == 1, Sniffed::Thrift));
        }
        b'A'..=b'Z' => return method(b),
        _ => {}
    }
    // Framed Thrift or THeader: a 4-byte length, then the protocol.
    match (at(b, 4), at(b, 5)) {
        (Some(0x80), Some(0x01)) | (Some(0x0f), Some(0xff)) => Sniffed::Thrift,
        (Some(0x82), Some(v)) if v & 0x1f == 1 => Sniffed::Thrift,
        (Some(_), Some(_)) => Sniffed::Unknown,
        _ if first == 0 => Sniffed::NeedMore,
        _ => Sniffed::Unknown,
    }
}

fn at(b: &[u8], i: usize) -> Option<u8> {
    b.get(i).copied()
}

fn tell(yes: bool, what: Sniffed) -> Sniffed {
    if yes { what } else { Sniffed::Unknown }
}

/// An HTTP method token (upper-case letters, at most 10) and a space, or
/// the HTTP/2 preface (`PRI *`).
fn method(b: &[u8]) -> Sniffed {
    for (i, &c) in b.iter().enumerate().take(11) {
        match c {
            b'A'..=b'Z' => {}
            b' ' if i > 0 => return Sniffed::Http,
            _ => return Sniffed::Unknown,
        }
    }
    if b.len() < 11 {
        Sniffed::NeedMore
    } else {
        Sniffed::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::{Sniffed, sniff};

    #[test]
    fn each_protocol_is_told_apart() {
        assert_eq!(sniff(&[0x16, 0x03, 0x01, 0x02, 0x00]), Sniffed::Tls);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniffed::Http);
        assert_eq!(sniff(b"OPTIONS * HTTP/1.1\r\n"), Sniffed::Http);
        assert_eq!(sniff(b"PRI * HTTP/2.0\r\n"), Sniffed::Http);
        assert_eq!(sniff(&[0xda, 0xbb, 0xc2, 0x00]), Sniffed::Dubbo);
        assert_eq!(sniff(&[0x80, 0x01, 0x00, 0x01]), Sniffed::Thrift);
        assert_eq!(sniff(&[0x82, 0x21, 0x00]), Sniffed::Thrift);
        assert_eq!(sniff(&[0, 0, 0, 20, 0x80, 0x01]), Sniffed::Thrift);
        assert_eq!(sniff(&[0, 0, 0, 20, 0x82, 0x21]), Sniffed::Thrift);
        assert_eq!(sniff(&[0, 0, 0, 40, 0x0f, 0xff]), Sniffed::Thrift);
    }

    #[test]
    fn short_and_foreign_bytes() {
        assert_eq!(sniff(b""), Sniffed::NeedMore);
        assert_eq!(sniff(b"GE"), Sniffed::NeedMore);
        assert_eq!(sniff(&[0x16]), Sniffed::NeedMore);
        assert_eq!(sniff(&[0, 0, 0]), Sniffed::NeedMore);
        assert_eq!(sniff(&[0x16, 0x17]), Sniffed::Unknown);
        assert_eq!(sniff(b"get / HTTP/1.1"), Sniffed::Unknown);
        assert_eq!(sniff(b"ABCDEFGHIJKL "), Sniffed::Unknown);
        assert_eq!(sniff(b"SSH-2.0-OpenSSH"), Sniffed::Unknown);
        assert_eq!(sniff(&[0, 0, 0, 20, 0x12, 0x34]), Sniffed::Unknown);
        assert_eq!(sniff(&[7, 7, 7]), Sniffed::Unknown);
    }
}
