//! Relaying an answer's body from the upstream connection to the client
//! as it arrives: the bytes go through untouched (chunked framing
//! included), the first write carries the re-encoded head with whatever
//! body bytes came with it (one vectored write), and the read buffer is
//! reused, so memory stays bounded by one buffer whatever the body size.
//! A close-delimited body may be re-chunked on the way, so that the
//! client's keep-alive connection outlives the upstream's.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::chunked::ChunkScanner;
use super::error::RelayError;
use super::exchange::Framing;
use super::pool::{self, LeanConn};
use metaproxy_core::deadline::LazyDeadline;

/// How one wait for upstream bytes ended.
enum Read {
    Done(std::io::Result<usize>),
    Idle,
    Deadline,
}

/// Writes `head` then the body delimited by `framing` to `out`; each
/// read from the upstream and each write to the client must make progress
/// within `idle`, and the upstream must have sent the whole answer by
/// `deadline` (the route timeout) when there is one. With `rechunk`, a
/// close-delimited body is written as chunks (`head` then says
/// `transfer-encoding: chunked`), ended by the last chunk when the
/// upstream closes.
pub(crate) async fn relay<W: AsyncWrite + Unpin>(
    up: &mut LeanConn,
    framing: Framing,
    head: Bytes,
    out: &mut W,
    idle: Duration,
    mut deadline: Option<&mut LazyDeadline>,
    rechunk: bool,
) -> Result<(), RelayError> {
    let rechunk = rechunk && framing == Framing::Close;
    let mut pending = Some(head);
    let mut left = match framing {
        Framing::None => {
            return write(out, pending.take().unwrap_or_default(), Bytes::new(), idle).await;
        }
        Framing::Length(n) => n,
        Framing::Chunked | Framing::Close => u64::MAX,
    };
    let mut chunks = (framing == Framing::Chunked).then(ChunkScanner::default);
    loop {
        let take = match &mut chunks {
            Some(scanner) => match scanner.advance(&up.buf) {
                Ok(n) => n,
                Err(e) if pending.is_some() => return Err(RelayError::Refused(e)),
                Err(e) => return Err(e.into()),
            },
            None => usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(up.buf.len()),
        };
        let piece = up.buf.split_to(take).freeze();
        if framing != Framing::Close {
            left = left.saturating_sub(take as u64);
        }
        let done = match &chunks {
            Some(scanner) => scanner.is_done(),
            None => left == 0,
        };
        // A chunked answer's head waits for its first chunk-size line: a
        // bad one is refused before anything reaches the client.
        let hold = chunks.as_ref().is_some_and(|s| !s.past_first_line());
        if hold && !piece.is_empty() {
            let mut joined = BytesMut::from(pending.take().unwrap_or_default());
            joined.extend_from_slice(&piece);
            pending = Some(joined.freeze());
        } else if rechunk && !piece.is_empty() {
            let size = format!("{:x}\r\n", piece.len());
            let mut framed = pending
                .take()
                .unwrap_or_default()
                .chain(size.as_bytes())
                .chain(piece)
                .chain(&b"\r\n"[..]);
            write_buf(out, &mut framed, idle).await?;
        } else if !hold && (!piece.is_empty() || pending.is_some()) {
            write(out, pending.take().unwrap_or_default(), piece, idle).await?;
        }
        if done {
            return Ok(());
        }
        pool::reserve(&mut up.buf);
        let reading = async {
            match tokio::time::timeout(idle, up.stream.read_buf(&mut up.buf)).await {
                Ok(r) => Read::Done(r),
                Err(_) => Read::Idle,
            }
        };
        let outcome = match deadline.as_deref_mut() {
            None => reading.await,
            Some(d) => tokio::select! {
                biased;
                r = reading => r,
                () = d.expired() => Read::Deadline,
            },
        };
        let read = match outcome {
            Read::Done(Ok(0)) if rechunk => {
                let last = pending.take().unwrap_or_default();
                return write(out, last, Bytes::from_static(b"0\r\n\r\n"), idle).await;
            }
            Read::Done(Ok(0)) if framing == Framing::Close => return Ok(()),
            Read::Done(Ok(0)) => Err(RelayError::Truncated),
            Read::Done(Ok(_)) => Ok(()),
            Read::Done(Err(e)) => Err(e.into()),
            Read::Idle => Err(RelayError::Idle(idle)),
            Read::Deadline => Err(RelayError::Deadline),
        };
        if let Err(e) = read {
            // An answer whose upstream failed before its first chunk line
            // still gets its head (then a cut body), as when not held.
            if let Some(head) = pending.take() {
                let _ = write(out, head, Bytes::new(), idle).await;
            }
            return Err(e);
        }
    }
}

/// Writes `head` then `body` (one vectored write when the socket takes
/// it), each step bounded by `idle`.
pub(crate) async fn write<W: AsyncWrite + Unpin>(
    out: &mut W,
    head: Bytes,
    body: Bytes,
    idle: Duration,
) -> Result<(), RelayError> {
    write_buf(out, &mut head.chain(body), idle).await
}

