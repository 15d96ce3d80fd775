//! HTTP/1.1 keep-alive: `POST /echo` with the payload as the body (a `GET`
//! when the payload is empty). Responses come back in order.

use super::{BadResponse, ClientProto, Response};
use crate::http1_wire::{self as wire, WireError};

/// Builds echo requests.
#[derive(Debug, Clone)]
pub struct Http1Client {
    request: Vec<u8>,
}

impl Http1Client {
    /// A client sending `payload` body bytes to `host`.
    pub fn new(host: &str, payload: usize) -> Self {
        let mut request = if payload == 0 {
            format!("GET /echo HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
        } else {
            format!(
                "POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\nContent-Length: {payload}\r\n\r\n"
            )
            .into_bytes()
        };
        request.extend(crate::payload(payload));
        Self { request }
    }

    /// The request bytes.
    pub fn request(&self) -> &[u8] {
        &self.request
    }
}

impl From<WireError> for BadResponse {
    fn from(e: WireError) -> Self {
        BadResponse(match e {
            WireError::HeadTooLarge => "http head too large",
            WireError::BadFraming => "http framing",
        })
    }
}

impl ClientProto for Http1Client {
    fn write_request(&mut self, _id: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request);
    }

    fn parse_response(&self, buf: &[u8]) -> Result<Option<Response>, BadResponse> {
        let Some(head) = wire::head_end(buf)? else {
            return Ok(None);
        };
        if !buf.starts_with(b"HTTP/1.") || head < 12 {
            return Err(BadResponse("http status line"));
        }
        let ok = buf[9] == b'2';
        let f = wire::framing(&buf[..head])?;
        let end = if f.chunked {
            match wire::chunked_end(buf, head, None)? {
                Some(end) => end,
                None => return Ok(None),
            }
        } else {
            // No length: only a close would end it; the tools always get one.
            head + f
                .content_length
                .ok_or(BadResponse("http response without length"))?
        };
        if buf.len() < end {
            return Ok(None);
        }
        Ok(Some(Response {
            len: end,
            id: None,
            ok,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_length_and_chunked_responses() {
        let c = Http1Client::new("bench", 3);
        assert!(c.request().ends_with(b"Content-Length: 3\r\n\r\nabc"));
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcHTTP/1.1";
        assert_eq!(
            c.parse_response(r).unwrap(),
            Some(Response {
                len: 41,
                id: None,
                ok: true
            })
        );
        let r = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let got = c.parse_response(r).unwrap().unwrap();
        assert_eq!((got.len, got.ok), (r.len(), false));
        assert_eq!(c.parse_response(&r[..r.len() - 2]).unwrap(), None);
    }
}
