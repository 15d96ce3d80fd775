//! A tiny Thrift server and client for the examples: the `Greeter` service
//! of `tests/peers/thrift/demo.thrift` in the binary protocol, built on
//! metaproxy's own Thrift codec helpers (the tests also drive it with
//! Apache Thrift's Python client, which works against it unchanged).
//!
//! The server reads framed, unframed and THeader requests (binary only; a
//! cluster with `options: { protocol: binary }` translates compact clients)
//! and answers in the transport it was asked in. The client speaks framed
//! binary, or THeader binary when it has info headers to send.
#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use metaproxy::codecs::thrift::cursor::Cursor;
use metaproxy::codecs::thrift::envelope::{self, Block, Envelope};
use metaproxy::codecs::thrift::exception::types;
use metaproxy::codecs::thrift::wire::ttype;
use metaproxy::codecs::thrift::{
    MessageType, Protocol, ThriftDecoder, ThriftState, Transport, binary,
};
use metaproxy::core::{Decoder, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_FRAME: usize = 1 << 20;

/// Serves `Greeter` on `listener`, one task per connection:
/// - `hello(name)` → `Hello <name>, from <tag>`;
/// - `header(key)` → `<tag>: <key>=<value>` for the THeader info header
///   `key`, or `<tag>: no <key> header`;
/// - oneway `notify(msg)` is accepted silently;
/// - any other method → `TApplicationException` `UNKNOWN_METHOD`.
pub async fn server(listener: TcpListener, tag: &'static str) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(serve_connection(stream, tag));
    }
}

async fn serve_connection(mut s: TcpStream, tag: &'static str) {
    // Sniff every message: the proxy's pooled connections carry each
    // request in the transport its client used.
    let mut decoder = ThriftDecoder::new(MAX_FRAME, None, Some(Protocol::BINARY), false);
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(msg)) => {
                    if let Some(out) = answer(&msg, tag)
                        && s.write_all(&out).await.is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The answer frame to one decoded message (`None` for oneway and answers).
fn answer(msg: &Message<ThriftState>, tag: &str) -> Option<BytesMut> {
    let st = &msg.state;
    if st.message_type() != MessageType::Call {
        return None;
    }
    let name = &msg.body[st.name_range()];
    let arg = read_struct(&msg.body[st.body_range()])
        .ok()
        .and_then(|fields| fields.into_iter().find(|(id, _)| *id == 1))
        .and_then(|(_, v)| v.text());
    let mut body = BytesMut::new();
    let message_type = match (name, arg) {
        (b"hello", Some(name)) => {
            write_string_field(&mut body, 0, &format!("Hello {name}, from {tag}"));
            body.put_u8(ttype::STOP);
            MessageType::Reply
        }
        (b"header", Some(key)) => {
            let value = st.theader().and_then(|h| {
                h.headers
                    .iter()
                    .find(|(k, _)| k.as_ref() == key.as_bytes())
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            });
            let text = match value {
                Some(v) => format!("{tag}: {key}={v}"),
                None => format!("{tag}: no {key} header"),
            };
            write_string_field(&mut body, 0, &text);
            body.put_u8(ttype::STOP);
            MessageType::Reply
        }
        (other, _) => {
            let message = format!(
                "{tag} does not serve {} with these arguments",
                String::from_utf8_lossy(other)
            );
            binary::write_application_exception(&mut body, &message, types::UNKNOWN_METHOD);
            MessageType::Exception
        }
    };
    let theader = st.theader();
    let env = Envelope {
        transport: st.transport(),
        protocol: st.protocol(),
        name,
        message_type,
        seqid: st.seqid(),
        flags: theader.map_or(0, |h| h.flags),
        header_seqid: theader.map_or(0, |h| h.seqid),
        block: Block::Build(&[]),
    };
    let mut out = BytesMut::new();
    envelope::write(&mut out, &env, &body).ok()?;
    Some(out)
}

/// A field value as far as the demo cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A `string` (`binary`) field.
    Text(Bytes),
    /// An `i32` field.
    I32(i32),
    /// Any other type (skipped).
    Other(u8),
}

impl Value {
    /// The value as UTF-8 text, for string fields.
    pub fn text(self) -> Option<String> {
        match self {
            Value::Text(b) => String::from_utf8(b.to_vec()).ok(),
            _ => None,
        }
    }
}

/// The fields of a binary-protocol struct, up to its STOP byte.
pub fn read_struct(buf: &[u8]) -> anyhow::Result<Vec<(i16, Value)>> {
    let mut c = Cursor::new(buf);
    let mut fields = Vec::new();
    loop {
        let t = c.u8()?;
        if t == ttype::STOP {
            return Ok(fields);
        }
        let id = c.i16()?;
        let value = match t {
            ttype::STRING => {
                let len = usize::try_from(c.i32()?)?;
                Value::Text(Bytes::copy_from_slice(c.take(len)?))
            }
            ttype::I32 => Value::I32(c.i32()?),
            other => {
                binary::skip(&mut c, other, 0)?;
                Value::Other(other)
            }
        };
        fields.push((id, value));
    }
}

