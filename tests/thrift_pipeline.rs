//! Thrift's default upstream mode, `pipeline`: calls from many clients
//! share a few upstream connections, answers matched in order with the
//! seqid checked. Against Apache Thrift's Python `TThreadedServer`, and
//! against hand-written upstreams that answer out of order, never echo
//! seqids, or hold their answers (the depth bound).

mod common;
#[path = "common/thrift.rs"]
mod thrift_peers;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::Proxy;
use thrift_peers::{ThriftServer, client};

const CALL: u8 = 1;
const REPLY: u8 = 2;
const EXCEPTION: u8 = 3;

/// A framed strict-binary message `name` of type `kind` whose struct has
/// one string field (`id` 1 for a call's argument, 0 for a reply's value).
fn frame(kind: u8, name: &str, seqid: i32, field: i16, value: &str) -> Vec<u8> {
    let mut m = vec![0x80, 0x01, 0x00, kind];
    m.extend_from_slice(&(name.len() as i32).to_be_bytes());
    m.extend_from_slice(name.as_bytes());
    m.extend_from_slice(&seqid.to_be_bytes());
    m.push(11);
    m.extend_from_slice(&field.to_be_bytes());
    m.extend_from_slice(&(value.len() as i32).to_be_bytes());
    m.extend_from_slice(value.as_bytes());
    m.push(0);
    [&(m.len() as i32).to_be_bytes()[..], &m].concat()
}

/// Reads one framed message: (type, seqid, its string field's value).
fn read_message(s: &mut impl Read) -> Option<(u8, i32, String)> {
    let mut len = [0; 4];
    s.read_exact(&mut len).ok()?;
    let mut m = vec![0; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut m).ok()?;
    let name_len = i32::from_be_bytes(m[4..8].try_into().unwrap()) as usize;
    let at = 8 + name_len;
    let seqid = i32::from_be_bytes(m[at..at + 4].try_into().unwrap());
    let value_at = at + 4 + 3 + 4;
    let value_len = i32::from_be_bytes(m[at + 7..value_at].try_into().unwrap()) as usize;
    let value = String::from_utf8(m[value_at..value_at + value_len].to_vec()).unwrap();
    Some((m[3], seqid, value))
}

/// How the hand-written upstream answers the calls it has read.
#[derive(Clone, Copy)]
enum Upstream {
    /// Reads `n` calls, then answers them last first, seqids echoed.
    Reversed { n: usize },
    /// Answers each call at once, in order, with seqid 0.
    NoSeqids,
    /// Reads every call as it comes, and answers none until the test says
    /// so; then answers them all in order, seqids echoed.
    Held,
}

/// A Thrift upstream on one accepted connection (the clusters here have
/// one). Each call's reply carries `re:` and the call's argument. Reports
/// every call it reads on `seen`; a `Held` upstream answers once `go`
/// receives.
fn upstream(how: Upstream, seen: mpsc::Sender<String>, go: mpsc::Receiver<()>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut out = s.try_clone().unwrap();
        let mut reply = |seqid: i32, arg: &str| {
            out.write_all(&frame(REPLY, "echo", seqid, 0, &format!("re:{arg}")))
                .unwrap();
        };
        let read = |s: &mut TcpStream| {
            let (kind, seqid, arg) = read_message(s)?;
            assert_eq!(kind, CALL);
            seen.send(arg.clone()).ok();
            Some((seqid, arg))
        };
        match how {
            Upstream::NoSeqids => {
                while let Some((_, arg)) = read(&mut s) {
                    reply(0, &arg);
                }
            }
            Upstream::Reversed { n } => {
                let calls: Vec<_> = (0..n).map_while(|_| read(&mut s)).collect();
                for (seqid, arg) in calls.iter().rev() {
                    reply(*seqid, arg);
                }
            }
            Upstream::Held => {
                // Reading goes on while answers are held, so a call written
                // past the depth would be seen.
                let (calls, answer) = mpsc::channel::<(i32, String)>();
                let mut out = s.try_clone().unwrap();
                thread::spawn(move || {
                    go.recv().unwrap();
                    for (seqid, arg) in answer {
                        let re = frame(REPLY, "echo", seqid, 0, &format!("re:{arg}"));
                        out.write_all(&re).unwrap();
                    }
                });
                while let Some(call) = read(&mut s) {
                    calls.send(call).unwrap();
                }
            }
        }
        // Keep the connection until the proxy closes it.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    address
}

