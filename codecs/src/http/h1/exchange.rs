//! One try on one endpoint: send the whole request (head and body, one
//! vectored write), read the answer's head. A pooled connection found
//! closed before any answer byte is replaced by a new one, once.

use bytes::{Buf, Bytes};
use metaproxy_core::ProxyError;
use metaproxy_core::upstream::{Pool, Reuse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::head::{self, Head};
use super::pool::{self, LeanConn, LeanConnector, LeanLease};
use crate::http::HttpError;

/// Largest answer head accepted from an upstream.
const MAX_ANSWER_HEAD: usize = 64 * 1024;

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// `content-length` bytes.
    Length(u64),
    /// `transfer-encoding: chunked`, relayed as is.
    Chunked,
    /// Until the upstream closes.
    Close,
}

/// An answer head and the connection its body arrives on.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The head.
    pub head: Head,
    /// The status code.
    pub status: u16,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection can carry another exchange after this body.
    pub reusable: bool,
    /// The connection (its buffer may already hold body bytes).
    pub conn: LeanLease,
}

/// Sends `request` + `body` and reads the answer head; `now` is when the
/// request started (pooled connections idle too long are not used).
pub(crate) async fn exchange(
    pool: &Pool<LeanConnector>,
    request: &Bytes,
    body: &Bytes,
    head_request: bool,
    now: std::time::Instant,
) -> Result<Answer, ProxyError> {
    let address = pool.address();
    let failed = |e: HttpError| Err(e.into_proxy_error());
    // After one stale pooled connection, the request goes on a new one.
    let mut reuse = Reuse::Idle;
    loop {
        let mut conn = pool.acquire_exclusive(reuse, now).await?;
        let pooled = conn.reused();
        reuse = Reuse::New;
        let mut out = request.clone().chain(body.clone());
        if let Err(source) = conn.stream.write_all_buf(&mut out).await {
            if pooled {
                continue;
            }
            return failed(HttpError::Io { address, source });
        }
        match read_answer(&mut conn, head_request).await {
            Ok(Some((head, status, framing, reusable))) => {
                return Ok(Answer {
                    head,
                    status,
                    framing,
                    reusable,
                    conn,
                });
            }
            // Closed before a single byte: a stale pooled connection.
            Ok(None) if pooled => continue,
            Ok(None) => return failed(HttpError::Closed { address }),
            Err(ReadError::Io(source)) if pooled && conn.buf.is_empty() => {
                tracing::debug!(%address, error = %source, "pooled connection failed; retrying on a new one");
                continue;
            }
            Err(ReadError::Io(source)) => return failed(HttpError::Io { address, source }),
            Err(ReadError::Closed) => return failed(HttpError::Closed { address }),
            Err(ReadError::Head(e)) => {
                return failed(HttpError::BadAnswer {
                    address,
                    reason: e.to_string(),
                });
            }
            Err(ReadError::TooLarge) => {
                return failed(HttpError::BadAnswer {
                    address,
                    reason: format!("head larger than {MAX_ANSWER_HEAD} bytes"),
                });
            }
        }
    }
}

enum ReadError {
    Io(std::io::Error),
    Closed,
    Head(head::HeadError),
    TooLarge,
}

/// Reads the final answer head (interim 1xx answers are skipped); `None`
/// when the connection closed before any byte.
async fn read_answer(
    conn: &mut LeanConn,
    head_request: bool,
) -> Result<Option<(Head, u16, Framing, bool)>, ReadError> {
    let mut received = false;
    loop {
        if let Some(head) = head::parse_response(&mut conn.buf).map_err(ReadError::Head)? {
            let status = head::status(&head);
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let framing = framing(&head, status, head_request);
            let keep = if head.minor == 0 {
                head.connection_has(b"keep-alive")
            } else {
                !head.connection_has(b"close")
            };
            let reusable = keep && framing != Framing::Close && status != 101;
            return Ok(Some((head, status, framing, reusable)));
        }
        if conn.buf.len() >= MAX_ANSWER_HEAD {
            return Err(ReadError::TooLarge);
        }
        pool::reserve(&mut conn.buf);
        let n = conn
            .stream
            .read_buf(&mut conn.buf)
            .await
            .map_err(ReadError::Io)?;
        if n == 0 {
            return if received {
                Err(ReadError::Closed)
            } else {
                Ok(None)
            };
        }
        received = true;
    }
}

/// How the body of an answer with this head is delimited (RFC 9112 §6.3).
/// The head's framing headers were checked when it was parsed (a
/// `transfer-encoding` ends in `chunked` and comes without a
/// `content-length`; lengths are digits and agree), so there is one
/// reading only.
pub(crate) fn framing(head: &Head, status: u16, head_request: bool) -> Framing {
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Framing::None;
    }
    if head.is_chunked() {
        return Framing::Chunked;
    }
    match head.content_length() {
        Ok(Some(n)) => Framing::Length(n),
        _ => Framing::Close,
    }
}
