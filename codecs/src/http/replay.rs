//! A streamed request body that can be sent again: frames go upstream as
//! the client sends them (nothing waits for the whole body), and a copy of
//! each is kept, up to [`REPLAY_LIMIT`] bytes, so that a retry can start
//! over from the first byte and then keep pulling from the client. Once
//! more than the limit has been read, nothing is kept and the body can no
//! longer be retried. This is how gRPC calls (whose requests always carry
//! a body) get retries, like Envoy's buffered retries.
//!
//! Only the newest try's cursor may pull from the client: an older try
//! still being torn down gets an error instead of stealing frames.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};

/// Most request body bytes kept for a retry.
pub const REPLAY_LIMIT: usize = 256 * 1024;

/// The error a body yields.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("the request body went to a newer try")]
struct Superseded;

#[derive(Debug)]
struct State<B> {
    /// The client's body, until it ends.
    inner: Option<B>,
    /// Data frames seen so far (while not over the limit).
    chunks: Vec<Bytes>,
    /// The client's trailers, once seen.
    trailers: Option<HeaderMap>,
    /// Bytes read from the client.
    size: usize,
    /// More than [`REPLAY_LIMIT`] was read: nothing kept any more.
    overflow: bool,
    /// The newest cursor's number.
    generation: u32,
}

/// The shared body behind every try's [`Cursor`].
#[derive(Debug)]
pub struct Replayable<B>(Arc<Mutex<State<B>>>);

impl<B> Clone for Replayable<B> {
    fn clone(&self) -> Self {
        Replayable(self.0.clone())
    }
}

impl<B> Replayable<B> {
    /// Wraps the client's body; returns it with the first try's cursor.
    pub fn new(inner: B) -> (Self, Cursor<B>) {
        let shared = Arc::new(Mutex::new(State {
            inner: Some(inner),
            chunks: Vec::new(),
            trailers: None,
            size: 0,
            overflow: false,
            generation: 0,
        }));
        let first = Cursor {
            shared: shared.clone(),
            generation: 0,
            next: 0,
            trailers_sent: false,
        };
        (Replayable(shared), first)
    }

    /// The whole body (data and trailers) once the client sent all of it
    /// and it was small enough to keep (for a mirror); `None` before that.
    pub fn copy(&self) -> Option<(Vec<Bytes>, Option<HeaderMap>)> {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (state.inner.is_none() && !state.overflow)
            .then(|| (state.chunks.clone(), state.trailers.clone()))
    }

    /// Whether a new try can still get the whole body.
    pub fn can_replay(&self) -> bool {
        !self.0.lock().unwrap_or_else(|p| p.into_inner()).overflow
    }

    /// A body for a new try, from the first byte (older cursors stop);
    /// `None` once the body was too large to keep.
    pub fn cursor(&self) -> Option<Cursor<B>> {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if state.overflow {
            return None;
        }
        state.generation += 1;
        Some(Cursor {
            shared: self.0.clone(),
            generation: state.generation,
            next: 0,
            trailers_sent: false,
        })
    }
}

/// One try's view of a [`Replayable`] body.
#[derive(Debug)]
pub struct Cursor<B> {
    shared: Arc<Mutex<State<B>>>,
    generation: u32,
    next: usize,
    trailers_sent: bool,
}