fn proxy(test: &str, upstream: &str, pool: &str) -> Proxy {
    proxy_with_timeout(test, upstream, pool, "10s")
}

/// One Thrift listener routing to cluster `s` at `upstream` (with `pool`'s
/// settings), the route's timeout `timeout`.
fn proxy_with_timeout(test: &str, upstream: &str, pool: &str, timeout: &str) -> Proxy {
    Proxy::start(
        test,
        &format!(
            r#"
listeners:
  - name: thrift-in
    address: 127.0.0.1:0
    protocol: thrift
    routes: [ {{ route: {{ cluster: s, timeout: {timeout} }} }} ]
clusters:
  - name: s
    protocol: thrift
    endpoints: [ {{ address: "{upstream}" }} ]
{pool}
"#
        ),
    )
}

/// Each client on its own connection sends one call with its own seqid and
/// argument, all at once; returns what each got back.
fn concurrent_calls(proxy: &Proxy, args: &[&str]) -> Vec<thread::JoinHandle<(u8, i32, String)>> {
    let addr = proxy.addr("thrift-in");
    args.iter()
        .enumerate()
        .map(|(i, arg)| {
            let arg = arg.to_string();
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let seqid = 100 + i as i32;
                s.write_all(&frame(CALL, "echo", seqid, 1, &arg)).unwrap();
                let got = read_message(&mut s).expect("an answer");
                assert_eq!(got.1, seqid, "the client's own seqid comes back");
                got
            })
        })
        .collect()
}

fn assert_each_got_its_own(handles: Vec<thread::JoinHandle<(u8, i32, String)>>, args: &[&str]) {
    for (h, arg) in handles.into_iter().zip(args) {
        let (kind, _, value) = h.join().unwrap();
        assert_eq!(
            (kind, value.as_str()),
            (REPLY, format!("re:{arg}").as_str())
        );
    }
}

#[test]
fn by_default_many_clients_share_pipelined_connections_to_a_threaded_python_server() {
    let server = ThriftServer::start("framed", "binary", "pipe");
    let proxy = proxy("thrift-pipeline-default", &server.address(), "");
    let port = proxy.addr("thrift-in").port();
    // 16 client threads, each its own connection and seqids; the Python
    // client checks every answer's seqid and counts mismatches as errors.
    let summary = client(
        port,
        &["--method", "hello", "--count", "800", "--concurrency", "16"],
    );
    assert_eq!((summary.ok, summary.errors), (800, 0), "{summary:?}");
    assert_eq!(summary.result("Hello bob, from pipe"), 800, "{summary:?}");
    // TThreadedServer runs one thread per connection: the calls came on at
    // most the pipeline's default of 4 connections, not one per client.
    let connections: std::collections::HashSet<String> = server
        .calls
        .all()
        .iter()
        .filter(|c| c["method"] == "hello")
        .map(|c| c["connection"].to_string())
        .collect();
    assert!((1..=4).contains(&connections.len()), "{connections:?}");
}

#[test]
fn a_server_answering_out_of_order_gets_its_answers_matched_by_seqid() {
    let (seen, calls) = mpsc::channel();
    let (_go, held) = mpsc::channel();
    let up = upstream(Upstream::Reversed { n: 4 }, seen, held);
    let proxy = proxy(
        "thrift-pipeline-reversed",
        &up.to_string(),
        "    connections_per_endpoint: 1",
    );
    let args = ["a", "b", "c", "d"];
    let handles = concurrent_calls(&proxy, &args);
    assert_each_got_its_own(handles, &args);
    assert_eq!(calls.try_iter().count(), 4);
    assert!(
        proxy.logs().contains("answered out of order"),
        "{}",
        proxy.logs()
    );
}