fn write_string_field(dst: &mut BytesMut, id: i16, text: &str) {
    binary::write_field_header(dst, ttype::STRING, id);
    dst.put_i32(i32::try_from(text.len()).unwrap_or(i32::MAX));
    dst.put_slice(text.as_bytes());
}

/// A `Greeter` client on one connection: framed binary, or THeader binary
/// carrying `headers` as info headers on every call when there are any.
pub struct Client {
    stream: TcpStream,
    decoder: ThriftDecoder,
    buf: BytesMut,
    transport: Transport,
    headers: Vec<(Bytes, Bytes)>,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: &str, headers: Vec<(String, String)>) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {addr}: {e}"))?;
        let transport = if headers.is_empty() {
            Transport::Framed
        } else {
            Transport::Header
        };
        Ok(Self {
            stream,
            decoder: ThriftDecoder::new(MAX_FRAME, Some(transport), Some(Protocol::BINARY), true),
            buf: BytesMut::with_capacity(4096),
            transport,
            headers: headers
                .into_iter()
                .map(|(k, v)| (Bytes::from(k), Bytes::from(v)))
                .collect(),
        })
    }

    /// Calls `method` with one string argument (field 1) and returns the
    /// string result, or the exception the server or the proxy sent
    /// (`Err`). Transport and protocol errors are the outer error.
    pub async fn call(
        &mut self,
        seqid: i32,
        method: &str,
        arg: &str,
    ) -> anyhow::Result<Result<String, String>> {
        let mut args = BytesMut::new();
        write_string_field(&mut args, 1, arg);
        args.put_u8(ttype::STOP);
        let env = Envelope {
            transport: self.transport,
            protocol: Protocol::BINARY,
            name: method.as_bytes(),
            message_type: MessageType::Call,
            seqid,
            flags: 0,
            header_seqid: seqid,
            block: Block::Build(&self.headers),
        };
        let mut out = BytesMut::new();
        envelope::write(&mut out, &env, &args)?;
        self.stream.write_all(&out).await?;
        let msg = self.read().await?;
        let st = &msg.state;
        anyhow::ensure!(
            st.seqid() == seqid,
            "answer carries seqid {}, sent {seqid}",
            st.seqid()
        );
        let fields = read_struct(&msg.body[st.body_range()])?;
        Ok(match st.message_type() {
            MessageType::Reply => match fields.into_iter().next() {
                Some((0, v)) => v.text().ok_or_else(|| "result is not a string".to_string()),
                Some((id, _)) => Err(format!("declared exception (field {id})")),
                None => Err("empty result".to_string()),
            },
            MessageType::Exception => {
                let mut message = String::new();
                let mut kind = types::UNKNOWN;
                for (id, v) in fields {
                    match (id, v) {
                        (1, Value::Text(t)) => message = String::from_utf8_lossy(&t).into_owned(),
                        (2, Value::I32(k)) => kind = k,
                        _ => {}
                    }
                }
                Err(format!(
                    "TApplicationException {} ({kind}): {message}",
                    exception_name(kind)
                ))
            }
            other => anyhow::bail!("unexpected answer type {other:?}"),
        })
    }

    async fn read(&mut self) -> anyhow::Result<Message<ThriftState>> {
        loop {
            if let Some(msg) = self
                .decoder
                .decode(&mut self.buf)
                .map_err(|e| anyhow::anyhow!("bad answer: {}", e.message))?
            {
                return Ok(msg);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                anyhow::bail!("connection closed before the answer");
            }
        }
    }
}

/// The name of a `TApplicationException` type.
pub fn exception_name(kind: i32) -> &'static str {
    match kind {
        types::UNKNOWN_METHOD => "UNKNOWN_METHOD",
        types::INVALID_MESSAGE_TYPE => "INVALID_MESSAGE_TYPE",
        types::WRONG_METHOD_NAME => "WRONG_METHOD_NAME",
        types::BAD_SEQUENCE_ID => "BAD_SEQUENCE_ID",
        types::MISSING_RESULT => "MISSING_RESULT",
        types::INTERNAL_ERROR => "INTERNAL_ERROR",
        types::PROTOCOL_ERROR => "PROTOCOL_ERROR",
        types::INVALID_TRANSFORM => "INVALID_TRANSFORM",
        types::INVALID_PROTOCOL => "INVALID_PROTOCOL",
        types::UNSUPPORTED_CLIENT_TYPE => "UNSUPPORTED_CLIENT_TYPE",
        _ => "UNKNOWN",
    }
}

/// Binds `addr`, with a clear message when the port is taken.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind {addr}: {e} (is another copy running?)"))
}
