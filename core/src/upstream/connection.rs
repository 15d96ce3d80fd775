//! One upstream connection: a writer task batching frames, a reader task
//! matching responses to waiting requests (by id, or in order with the id
//! checked), and a bound on the calls in flight.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::cluster::Permit;
use crate::codec::{Codec, Decoder};
use crate::error::{ErrorKind, Origin, ProxyError};
use crate::message::{Message, MessageKind};
use crate::mutation::Mutation;
use crate::upstream::stream::UpstreamStream;

use super::in_flight::InFlight;

/// Frames queued for one upstream connection before senders wait.
const WRITE_QUEUE: usize = 1024;
/// Largest batch gathered into one write.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// A call waiting for its answer: its id and where the answer goes. Each
/// holds a place in the connection's [`InFlight`], given back by the reader
/// when the answer comes (or the caller gave up and the waiter is purged).
type Waiter<S> = (u64, oneshot::Sender<Message<S>>);

/// A frame for the writer, with the request waiting for its answer.
struct Outgoing<S> {
    frame: Bytes,
    waiter: Option<Waiter<S>>,
}

/// A live upstream connection, shared by every request sent on it.
pub struct UpstreamConn<C: Codec> {
    writer: mpsc::Sender<Outgoing<C::State>>,
    /// The calls in flight and their bound.
    in_flight: Arc<InFlight>,
    next_id: AtomicU64,
    max_id: u64,
    closed: CancellationToken,
    retired: CancellationToken,
    /// Answers come in call order here (`pipeline`, `exclusive`).
    in_order: bool,
    /// A caller gave up on an in-order connection: the calls behind its
    /// answer wait for it, so the connection takes no new call (see
    /// [`Answer`]).
    abandoned: AtomicBool,
    peer: SocketAddr,
}

impl<C: Codec> Drop for UpstreamConn<C> {
    /// Nobody can send on it any more: finish what is in flight, then close.
    fn drop(&mut self) {
        self.retired.cancel();
    }
}

impl<C: Codec> UpstreamConn<C> {
    /// Wraps a connected stream and starts its reader and writer tasks.
    /// `matching` says how answers find their calls and how many calls
    /// may be in flight; `permit` (a circuit-breaker connection slot) is
    /// held until the connection closes.
    pub fn start(
        codec: Arc<C>,
        stream: UpstreamStream,
        peer: SocketAddr,
        matching: Matching,
        permit: Option<Permit>,
    ) -> Self {
        match stream {
            UpstreamStream::Plain(s) => {
                let (rd, wr) = s.into_split();
                Self::start_halves(codec, rd, wr, peer, matching, permit)
            }
            UpstreamStream::Tls(s) => {
                let (rd, wr) = tokio::io::split(*s);
                Self::start_halves(codec, rd, wr, peer, matching, permit)
            }
        }
    }

