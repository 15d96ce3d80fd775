//! A small Redis client over tokio, just enough for rate limiting: RESP2
//! commands sent as pipelines on a few shared (multiplexed) connections.
//!
//! Why not the `redis` crate: its 1.x line needs Rust 1.88 (the workspace
//! promises 1.85), brings a dozen crates into the proxy binary, and its
//! multiplexed connection does not reconnect by itself, so it would need
//! the same wrapper as here anyway. What the rate limiter needs is small:
//! encode commands, parse five reply types, match replies to callers in
//! order, reconnect with a back-off, and never wait longer than the caller's
//! deadline (the caller wraps every call in a timeout).
//!
//! Each connection has a writer task (drains queued pipelines into one
//! `write`) and a reader task (parses replies and hands each pipeline its
//! replies in order). A pipeline is registered with the reader before its
//! bytes are written, so a reply can never arrive before its waiter.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// Largest bulk string or array accepted from the server (rate limiting reads tiny replies).
const MAX_REPLY_LEN: usize = 1 << 20;
/// Pipelines queued per connection before callers wait.
const QUEUE: usize = 1024;
/// How long a slot waits after a failed connect before trying again.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(200);

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// `+OK`
    Simple(String),
    /// `-ERR ...` (a command failed; the connection is fine).
    Error(String),
    /// `:42`
    Int(i64),
    /// `$3\r\nabc` or `$-1` (nil).
    Bulk(Option<Bytes>),
    /// `*2 ...` or `*-1` (nil).
    Array(Option<Vec<Value>>),
}

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum RedisError {
    /// Could not connect.
    #[error("cannot connect to redis at {0}: {1}")]
    Connect(String, String),
    /// A recent connect failed; not trying again yet.
    #[error("redis at {0} is unreachable (retrying shortly)")]
    Backoff(String),
    /// The connection closed before the replies arrived.
    #[error("redis connection closed")]
    Closed,
    /// The server sent bytes that are not RESP.
    #[error("redis protocol error: {0}")]
    Protocol(String),
}

/// Commands to send in one round trip.
#[derive(Debug, Default)]
pub(crate) struct Pipeline {
    bytes: Vec<u8>,
    count: usize,
}

impl Pipeline {
    /// An empty pipeline.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds one command (`args[0]` is the command name).
    pub(crate) fn cmd(&mut self, args: &[&[u8]]) -> &mut Self {
        self.bytes
            .extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            self.bytes
                .extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            self.bytes.extend_from_slice(a);
            self.bytes.extend_from_slice(b"\r\n");
        }
        self.count += 1;
        self
    }

    /// Number of commands (= replies expected).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.count
    }
}

/// Finds the end of a `\r\n`-terminated line starting at `at`.
fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

fn int(text: &[u8]) -> Result<i64, RedisError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            RedisError::Protocol(format!("bad integer {:?}", String::from_utf8_lossy(text)))
        })
}

fn length(n: i64) -> Result<Option<usize>, RedisError> {
    match n {
        -1 => Ok(None),
        n if (0..=MAX_REPLY_LEN as i64).contains(&n) => Ok(Some(n as usize)),
        n => Err(RedisError::Protocol(format!("bad length {n}"))),
    }
}

/// Parses one reply starting at `at`: `Ok(None)` when more bytes are needed,
/// else the value and the offset after it.
fn parse(buf: &[u8], at: usize) -> Result<Option<(Value, usize)>, RedisError> {
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((text, next)) = line(buf, at + 1) else {
        if buf.len() - at > MAX_REPLY_LEN {
            return Err(RedisError::Protocol("reply line too long".into()));
        }
        return Ok(None);
    };
    let string = || String::from_utf8_lossy(text).into_owned();
    Ok(match kind {
        b'+' => Some((Value::Simple(string()), next)),
        b'-' => Some((Value::Error(string()), next)),
        b':' => Some((Value::Int(int(text)?), next)),
        b'$' => match length(int(text)?)? {
            None => Some((Value::Bulk(None), next)),
            Some(n) => {
                if buf.len() < next + n + 2 {
                    return Ok(None);
                }
                if &buf[next + n..next + n + 2] != b"\r\n" {
                    return Err(RedisError::Protocol("bulk string not terminated".into()));
                }
                let data = Bytes::copy_from_slice(&buf[next..next + n]);
                Some((Value::Bulk(Some(data)), next + n + 2))
            }
        },
        b'*' => match length(int(text)?)? {
            None => Some((Value::Array(None), next)),
            Some(n) => {
                let mut items = Vec::with_capacity(n.min(64));
                let mut pos = next;
                for _ in 0..n {
                    match parse(buf, pos)? {
                        Some((v, p)) => {
                            items.push(v);
                            pos = p;
                        }
                        None => return Ok(None),
                    }
                }
                Some((Value::Array(Some(items)), pos))
            }
        },
        other => {
            return Err(RedisError::Protocol(format!(
                "unexpected reply type byte 0x{other:02x}"
            )));
        }
    })
}

