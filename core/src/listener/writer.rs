//! The replies of one client connection waiting to be written: queued as
//! the encoded frames they are (no copy), written together with one
//! vectored write when several are ready.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Most frames handed to one vectored write.
const MAX_SLICES: usize = 64;

/// Encoded replies not yet written, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    frames: VecDeque<Bytes>,
    bytes: usize,
}

impl Replies {
    /// Queues one encoded reply.
    pub fn push(&mut self, frame: Bytes) {
        if !frame.is_empty() {
            self.bytes += frame.len();
            self.frames.push_back(frame);
        }
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Forgets everything queued (the client is gone).
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    /// Writes what the socket takes of the queued frames, in one write;
    /// returns how many bytes went out. Cancel-safe: nothing is consumed
    /// until [`Replies::written`] is called with the count.
    pub async fn write_to<W: AsyncWrite + Unpin>(&self, wr: &mut W) -> std::io::Result<usize> {
        if self.frames.len() == 1 {
            return wr.write(&self.frames[0]).await;
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = self.frames.len().min(MAX_SLICES);
        for (slice, frame) in slices.iter_mut().zip(&self.frames) {
            *slice = IoSlice::new(frame);
        }
        wr.write_vectored(&slices[..n]).await
    }

    /// Drops the first `n` bytes, which were written.
    pub fn written(&mut self, mut n: usize) {
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.frames.front_mut() else {
                break;
            };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.frames.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn partial_writes_resume_where_they_stopped() {
        let mut q = Replies::default();
        for f in ["abc", "", "defg", "hi"] {
            q.push(Bytes::from(f));
        }
        assert_eq!(q.bytes(), 9);
        // A writer that takes at most 2 bytes per call.
        let (mut a, mut b) = tokio::io::duplex(2);
        let mut got = Vec::new();
        while !q.is_empty() {
            let n = q.write_to(&mut a).await.unwrap();
            q.written(n);
            let mut buf = [0; 8];
            let r = tokio::io::AsyncReadExt::read(&mut b, &mut buf)
                .await
                .unwrap();
            got.extend_from_slice(&buf[..r]);
        }
        assert_eq!(got, b"abcdefghi");
        assert_eq!(q.bytes(), 0);
    }
}