    /// [`UpstreamConn::start`] on the stream's two halves.
    fn start_halves<R, W>(
        codec: Arc<C>,
        rd: R,
        wr: W,
        peer: SocketAddr,
        matching: Matching,
        permit: Option<Permit>,
    ) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (writer, write_rx) = mpsc::channel(WRITE_QUEUE);
        let in_flight = Arc::new(InFlight::new(matching.depth));
        let (waiters, waiter_rx) = mpsc::unbounded_channel();
        let closed = CancellationToken::new();
        let retired = CancellationToken::new();
        tokio::spawn(write_loop(
            wr,
            write_rx,
            waiters,
            closed.clone(),
            retired.clone(),
        ));
        tokio::spawn(read_loop(
            ReadSide {
                codec: codec.clone(),
                writer: writer.clone(),
                closed: closed.clone(),
                retired: retired.clone(),
                peer,
                in_order: matching.in_order,
                in_flight: in_flight.clone(),
                _permit: permit,
            },
            rd,
            waiter_rx,
        ));
        Self {
            writer,
            in_flight,
            next_id: AtomicU64::new(1),
            max_id: codec.max_request_id().max(1),
            closed,
            retired,
            in_order: matching.in_order,
            abandoned: AtomicBool::new(false),
            peer,
        }
    }

    /// Whether the connection is up and takes new calls (not after a
    /// caller gave up on it in order: then it only finishes its calls).
    pub fn is_open(&self) -> bool {
        !self.closed.is_cancelled() && !self.abandoned.load(Ordering::Relaxed)
    }

    /// The endpoint address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Calls sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.count()
    }

    fn allocate_id(&self) -> u64 {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        n % self.max_id + 1
    }

    fn reset(&self, why: &str) -> ProxyError {
        ProxyError::new(
            ErrorKind::UpstreamReset,
            Origin::Upstream,
            format!("connection to {} {why}", self.peer),
        )
    }

    /// Sends a request and returns where its response will arrive.
    pub async fn call(
        &self,
        codec: &C,
        request: &Message<C::State>,
        mutation: &Mutation,
    ) -> Result<Answer<'_, C::State>, ProxyError> {
        let id = self.allocate_id();
        let frame = encode(codec, request, id, mutation)?;
        self.in_flight.enter().await;
        let (tx, rx) = oneshot::channel();
        let sent = self
            .writer
            .send(Outgoing {
                frame,
                waiter: Some((id, tx)),
            })
            .await;
        if sent.is_err() {
            self.in_flight.leave(1);
            return Err(self.reset("closed"));
        }
        Ok(Answer {
            rx,
            abandon: self.in_order.then_some(&self.abandoned),
            peer: self.peer,
        })
    }

    /// Sends a request that expects no response.
    pub async fn send_oneway(
        &self,
        codec: &C,
        request: &Message<C::State>,
        mutation: &Mutation,
    ) -> Result<(), ProxyError> {
        let frame = encode(codec, request, self.allocate_id(), mutation)?;
        self.writer
            .send(Outgoing {
                frame,
                waiter: None,
            })
            .await
            .map_err(|_| self.reset("closed"))
    }

    /// Closes the connection; waiting requests see a reset.
    pub fn close(&self) {
        self.closed.cancel();
    }
}

/// The answer to one call, awaited. Dropped unanswered on a connection
/// that matches answers in call order (the caller gave up: a timeout, a
/// client gone), it retires the connection: the server will still answer
/// that call first, so the calls written after it wait behind it; new calls
/// go to another connection, and this one closes once its calls are
/// answered or abandoned.
pub struct Answer<'c, S> {
    rx: oneshot::Receiver<Message<S>>,
    abandon: Option<&'c AtomicBool>,
    peer: SocketAddr,
}

impl<S> Future for Answer<'_, S> {
    /// `Err` when the connection closed before the answer came.
    type Output = Result<Message<S>, oneshot::error::RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let answer = ready!(Pin::new(&mut self.rx).poll(cx));
        self.abandon = None;
        Poll::Ready(answer)
    }
}

impl<S> Drop for Answer<'_, S> {
    fn drop(&mut self) {
        if let Some(flag) = self.abandon.take()
            && !flag.swap(true, Ordering::Relaxed)
        {
            debug!(peer = %self.peer, "a call on an in-order upstream connection gave up; the connection takes no new calls");
        }
    }
}

fn encode<C: Codec>(
    codec: &C,
    request: &Message<C::State>,
    id: u64,
    mutation: &Mutation,
) -> Result<Bytes, ProxyError> {
    let mut buf = BytesMut::with_capacity(request.body.len() + 64);
    codec
        .encode_request(request, id, mutation, &mut buf)
        .map_err(|e| ProxyError::new(ErrorKind::BadRequest, Origin::Internal, e.message))?;
    Ok(buf.freeze())
}