type Replies = oneshot::Sender<Result<Vec<Value>, RedisError>>;

struct Job {
    bytes: Vec<u8>,
    count: usize,
    done: Replies,
}

struct Waiter {
    count: usize,
    got: Vec<Value>,
    done: Replies,
}

/// One multiplexed connection.
struct Conn {
    jobs: mpsc::Sender<Job>,
    closed: Arc<AtomicBool>,
}

impl Conn {
    async fn open(address: &str) -> Result<Self, RedisError> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| RedisError::Connect(address.to_string(), e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (mut read, mut write) = stream.into_split();
        let (jobs, mut job_rx) = mpsc::channel::<Job>(QUEUE);
        let (wait_tx, mut wait_rx) = mpsc::unbounded_channel::<Waiter>();
        let closed = Arc::new(AtomicBool::new(false));

        let writer_closed = closed.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(job) = job_rx.recv().await {
                buf.clear();
                let mut next = Some(job);
                while let Some(job) = next.take() {
                    buf.extend_from_slice(&job.bytes);
                    let waiter = Waiter {
                        count: job.count,
                        got: Vec::with_capacity(job.count),
                        done: job.done,
                    };
                    if wait_tx.send(waiter).is_err() {
                        writer_closed.store(true, Ordering::Release);
                        return;
                    }
                    if buf.len() < 64 * 1024 {
                        next = job_rx.try_recv().ok();
                    }
                }
                if write.write_all(&buf).await.is_err() {
                    break;
                }
            }
            // Dropping the write half (and `wait_tx`) ends the reader once it has answered everyone.
            writer_closed.store(true, Ordering::Release);
        });

        let reader_closed = closed.clone();
        tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(4096);
            let mut waiting: VecDeque<Waiter> = VecDeque::new();
            let mut writer_gone = false;
            let failure = loop {
                tokio::select! {
                    w = wait_rx.recv(), if !writer_gone => match w {
                        Some(w) => waiting.push_back(w),
                        None => {
                            writer_gone = true;
                            if waiting.is_empty() {
                                break RedisError::Closed;
                            }
                        }
                    },
                    n = read.read_buf(&mut buf) => {
                        match n {
                            Ok(0) | Err(_) => break RedisError::Closed,
                            Ok(_) => {}
                        }
                        if let Err(e) = deliver(&mut buf, &mut waiting, &mut wait_rx) {
                            break e;
                        }
                        if writer_gone && waiting.is_empty() {
                            break RedisError::Closed;
                        }
                    }
                }
            };
            reader_closed.store(true, Ordering::Release);
            for w in waiting {
                let _ = w.done.send(Err(failure.clone()));
            }
            while let Ok(w) = wait_rx.try_recv() {
                let _ = w.done.send(Err(failure.clone()));
            }
        });
        Ok(Self { jobs, closed })
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.jobs.is_closed()
    }
}

/// Hands every complete reply in `buf` to the waiter it belongs to.
fn deliver(
    buf: &mut BytesMut,
    waiting: &mut VecDeque<Waiter>,
    wait_rx: &mut mpsc::UnboundedReceiver<Waiter>,
) -> Result<(), RedisError> {
    let mut pos = 0;
    while let Some((value, next)) = parse(buf, pos)? {
        pos = next;
        if waiting.is_empty() {
            // Registered before the write, so it is already in the channel.
            if let Ok(w) = wait_rx.try_recv() {
                waiting.push_back(w);
            }
        }
        let Some(front) = waiting.front_mut() else {
            return Err(RedisError::Protocol("reply nobody asked for".into()));
        };
        front.got.push(value);
        if front.got.len() == front.count
            && let Some(w) = waiting.pop_front()
        {
            let _ = w.done.send(Ok(w.got));
        }
    }
    buf.advance(pos);
    Ok(())
}

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Conn>>,
    retry_at: Option<Instant>,
}

/// A few shared connections to one Redis server, opened lazily and
/// replaced when they break. Calls have no deadline of their own: wrap
/// them in `tokio::time::timeout`.
pub(crate) struct Client {
    address: String,
    slots: Vec<Mutex<Slot>>,
    connecting: Vec<tokio::sync::Mutex<()>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address)
            .field("connections", &self.slots.len())
            .finish()
    }
}

impl Client {
    /// A client for `address` (`host:port`) with `connections` (≥ 1) shared connections.
    pub(crate) fn new(address: String, connections: usize) -> Self {
        let n = connections.max(1);
        Self {
            address,
            slots: (0..n).map(|_| Mutex::new(Slot::default())).collect(),
            connecting: (0..n).map(|_| tokio::sync::Mutex::new(())).collect(),
            next: AtomicUsize::new(0),
        }
    }

