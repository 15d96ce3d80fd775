//! A Thrift server that answers every `CALL` with a `REPLY` whose success
//! field (id 0) is the call's first string argument, in the call's own
//! transport (framed or THeader) and protocol (binary or compact).

use super::{BadRequest, Handler};
use crate::thrift_wire as wire;

/// The echo server's per-connection state (none).
#[derive(Debug, Default)]
pub struct ThriftEcho;

/// Appends the reply to `frame` (one frame without its length prefix);
/// oneway calls get none.
pub fn reply(frame: &[u8], out: &mut Vec<u8>) -> Result<(), BadRequest> {
    let theader = wire::theader_payload(frame);
    let at = theader.map_or(0, |(at, _)| at);
    let h = wire::message_header(frame, at).ok_or(BadRequest("thrift message header"))?;
    if h.kind != wire::CALL {
        return Ok(());
    }
    let arg = wire::first_string_field(frame, h.proto, h.body).unwrap_or(0..0);
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    if theader.is_some() {
        let seq = u32::from_be_bytes(frame[4..8].try_into().expect("4 bytes"));
        wire::put_theader_prefix(out, h.proto, seq);
    }
    wire::put_message_header(out, h.proto, wire::REPLY, &frame[h.name], h.seqid);
    wire::put_string_field_and_stop(out, h.proto, 0, &frame[arg]);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

impl Handler for ThriftEcho {
    fn handle(&mut self, buf: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, BadRequest> {
        let Some(head) = buf.get(0..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(head.try_into().expect("4 bytes")) as usize;
        if len > 64 << 20 {
            return Err(BadRequest(
                "thrift frame length (unframed transport is not served)",
            ));
        }
        let Some(frame) = buf.get(4..4 + len) else {
            return Ok(None);
        };
        reply(frame, out)?;
        Ok(Some(4 + len))
    }
}