/// Writes queued frames, gathering whatever is queued into one write. Each
/// waiter is handed to the reader before its frame is written, in write
/// order, so an answer never arrives before its waiter and in-order matching
/// sees waiters in the order their requests went out.
///
/// When the connection is retired (its handle dropped) the writer writes
/// what is queued, then stops; the reader finishes the answers in flight.
async fn write_loop<S, W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Outgoing<S>>,
    waiters: mpsc::UnboundedSender<Waiter<S>>,
    closed: CancellationToken,
    retired: CancellationToken,
) {
    let mut batch = BytesMut::new();
    loop {
        let first = tokio::select! {
            _ = closed.cancelled() => break,
            next = rx.recv() => match next {
                Some(out) => out,
                None => break,
            },
            _ = retired.cancelled() => match rx.try_recv() {
                Ok(out) => out,
                // Retired and drained: the reader closes once answers are in.
                Err(_) => return,
            },
        };
        if let Some(w) = first.waiter {
            let _ = waiters.send(w);
        }
        let result = match rx.try_recv() {
            // Only one frame waiting: write it without copying.
            Err(_) => wr.write_all(&first.frame).await,
            Ok(second) => {
                batch.extend_from_slice(&first.frame);
                let mut next = Some(second);
                while let Some(out) = next.take() {
                    if let Some(w) = out.waiter {
                        let _ = waiters.send(w);
                    }
                    batch.extend_from_slice(&out.frame);
                    if batch.len() < MAX_BATCH_BYTES {
                        next = rx.try_recv().ok();
                    }
                }
                let r = wr.write_all(&batch).await;
                batch.clear();
                r
            }
        };
        if let Err(e) = result {
            debug!(error = %e, "upstream write failed");
            break;
        }
    }
    closed.cancel();
}

/// What the reader needs besides the socket.
struct ReadSide<C: Codec> {
    codec: Arc<C>,
    writer: mpsc::Sender<Outgoing<C::State>>,
    closed: CancellationToken,
    retired: CancellationToken,
    peer: SocketAddr,
    in_order: bool,
    in_flight: Arc<InFlight>,
    /// The circuit-breaker slot, released when the reader ends.
    _permit: Option<Permit>,
}

/// How answers find their calls on one connection, and how many calls it
/// carries at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matching {
    /// Answers come in the order the calls went out (`pipeline`); else
    /// they are matched by id (`multiplex`, `exclusive`).
    pub in_order: bool,
    /// The most calls in flight at once; more wait for an answer.
    pub depth: usize,
}

/// Calls in the order they were written (`pipeline`): an answer goes to
/// the oldest, unless its id names another call in flight (the server
/// answered out of order: the id is trusted, and the log says so once).
struct InOrder<S> {
    calls: VecDeque<Waiter<S>>,
    out_of_order: bool,
}

impl<S> InOrder<S> {
    fn take(&mut self, id: u64, peer: SocketAddr) -> Option<Waiter<S>> {
        let oldest = self.calls.front()?.0;
        if oldest != id
            && let Some(at) = self.calls.iter().position(|w| w.0 == id)
        {
            if !self.out_of_order {
                self.out_of_order = true;
                warn!(
                    %peer,
                    "upstream answered out of order; answers are matched by id (`mode: multiplex` fits this server)"
                );
            }
            return self.calls.remove(at);
        }
        // The oldest call's answer (or a server that does not echo ids).
        self.calls.pop_front()
    }
}

/// Requests waiting for answers: by id, or in the order they were written.
enum Waiting<S> {
    ById(HashMap<u64, Waiter<S>>),
    InOrder(InOrder<S>),
}

impl<S> Waiting<S> {
    fn add(&mut self, waiter: Waiter<S>) {
        match self {
            Waiting::ById(m) => {
                m.insert(waiter.0, waiter);
            }
            Waiting::InOrder(q) => q.calls.push_back(waiter),
        }
    }

    fn take(&mut self, id: u64, peer: SocketAddr) -> Option<Waiter<S>> {
        match self {
            Waiting::ById(m) => m.remove(&id),
            Waiting::InOrder(q) => q.take(id, peer),
        }
    }