impl<B> Body for Cursor<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let mut state = this.shared.lock().unwrap_or_else(|p| p.into_inner());
        if !state.overflow && this.next < state.chunks.len() {
            this.next += 1;
            return Poll::Ready(Some(Ok(Frame::data(state.chunks[this.next - 1].clone()))));
        }
        if state.generation != this.generation {
            return Poll::Ready(Some(Err(Box::new(Superseded))));
        }
        let Some(inner) = state.inner.as_mut() else {
            if !this.trailers_sent
                && let Some(t) = &state.trailers
            {
                this.trailers_sent = true;
                return Poll::Ready(Some(Ok(Frame::trailers(t.clone()))));
            }
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    state.size += data.len();
                    if state.overflow {
                    } else if state.size > REPLAY_LIMIT {
                        state.overflow = true;
                        state.chunks = Vec::new();
                    } else {
                        state.chunks.push(data.clone());
                        this.next += 1;
                    }
                } else if let Some(t) = frame.trailers_ref() {
                    state.trailers = Some(t.clone());
                    this.trailers_sent = true;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(
                super::upstream::ClientBodyError(e.into()),
            )))),
            Poll::Ready(None) => {
                state.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        let state = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        state.inner.is_none()
            && (state.overflow || self.next >= state.chunks.len())
            && (self.trailers_sent || state.trailers.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A client body of prepared frames.
    struct Frames(std::vec::IntoIter<Frame<Bytes>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(self.0.next().map(Ok))
        }
    }

    fn body(sizes: &[usize], trailers: bool) -> Frames {
        let mut frames: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| Frame::data(Bytes::from(vec![i as u8; *n])))
            .collect();
        if trailers {
            let mut t = HeaderMap::new();
            t.insert("x-t", http::HeaderValue::from_static("1"));
            frames.push(Frame::trailers(t));
        }
        Frames(frames.into_iter())
    }

    async fn read_all<B>(c: Cursor<B>) -> Result<(Vec<u8>, bool), BoxError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let collected = c.collect().await?;
        let trailers = collected.trailers().is_some();
        Ok((collected.to_bytes().to_vec(), trailers))
    }

    #[tokio::test]
    async fn a_retry_sees_the_whole_body_however_far_the_first_try_got() {
        let (shared, mut first) = Replayable::new(body(&[3, 4, 5], true));
        // The first try reads one frame, then fails.
        let f = first.frame().await.unwrap().unwrap();
        assert_eq!(f.into_data().unwrap().len(), 3);
        let second = shared.cursor().unwrap();
        // The superseded first try cannot pull from the client any more.
        assert!(first.frame().await.unwrap().is_err());
        let (bytes, trailers) = read_all(second).await.unwrap();
        assert_eq!(bytes.len(), 12);
        assert_eq!(&bytes[..3], &[0, 0, 0]);
        assert_eq!(&bytes[7..], &[2; 5]);
        assert!(trailers);
        // A third try after the end replays everything from memory.
        let (bytes, trailers) = read_all(shared.cursor().unwrap()).await.unwrap();
        assert_eq!((bytes.len(), trailers), (12, true));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_not_replayed() {
        let (shared, first) = Replayable::new(body(&[REPLAY_LIMIT, 1, 10], false));
        assert!(shared.can_replay());
        let (bytes, _) = read_all(first).await.unwrap();
        assert_eq!(bytes.len(), REPLAY_LIMIT + 11);
        assert!(!shared.can_replay());
        assert!(shared.cursor().is_none());
        assert!(shared.copy().is_none(), "too large to mirror");
    }

    #[tokio::test]
    async fn a_mirror_copy_exists_only_once_the_whole_body_was_read() {
        let (shared, mut first) = Replayable::new(body(&[3, 4], true));
        assert!(shared.copy().is_none());
        first.frame().await.unwrap().unwrap();
        assert!(shared.copy().is_none(), "only part of the body was read");
        read_all(first).await.unwrap();
        let (chunks, trailers) = shared.copy().expect("the whole body");
        assert_eq!(chunks.concat(), [0, 0, 0, 1, 1, 1, 1]);
        assert!(trailers.is_some());
    }

    #[tokio::test]
    async fn a_try_that_never_started_leaves_everything_for_the_retry() {
        let (shared, first) = Replayable::new(body(&[REPLAY_LIMIT, 7], false));
        drop(first);
        let (bytes, _) = read_all(shared.cursor().unwrap()).await.unwrap();
        assert_eq!(bytes.len(), REPLAY_LIMIT + 7);
    }
}
