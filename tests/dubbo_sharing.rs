//! Upstream connection sharing: 64 client connections with 8 calls in
//! flight each go through at most 4 upstream connections, and every answer
//! returns to the caller that asked (checked by payload).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::Proxy;
use common::dubbo_wire::{request, string_response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLIENTS: usize = 64;
const IN_FLIGHT: usize = 8;
const ROUNDS: usize = 4;

/// An upstream that answers each request with the value of its `echo`
/// attachment, after a short random delay so answers come back out of order.
async fn echo_upstream(listener: TcpListener, connections: Arc<AtomicUsize>) {
    loop {
        let Ok((s, _)) = listener.accept().await else {
            return;
        };
        connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let (mut rd, wr) = s.into_split();
            let wr = Arc::new(tokio::sync::Mutex::new(wr));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                while buf.len() >= 16 {
                    let len = i32::from_be_bytes(buf[12..16].try_into().unwrap()) as usize;
                    if buf.len() < 16 + len {
                        break;
                    }
                    let frame: Vec<u8> = buf.drain(..16 + len).collect();
                    let id = u64::from_be_bytes(frame[4..12].try_into().unwrap());
                    let echo = find_attachment(&frame[16..], "echo");
                    let delay = Duration::from_micros(u64::from(frame[11]) * 37 % 2000);
                    let wr = wr.clone();
                    // Each answer on its own task: they leave out of order.
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = wr.lock().await.write_all(&string_response(id, &echo)).await;
                    });
                }
                match rd.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
    }
}

/// Finds `"<key>"` followed by a short hessian string in the body (test values are short ASCII).
fn find_attachment(body: &[u8], key: &str) -> String {
    let mut needle = vec![key.len() as u8];
    needle.extend_from_slice(key.as_bytes());
    let at = body
        .windows(needle.len())
        .rposition(|w| w == needle.as_slice())
        .expect("echo attachment present");
    let v = &body[at + needle.len()..];
    let n = v[0] as usize;
    String::from_utf8(v[1..1 + n].to_vec()).unwrap()
}

async fn client(addr: std::net::SocketAddr, n: usize) -> usize {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut ok = 0;
    for round in 0..ROUNDS {
        let mut out = Vec::new();
        let mut expected = std::collections::HashMap::new();
        for k in 0..IN_FLIGHT {
            let id = (n * 1000 + round * IN_FLIGHT + k) as u64 + 1;
            let echo = format!("c{n}r{round}k{k}");
            out.extend(request(
                id,
                "org.apache.dubbo.samples.DemoService",
                "sayHello",
                "x",
                &[("echo", &echo)],
            ));
            expected.insert(id, echo);
        }
        s.write_all(&out).await.unwrap();
        for _ in 0..IN_FLIGHT {
            let mut h = [0u8; 16];
            s.read_exact(&mut h).await.unwrap();
            let id = u64::from_be_bytes(h[4..12].try_into().unwrap());
            let len = i32::from_be_bytes(h[12..16].try_into().unwrap()) as usize;
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).await.unwrap();
            assert_eq!(
                h[3],
                20,
                "status for id {id}: {}",
                String::from_utf8_lossy(&body)
            );
            let want = expected
                .remove(&id)
                .unwrap_or_else(|| panic!("client {n} got an id it never sent: {id}"));
            let got = String::from_utf8_lossy(&body[2..]).into_owned();
            assert_eq!(got, want, "client {n} id {id} got someone else's answer");
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_share_few_upstream_connections() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    tokio::spawn(echo_upstream(upstream, connections.clone()));
    let config = format!(
        r#"
listeners:
  - name: dubbo-in
    address: 127.0.0.1:0
    protocol: dubbo
    routes:
      - route: {{ cluster: echo }}
clusters:
  - name: echo
    protocol: dubbo
    connections_per_endpoint: 4
    endpoints: [ {{ address: "{upstream_addr}" }} ]
"#
    );
    let proxy = tokio::task::spawn_blocking(move || Proxy::start("sharing", &config))
        .await
        .unwrap();
    let addr = proxy.addr("dubbo-in");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(client(addr, n)))
        .collect();
    let mut total = 0;
    for c in clients {
        total += tokio::time::timeout(Duration::from_secs(60), c)
            .await
            .expect("clients finish")
            .expect("client task");
    }
    assert_eq!(total, CLIENTS * IN_FLIGHT * ROUNDS);
    let used = connections.load(Ordering::SeqCst);
    assert!(
        (1..=4).contains(&used),
        "{used} upstream connections for {CLIENTS} clients"
    );
}
