//! The body of an answer the lean path read from a pooled HTTP/1.1
//! upstream connection, for a client hyper serves (HTTP/2): data slices
//! of the connection's read buffer, read as the client's stream takes
//! them, then a chunked body's trailers; the connection goes back to its pool the moment the body is
//! complete, and is closed if the body is dropped before.

use std::task::{Context, Poll};

use super::chunked::ChunkError;
use super::decode::{BodyDecoder, Piece, Truncated};
use super::exchange::Framing;
use super::pool::{LeanConn, LeanLease, reserve};

/// Why a lean answer body failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LeanBodyError {
    /// The chunk framing broke the grammar.
    #[error("bad chunked answer body: {0}")]
    Chunk(#[source] ChunkError),
    /// The upstream closed mid-body.
    #[error(transparent)]
    Truncated(#[from] Truncated),
    /// Reading the socket failed.
    #[error("reading the answer body: {0}")]
    Io(#[source] std::io::Error),
}

/// An answer body read off a lean upstream connection.
#[derive(Debug)]
pub struct LeanAnswerBody {
    /// The connection, until the body is complete.
    conn: Option<LeanLease>,
    decoder: BodyDecoder,
    /// The connection can carry another exchange after this body.
    reusable: bool,
}

impl LeanAnswerBody {
    /// The body delimited by `framing` on `conn` (whose buffer may already
    /// hold some of it).
    pub(crate) fn new(conn: LeanLease, framing: Framing, reusable: bool) -> Self {
        let mut body = Self {
            conn: Some(conn),
            decoder: BodyDecoder::new(framing),
            reusable,
        };
        body.finish_if_done();
        body
    }

    /// The next piece (data, or a chunked body's trailers); `None` once
    /// the body is complete.
    pub(crate) fn poll_piece(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Piece, LeanBodyError>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match self.decoder.next(&mut conn.buf) {
                Err(e) => return self.fail(LeanBodyError::Chunk(e)),
                Ok(Some(piece)) => {
                    self.finish_if_done();
                    return Poll::Ready(Some(Ok(piece)));
                }
                Ok(None) if self.decoder.is_done() => {
                    self.finish_if_done();
                    return Poll::Ready(None);
                }
                Ok(None) => {}
            }
            let LeanConn { stream, buf, .. } = &mut **conn;
            match stream.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return self.fail(LeanBodyError::Io(e)),
                Poll::Ready(Ok(())) => {}
            }
            reserve(buf);
            match stream.try_read_buf(buf) {
                Ok(0) => {
                    if let Err(e) = self.decoder.closed() {
                        return self.fail(e.into());
                    }
                    // A close-delimited body: over, the connection with it.
                    self.conn = None;
                    return Poll::Ready(None);
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return self.fail(LeanBodyError::Io(e)),
            }
        }
    }

    /// Whether the body is complete.
    pub(crate) fn is_end(&self) -> bool {
        self.conn.is_none() && self.decoder.is_done()
    }

    /// Bytes still to come, when the framing says.
    pub(crate) fn remaining(&self) -> Option<u64> {
        self.decoder.remaining()
    }

    /// A complete body gives its connection back (when it can carry
    /// another exchange).
    fn finish_if_done(&mut self) {
        if self.decoder.is_done()
            && let Some(conn) = self.conn.take()
            && self.reusable
        {
            conn.release();
        }
    }

    /// Ends the body with `e`; the connection is closed.
    fn fail(&mut self, e: LeanBodyError) -> Poll<Option<Result<Piece, LeanBodyError>>> {
        self.conn = None;
        Poll::Ready(Some(Err(e)))
    }
}
