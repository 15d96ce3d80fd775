//! Dubbo 2 / hessian2: a `DemoService.sayHello(String)` call whose argument
//! is the payload.

use super::{BadResponse, ClientProto, Response};
use crate::hessian;

/// Header length.
const HEADER: usize = 16;
/// Status byte of a successful response.
const OK: u8 = 20;

/// The interface every request names (the proxies route on it).
pub const INTERFACE: &str = "org.apache.dubbo.samples.DemoService";
/// The method every request calls.
pub const METHOD: &str = "sayHello";

/// Builds `sayHello(payload)` requests.
#[derive(Debug, Clone)]
pub struct DubboClient {
    frame: Vec<u8>,
}

impl DubboClient {
    /// A client whose string argument has `payload` bytes.
    pub fn new(payload: usize) -> Self {
        let mut body = Vec::with_capacity(payload + 256);
        let arg = crate::payload(payload);
        for s in [
            "2.0.2".as_bytes(),
            INTERFACE.as_bytes(),
            b"1.0.0",
            METHOD.as_bytes(),
            b"Ljava/lang/String;",
            &arg,
        ] {
            hessian::write_str(&mut body, s);
        }
        body.push(b'H');
        for (k, v) in [
            ("path", INTERFACE),
            ("interface", INTERFACE),
            ("version", "1.0.0"),
        ] {
            hessian::write_str(&mut body, k.as_bytes());
            hessian::write_str(&mut body, v.as_bytes());
        }
        body.push(b'Z');
        // Two-way request, hessian2 (serialization id 2).
        let mut frame = vec![0xda, 0xbb, 0xc2, 0];
        frame.extend_from_slice(&0u64.to_be_bytes());
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend(body);
        Self { frame }
    }

    /// The request frame (id 0).
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }
}

impl ClientProto for DubboClient {
    fn write_request(&mut self, id: u32, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&self.frame);
        out[at + 4..at + 12].copy_from_slice(&u64::from(id).to_be_bytes());
    }

    fn parse_response(&self, buf: &[u8]) -> Result<Option<Response>, BadResponse> {
        if buf.len() < HEADER {
            return Ok(None);
        }
        if buf[0..2] != [0xda, 0xbb] {
            return Err(BadResponse("dubbo magic"));
        }
        let body = u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
        if body > 64 << 20 {
            return Err(BadResponse("dubbo body length"));
        }
        if buf.len() < HEADER + body {
            return Ok(None);
        }
        let id = u64::from_be_bytes(buf[4..12].try_into().expect("8 bytes"));
        // A value (1) or null (2), with or without attachments (+3).
        let value_flag = matches!(buf.get(HEADER), Some(0x91 | 0x92 | 0x94 | 0x95));
        Ok(Some(Response {
            len: HEADER + body,
            id: Some(id as u32),
            ok: buf[3] == OK && buf[2] & 0x20 == 0 && value_flag,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_the_id_and_reads_a_response() {
        let mut c = DubboClient::new(100);
        let mut out = Vec::new();
        c.write_request(7, &mut out);
        assert_eq!(out.len(), c.frame().len());
        assert_eq!(&out[4..12], &7u64.to_be_bytes());
        let mut resp = vec![0xda, 0xbb, 0x02, OK];
        resp.extend_from_slice(&7u64.to_be_bytes());
        resp.extend_from_slice(&2u32.to_be_bytes());
        resp.extend_from_slice(&[0x91, 0x00]);
        assert_eq!(c.parse_response(&resp[..17]).unwrap(), None);
        let r = c.parse_response(&resp).unwrap().unwrap();
        assert_eq!((r.len, r.id, r.ok), (18, Some(7), true));
        resp[3] = 70;
        assert!(!c.parse_response(&resp).unwrap().unwrap().ok);
    }
}