/// Writes all of `buf` (vectored when the socket takes it), bounded by
/// `idle` when the write has to wait.
async fn write_buf<W: AsyncWrite + Unpin, B: Buf>(
    out: &mut W,
    buf: &mut B,
    idle: Duration,
) -> Result<(), RelayError> {
    let mut writing = std::pin::pin!(out.write_all_buf(buf));
    // Most writes complete at once: the timer is armed only when one waits.
    let first = std::future::poll_fn(|cx| Poll::Ready(writing.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(r) => r?,
        Poll::Pending => tokio::time::timeout(idle, writing)
            .await
            .map_err(|_| RelayError::Idle(idle))??,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// An upstream socket pair whose far end writes `rest` then closes.
    async fn upstream(already: &[u8], rest: &'static [u8]) -> LeanConn {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            for piece in rest.chunks(3) {
                s.write_all(piece).await.unwrap();
            }
        });
        LeanConn {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::from(already),
            _slot: None,
        }
    }

    async fn run(
        framing: Framing,
        already: &[u8],
        rest: &'static [u8],
    ) -> (Result<(), RelayError>, Vec<u8>, Vec<u8>) {
        run_with(framing, already, rest, false).await
    }

    async fn run_with(
        framing: Framing,
        already: &[u8],
        rest: &'static [u8],
        rechunk: bool,
    ) -> (Result<(), RelayError>, Vec<u8>, Vec<u8>) {
        let mut up = upstream(already, rest).await;
        let (mut client, mut far) = tokio::io::duplex(1 << 20);
        let r = relay(
            &mut up,
            framing,
            Bytes::from_static(b"H|"),
            &mut client,
            Duration::from_secs(5),
            None,
            rechunk,
        )
        .await;
        drop(client);
        let mut seen = Vec::new();
        far.read_to_end(&mut seen).await.unwrap();
        let mut left = up.buf.to_vec();
        let mut tail = Vec::new();
        let _ = tokio::time::timeout(Duration::from_millis(200), up.stream.read_to_end(&mut tail))
            .await;
        left.extend(tail);
        (r, seen, left)
    }

    #[tokio::test]
    async fn length_bodies_stop_at_their_length() {
        let (r, seen, left) = run(Framing::Length(10), b"0123", b"456789NEXT").await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(seen, b"H|0123456789");
        assert_eq!(left, b"NEXT");
    }

    #[tokio::test]
    async fn chunked_bodies_pass_verbatim() {
        let body = b"4\r\nwiki\r\n0\r\nx-t: 1\r\n\r\n";
        let (r, seen, left) = run(
            Framing::Chunked,
            b"",
            b"4\r\nwiki\r\n0\r\nx-t: 1\r\n\r\nNEXT",
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(&seen[2..], body);
        assert_eq!(left, b"NEXT");
    }

    #[tokio::test]
    async fn truncated_and_close_delimited() {
        let (r, seen, _) = run(Framing::Length(10), b"", b"0123").await;
        assert!(matches!(r, Err(RelayError::Truncated)), "{r:?}");
        assert_eq!(seen, b"H|0123");
        let (r, seen, _) = run(Framing::Close, b"ab", b"cdef").await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(seen, b"H|abcdef");
        let (r, seen, _) = run(Framing::None, b"", b"").await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(seen, b"H|");
    }

    #[tokio::test]
    async fn a_close_delimited_body_is_re_chunked_and_ended() {
        let (r, seen, _) = run_with(Framing::Close, b"ab", b"cdef", true).await;
        assert!(r.is_ok(), "{r:?}");
        let text = String::from_utf8(seen).unwrap();
        assert!(text.starts_with("H|2\r\nab\r\n"), "{text:?}");
        assert!(text.ends_with("0\r\n\r\n"), "{text:?}");
        // The chunks, read back, are the body as sent.
        let mut body = String::new();
        let mut rest = &text[2..];
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let n = usize::from_str_radix(size, 16).unwrap();
            if n == 0 {
                assert_eq!(after, "\r\n");
                break;
            }
            body.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        assert_eq!(body, "abcdef");
        // Nothing from the upstream at all: the head, then the last chunk.
        let (r, seen, _) = run_with(Framing::Close, b"", b"", true).await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(seen, b"H|0\r\n\r\n");
    }

    #[tokio::test]
    async fn a_bad_first_chunk_line_is_refused_before_the_head() {
        for rest in [&b"5 \r\nhello\r\n0\r\n\r\n"[..], b"5\nhello\r\n0\r\n\r\n"] {
            let rest: &'static [u8] = Box::leak(rest.to_vec().into_boxed_slice());
            let (r, seen, _) = run(Framing::Chunked, b"", rest).await;
            assert!(matches!(r, Err(RelayError::Refused(_))), "{r:?}");
            assert_eq!(seen, b"");
        }
        // Broken later: the head and the good chunks went out.
        let (r, seen, _) = run(Framing::Chunked, b"2\r\nok\r\n", b"5 \r\nhello\r\n").await;
        assert!(matches!(r, Err(RelayError::Chunked(_))), "{r:?}");
        assert_eq!(seen, b"H|2\r\nok\r\n");
    }

    #[tokio::test]
    async fn an_answer_cut_before_its_first_chunk_still_gets_its_head() {
        let (r, seen, _) = run(Framing::Chunked, b"", b"").await;
        assert!(matches!(r, Err(RelayError::Truncated)), "{r:?}");
        assert_eq!(seen, b"H|");
        let (r, seen, _) = run(Framing::Chunked, b"", b"5").await;
        assert!(matches!(r, Err(RelayError::Truncated)), "{r:?}");
        assert_eq!(seen, b"H|5");
    }
}
