//! How a gRPC answer the proxy has to cut ends. When the relayed body
//! stopped between two whole messages (the upstream went away, went
//! silent past the stream idle timeout, or overran the route timeout), the
//! answer ends with trailers carrying a `grpc-status` and a `grpc-message`
//! saying why: the client gets the messages already relayed and a status
//! its retry policy can act on (UNAVAILABLE, DEADLINE_EXCEEDED), not a
//! bare stream reset (read as INTERNAL). Cut inside a message, the stream
//! is still reset: a client must not take a partial message for a whole one.

use http::HeaderMap;
use http::header::HeaderValue;

use super::reply::grpc_percent_encode;

/// Bytes of a gRPC message's prefix: a compression flag and a big-endian
/// 32-bit length.
const PREFIX: usize = 5;

/// Where the relayed body stands in gRPC's length-prefixed framing.
#[derive(Debug, Default)]
pub(crate) struct MessageBoundary {
    /// The next message's prefix, as far as it has been relayed.
    prefix: [u8; PREFIX],
    /// How many prefix bytes have been relayed (less than [`PREFIX`]).
    have: usize,
    /// Payload bytes of the current message still to come.
    remaining: u64,
}

impl MessageBoundary {
    /// Follows `data`, the next relayed bytes of the answer body.
    pub(crate) fn relayed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = usize::try_from(self.remaining).map_or(data.len(), |r| r.min(data.len()));
                self.remaining -= n as u64;
                data = &data[n..];
                continue;
            }
            let n = (PREFIX - self.have).min(data.len());
            self.prefix[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == PREFIX {
                let [_, a, b, c, d] = self.prefix;
                self.remaining = u64::from(u32::from_be_bytes([a, b, c, d]));
                self.have = 0;
            }
        }
    }

    /// Whether everything relayed so far is whole messages.
    pub(crate) fn at_boundary(&self) -> bool {
        self.have == 0 && self.remaining == 0
    }
}

/// Trailers ending a gRPC answer with `status` and `message`.
pub(crate) fn status_trailers(status: u8, message: &str) -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(2);
    trailers.insert("grpc-status", HeaderValue::from(u16::from(status)));
    if let Ok(v) = HeaderValue::from_str(&grpc_percent_encode(message)) {
        trailers.insert("grpc-message", v);
    }
    trailers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: &[u8]) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        m.extend_from_slice(payload);
        m
    }

    #[test]
    fn whole_messages_in_any_split_end_on_a_boundary() {
        let mut body = message(b"hello");
        body.extend(message(b""));
        body.extend(message(&[7; 300]));
        for split in 0..body.len() {
            for second in split..body.len() {
                let mut b = MessageBoundary::default();
                assert!(b.at_boundary());
                b.relayed(&body[..split]);
                b.relayed(&body[split..second]);
                b.relayed(&body[second..]);
                assert!(b.at_boundary(), "split at {split} and {second}");
            }
        }
    }

    #[test]
    fn a_partial_prefix_or_payload_is_not_a_boundary() {
        let body = message(b"hello");
        for cut in 1..body.len() {
            let mut b = MessageBoundary::default();
            b.relayed(&body[..cut]);
            assert!(!b.at_boundary(), "cut at {cut}");
        }
        // A length of 4 GiB - 1 stays pending across relays.
        let mut b = MessageBoundary::default();
        b.relayed(&[1, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        assert!(!b.at_boundary());
    }

    #[test]
    fn trailers_carry_the_status_and_an_encoded_message() {
        let t = status_trailers(14, "upstream gone: 100%");
        assert_eq!(t["grpc-status"], "14");
        assert_eq!(t["grpc-message"], "upstream gone: 100%25");
    }
}