    fn len(&self) -> usize {
        match self {
            Waiting::ById(m) => m.len(),
            Waiting::InOrder(q) => q.calls.len(),
        }
    }

    /// Whether no live waiter is left (waiters that gave up are dropped first).
    fn drained(&mut self) -> bool {
        self.purge();
        match self {
            Waiting::ById(m) => m.is_empty(),
            Waiting::InOrder(q) => q.calls.iter().all(|w| w.1.is_closed()),
        }
    }

    /// Drops waiters that gave up (in-order waiters must keep their
    /// place); returns how many.
    fn purge(&mut self) -> usize {
        match self {
            Waiting::ById(m) => {
                let before = m.len();
                m.retain(|_, w| !w.1.is_closed());
                before - m.len()
            }
            Waiting::InOrder(_) => 0,
        }
    }
}

async fn read_loop<C: Codec, R: AsyncRead + Unpin>(
    side: ReadSide<C>,
    mut rd: R,
    mut waiter_rx: mpsc::UnboundedReceiver<Waiter<C::State>>,
) {
    let ReadSide {
        codec,
        writer,
        closed,
        retired,
        peer,
        in_order,
        in_flight,
        _permit,
    } = side;
    // After retirement, waiters are taken as they come, and the loop ends
    // once the writer is gone and nothing is waiting.
    let mut retiring = false;
    let mut writer_gone = false;
    let mut decoder = codec.decoder();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut waiting = if in_order {
        Waiting::InOrder(InOrder {
            calls: VecDeque::new(),
            out_of_order: false,
        })
    } else {
        Waiting::ById(HashMap::new())
    };
    let mut purge_at = 1024;
    'read: loop {
        let read = tokio::select! {
            _ = closed.cancelled() => break,
            _ = retired.cancelled(), if !retiring => {
                retiring = true;
                continue;
            }
            w = waiter_rx.recv(), if retiring && !writer_gone => {
                match w {
                    Some(w) => waiting.add(w),
                    None => writer_gone = true,
                }
                if writer_gone && waiting.drained() {
                    debug!(%peer, "retired upstream connection drained");
                    break;
                }
                continue;
            }
            r = rd.read_buf(&mut buf) => r,
        };
        match read {
            Ok(0) => {
                debug!(%peer, "upstream closed the connection");
                break;
            }
            Err(e) => {
                debug!(%peer, error = %e, "upstream read failed");
                break;
            }
            Ok(_) => {}
        }
        while let Ok(w) = waiter_rx.try_recv() {
            waiting.add(w);
        }
        loop {
            let msg = match decoder.decode(&mut buf) {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(e) => {
                    warn!(%peer, error = %e, "bad frame from upstream; closing the connection");
                    break 'read;
                }
            };
            match msg.kind {
                MessageKind::Response | MessageKind::Error => {
                    match waiting.take(msg.request_id, peer) {
                        // The waiter may have timed out; then the answer is
                        // dropped. Its place is free either way.
                        Some((_, tx)) => {
                            in_flight.leave(1);
                            let _ = tx.send(msg);
                        }
                        None => debug!(%peer, id = msg.request_id, "response nobody waits for"),
                    }
                }
                MessageKind::Heartbeat => {
                    let mut out = BytesMut::new();
                    codec.heartbeat_reply(&msg, &mut out);
                    let _ = writer.try_send(Outgoing {
                        frame: out.freeze(),
                        waiter: None,
                    });
                }
                MessageKind::HeartbeatResponse => {}
                MessageKind::Request | MessageKind::Oneway => {
                    debug!(%peer, "upstream sent a request; ignored");
                }
            }
        }
        if waiting.len() >= purge_at {
            in_flight.leave(waiting.purge());
            purge_at = (waiting.len() * 2).max(1024);
        }
        if writer_gone && waiting.drained() {
            debug!(%peer, "retired upstream connection drained");
            break;
        }
    }
    closed.cancel();
}