    fn ready(&self, i: usize) -> Result<Option<Arc<Conn>>, RedisError> {
        let slot = self.slots[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(c) = &slot.conn
            && !c.is_closed()
        {
            return Ok(Some(c.clone()));
        }
        match slot.retry_at {
            Some(t) if Instant::now() < t => Err(RedisError::Backoff(self.address.clone())),
            _ => Ok(None),
        }
    }

    async fn conn(&self) -> Result<Arc<Conn>, RedisError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        if let Some(c) = self.ready(i)? {
            return Ok(c);
        }
        let _one_at_a_time = self.connecting[i].lock().await;
        if let Some(c) = self.ready(i)? {
            return Ok(c);
        }
        let opened = Conn::open(&self.address).await;
        let mut slot = self.slots[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match opened {
            Ok(c) => {
                let c = Arc::new(c);
                slot.conn = Some(c.clone());
                slot.retry_at = None;
                Ok(c)
            }
            Err(e) => {
                slot.conn = None;
                slot.retry_at = Some(Instant::now() + RECONNECT_BACKOFF);
                Err(e)
            }
        }
    }

    /// Sends `pipeline` and returns one reply per command, in order.
    pub(crate) async fn query(&self, pipeline: Pipeline) -> Result<Vec<Value>, RedisError> {
        if pipeline.count == 0 {
            return Ok(Vec::new());
        }
        let conn = self.conn().await?;
        let (done, rx) = oneshot::channel();
        conn.jobs
            .send(Job {
                bytes: pipeline.bytes,
                count: pipeline.count,
                done,
            })
            .await
            .map_err(|_| RedisError::Closed)?;
        rx.await.map_err(|_| RedisError::Closed)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<Value> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some((v, next)) = parse(bytes, pos).unwrap() {
            out.push(v);
            pos = next;
        }
        assert_eq!(pos, bytes.len());
        out
    }

    #[test]
    fn encodes_commands() {
        let mut p = Pipeline::new();
        p.cmd(&[b"INCR", b"k"]).cmd(&[b"PEXPIRE", b"k", b"1000"]);
        assert_eq!(
            p.bytes,
            b"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n*3\r\n$7\r\nPEXPIRE\r\n$1\r\nk\r\n$4\r\n1000\r\n"
        );
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn parses_every_reply_type() {
        let v = all(b"+OK\r\n-ERR no\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n$0\r\n\r\n*-1\r\n");
        assert_eq!(
            v,
            vec![
                Value::Simple("OK".into()),
                Value::Error("ERR no".into()),
                Value::Int(42),
                Value::Bulk(Some(Bytes::from_static(b"abc"))),
                Value::Bulk(None),
                Value::Array(Some(vec![Value::Int(1), Value::Bulk(Some(Bytes::new()))])),
                Value::Array(None),
            ]
        );
    }

    #[test]
    fn incomplete_and_bad_input() {
        for partial in [
            &b""[..],
            b":4",
            b"$3\r\nab",
            b"*2\r\n:1\r\n",
            b"$3\r\nabc\r",
        ] {
            assert!(parse(partial, 0).unwrap().is_none(), "{partial:?}");
        }
        for bad in [
            &b"?x\r\n"[..],
            b":x\r\n",
            b"$-5\r\n",
            b"$3\r\nabcde\r\n",
            b"$99999999\r\n",
        ] {
            assert!(parse(bad, 0).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn replies_are_matched_in_order_across_pipelines() {
        // A fake server: reads whatever arrives and answers with counted integers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = BytesMut::new();
            let mut n = 0i64;
            loop {
                if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                // Every command here is `*1\r\n$4\r\nPING\r\n` (14 bytes).
                let mut out = Vec::new();
                while buf.len() >= 14 {
                    buf.advance(14);
                    n += 1;
                    out.extend_from_slice(format!(":{n}\r\n").as_bytes());
                }
                s.write_all(&out).await.unwrap();
            }
        });
        let client = Arc::new(Client::new(address, 1));
        let mut tasks = Vec::new();
        for k in 1..=20usize {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut p = Pipeline::new();
                for _ in 0..k {
                    p.cmd(&[b"PING"]);
                }
                let v = client.query(p).await.unwrap();
                assert_eq!(v.len(), k);
                // Each pipeline's replies are consecutive numbers.
                let nums: Vec<i64> = v
                    .iter()
                    .map(|x| match x {
                        Value::Int(i) => *i,
                        other => panic!("{other:?}"),
                    })
                    .collect();
                assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test]
    async fn unreachable_server_fails_fast_then_backs_off() {
        // Bind and drop: nothing listens on this port any more.
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let client = Client::new(address, 1);
        let mut p = Pipeline::new();
        p.cmd(&[b"PING"]);
        assert!(matches!(
            client.query(p).await,
            Err(RedisError::Connect(..))
        ));
        let mut p = Pipeline::new();
        p.cmd(&[b"PING"]);
        assert!(matches!(
            client.query(p).await,
            Err(RedisError::Backoff(..))
        ));
    }
}