#[test]
fn a_server_that_never_echoes_seqids_gets_its_answers_matched_in_order() {
    let (seen, _calls) = mpsc::channel();
    let (_go, held) = mpsc::channel();
    let up = upstream(Upstream::NoSeqids, seen, held);
    let proxy = proxy(
        "thrift-pipeline-noseqid",
        &up.to_string(),
        "    connections_per_endpoint: 1",
    );
    let args = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let handles = concurrent_calls(&proxy, &args);
    assert_each_got_its_own(handles, &args);
}

#[test]
fn calls_past_the_pipeline_depth_wait_for_an_answer() {
    let (seen, calls) = mpsc::channel();
    let (go, held) = mpsc::channel();
    let up = upstream(Upstream::Held, seen, held);
    let proxy = proxy(
        "thrift-pipeline-depth",
        &up.to_string(),
        "    connections_per_endpoint: 1\n    pipeline_depth: 2",
    );
    let args = ["a", "b", "c"];
    let handles = concurrent_calls(&proxy, &args);
    let wait = Duration::from_secs(10);
    let mut first = vec![
        calls.recv_timeout(wait).unwrap(),
        calls.recv_timeout(wait).unwrap(),
    ];
    // The third call is not written while two are unanswered. (A slow
    // proxy can only make this pass; it cannot make it fail.)
    assert!(
        calls.recv_timeout(Duration::from_millis(300)).is_err(),
        "a third call went out past the depth"
    );
    go.send(()).unwrap();
    first.push(calls.recv_timeout(wait).unwrap());
    first.sort();
    assert_eq!(first, ["a", "b", "c"]);
    assert_each_got_its_own(handles, &args);
}

#[test]
fn a_pipeline_depth_out_of_range_is_refused() {
    let path = common::write_config(
        "thrift-pipeline-bad-depth",
        r#"
listeners:
  - { name: in, address: 127.0.0.1:0, protocol: thrift, routes: [ { route: { cluster: s } } ] }
clusters:
  - { name: s, protocol: thrift, pipeline_depth: 0, endpoints: [ { address: 127.0.0.1:9 } ] }
"#,
    );
    let (ok, _, err) = common::validate(&path);
    assert!(!ok);
    assert!(
        err.contains("pipeline_depth must be between 1 and"),
        "{err}"
    );
}

/// A Thrift upstream whose first connection reads calls and never answers;
/// every later connection answers each call at once, seqid echoed. Reports
/// each accepted connection's number on `accepted`.
fn first_connection_stuck(accepted: mpsc::Sender<usize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        for (n, s) in listener.incoming().enumerate() {
            let Ok(mut s) = s else { return };
            accepted.send(n + 1).ok();
            thread::spawn(move || {
                let mut out = s.try_clone().unwrap();
                while let Some((_, seqid, arg)) = read_message(&mut s) {
                    if n > 0 {
                        let re = frame(REPLY, "echo", seqid, 0, &format!("re:{arg}"));
                        out.write_all(&re).unwrap();
                    }
                }
            });
        }
    });
    address
}

#[test]
fn a_caller_that_gives_up_retires_its_pipelined_connection() {
    let (accepted, connections) = mpsc::channel();
    let up = first_connection_stuck(accepted);
    let proxy = proxy_with_timeout(
        "thrift-pipeline-abandoned",
        &up.to_string(),
        "    connections_per_endpoint: 1",
        "300ms",
    );
    let call = |seqid: i32, arg: &str| {
        let mut s = TcpStream::connect(proxy.addr("thrift-in")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&frame(CALL, "echo", seqid, 1, arg)).unwrap();
        read_message(&mut s).expect("an answer")
    };
    // The first call is never answered: the client gets the timeout as a
    // TApplicationException.
    let (kind, seqid, _) = call(7, "a");
    assert_eq!((kind, seqid), (EXCEPTION, 7));
    assert_eq!(connections.recv_timeout(Duration::from_secs(10)), Ok(1));
    // Written behind the abandoned call, the next one would wait for an
    // answer that never comes; it goes to a new connection instead.
    let (kind, seqid, value) = call(8, "b");
    assert_eq!((kind, seqid, value.as_str()), (REPLY, 8, "re:b"));
    assert_eq!(connections.recv_timeout(Duration::from_secs(10)), Ok(2));
}
