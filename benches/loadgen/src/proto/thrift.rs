//! Thrift: an `echo(1: string text)` call whose argument is the payload,
//! framed or THeader, strict binary or compact.

use super::{BadResponse, ClientProto, Response};
use crate::thrift_wire::{self as wire, Proto, Transport};

/// The method every call names.
pub const METHOD: &str = "echo";

/// Builds `echo(payload)` calls.
#[derive(Debug, Clone)]
pub struct ThriftClient {
    transport: Transport,
    proto: Proto,
    payload: Vec<u8>,
}

impl ThriftClient {
    /// A client for `transport`/`proto` whose argument has `payload` bytes.
    pub fn new(transport: Transport, proto: Proto, payload: usize) -> Self {
        Self {
            transport,
            proto,
            payload: crate::payload(payload),
        }
    }
}

impl ClientProto for ThriftClient {
    fn write_request(&mut self, id: u32, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        if self.transport == Transport::Header {
            wire::put_theader_prefix(out, self.proto, id);
        }
        wire::put_message_header(out, self.proto, wire::CALL, METHOD.as_bytes(), id as i32);
        wire::put_string_field_and_stop(out, self.proto, 1, &self.payload);
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    fn parse_response(&self, buf: &[u8]) -> Result<Option<Response>, BadResponse> {
        let Some(head) = buf.get(0..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(head.try_into().expect("4 bytes")) as usize;
        if len > 64 << 20 {
            return Err(BadResponse("thrift frame length"));
        }
        let Some(frame) = buf.get(4..4 + len) else {
            return Ok(None);
        };
        let (at, proto) = match wire::theader_payload(frame) {
            Some(found) => found,
            None => (0, self.proto),
        };
        let h = wire::message_header(frame, at).ok_or(BadResponse("thrift message header"))?;
        if h.proto != proto {
            return Err(BadResponse("thrift protocol"));
        }
        let success = match h.proto {
            Proto::Binary => {
                frame.get(h.body) == Some(&11) && frame.get(h.body + 1..h.body + 3) == Some(&[0, 0])
            }
            Proto::Compact => frame.get(h.body..h.body + 2) == Some(&[0x08, 0x00]),
        };
        Ok(Some(Response {
            len: 4 + len,
            id: Some(h.seqid as u32),
            ok: h.kind == wire::REPLY && success,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_reply() {
        for transport in [Transport::Framed, Transport::Header] {
            for proto in [Proto::Binary, Proto::Compact] {
                let mut c = ThriftClient::new(transport, proto, 100);
                let mut out = Vec::new();
                c.write_request(300, &mut out);
                // A request is not a reply.
                let r = c.parse_response(&out).unwrap().unwrap();
                assert_eq!((r.len, r.id, r.ok), (out.len(), Some(300), false));
                let mut reply = Vec::new();
                crate::echo::thrift::reply(&out[4..], &mut reply).unwrap();
                let r = c.parse_response(&reply).unwrap().unwrap();
                assert_eq!((r.len, r.id, r.ok), (reply.len(), Some(300), true));
                assert_eq!(c.parse_response(&reply[..reply.len() - 1]).unwrap(), None);
            }
        }
    }
}
