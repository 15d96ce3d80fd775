//! A Dubbo provider that answers every hessian2 call with its first
//! string argument, and every heartbeat with a heartbeat response.

use super::{BadRequest, Handler};
use crate::hessian;

const HEADER: usize = 16;
const FLAG_TWO_WAY: u8 = 0x40;
const FLAG_EVENT: u8 = 0x20;
const OK: u8 = 20;
const BAD_REQUEST: u8 = 40;

/// The echo provider's per-connection state (none).
#[derive(Debug, Default)]
pub struct DubboEcho;

fn header(out: &mut Vec<u8>, flags: u8, status: u8, id: &[u8], body_len: usize) {
    out.extend_from_slice(&[0xda, 0xbb, flags, status]);
    out.extend_from_slice(id);
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
}

/// The first argument of a request body: after the Dubbo version, path,
/// version, method and parameter descriptor strings.
fn argument(body: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut at = 0;
    for _ in 0..5 {
        at = hessian::str_at(body, at)?.1;
    }
    hessian::str_at(body, at).map(|(range, _)| range)
}

impl Handler for DubboEcho {
    fn handle(&mut self, buf: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, BadRequest> {
        if buf.len() < HEADER {
            return Ok(None);
        }
        if buf[0..2] != [0xda, 0xbb] {
            return Err(BadRequest("dubbo magic"));
        }
        let len = u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
        if len > 64 << 20 {
            return Err(BadRequest("dubbo body length"));
        }
        if buf.len() < HEADER + len {
            return Ok(None);
        }
        let (flags, id, body) = (buf[2], &buf[4..12], &buf[HEADER..HEADER + len]);
        if flags & FLAG_TWO_WAY == 0 {
            return Ok(Some(HEADER + len));
        }
        let serialization = flags & 0x1f;
        if flags & FLAG_EVENT != 0 {
            header(out, FLAG_EVENT | serialization, OK, id, 1);
            out.push(b'N');
        } else if let Some(arg) = argument(body) {
            let start = out.len();
            header(out, serialization, OK, id, 0);
            out.push(0x91); // RESPONSE_VALUE
            hessian::write_str(out, &body[arg]);
            let body_len = (out.len() - start - HEADER) as u32;
            out[start + 12..start + 16].copy_from_slice(&body_len.to_be_bytes());
        } else {
            let msg = b"echo provider: no string argument";
            header(out, serialization, BAD_REQUEST, id, msg.len() + 1);
            hessian::write_str(out, msg);
        }
        Ok(Some(HEADER + len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ClientProto, dubbo::DubboClient};

    #[test]
    fn echoes_the_argument_and_heartbeats() {
        let mut c = DubboClient::new(2000);
        let mut req = Vec::new();
        c.write_request(42, &mut req);
        let mut out = Vec::new();
        let mut h = DubboEcho;
        assert_eq!(h.handle(&req[..req.len() - 1], &mut out).unwrap(), None);
        assert_eq!(h.handle(&req, &mut out).unwrap(), Some(req.len()));
        let r = c.parse_response(&out).unwrap().unwrap();
        assert_eq!((r.len, r.id, r.ok), (out.len(), Some(42), true));
        let (arg, _) = hessian::str_at(&out, 17).unwrap();
        assert_eq!(&out[arg], &crate::payload(2000)[..]);

        let mut beat = vec![0xda, 0xbb, 0xe2, 0];
        beat.extend_from_slice(&9u64.to_be_bytes());
        beat.extend_from_slice(&1u32.to_be_bytes());
        beat.push(b'N');
        out.clear();
        h.handle(&beat, &mut out).unwrap();
        assert_eq!(&out[..4], &[0xda, 0xbb, 0x22, OK]);
        assert_eq!(&out[4..12], &9u64.to_be_bytes());
    }
}
