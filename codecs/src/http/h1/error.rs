//! How relaying an answer body can stop early.

use std::time::Duration;

/// A body relay that stopped before the end of the message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    /// The upstream closed before the end of the body.
    #[error("upstream closed the body early")]
    Truncated,
    /// The chunked framing is broken from its first line: nothing was
    /// written to the client, which can still get an error answer.
    #[error("bad chunked answer: {0}")]
    Refused(super::chunked::ChunkError),
    /// The chunked framing broke after the head was relayed.
    #[error("bad chunked body: {0}")]
    Chunked(#[from] super::chunked::ChunkError),
    /// No byte moved for the stream idle timeout.
    #[error("body idle for {0:?}")]
    Idle(Duration),
    /// The answer was not over by the route timeout.
    #[error("answer not complete within the route timeout")]
    Deadline,
    /// A socket error on either side.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
