//! The load generator against the echo upstreams, in process: every
//! protocol variant gets every request answered, closed and open loop, and
//! idle connections are held.

use std::net::SocketAddr;
use std::time::Duration;

use metaproxy_loadgen::client::{self, RunConfig};
use metaproxy_loadgen::echo::{self, dubbo::DubboEcho, thrift::ThriftEcho};
use metaproxy_loadgen::idle;
use metaproxy_loadgen::proto::{
    ClientProto, dubbo::DubboClient, http1::Http1Client, thrift::ThriftClient,
};
use metaproxy_loadgen::thrift_wire::{Proto, Transport};
use tokio::net::TcpListener;

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

fn config(addr: SocketAddr, requests: u64, rate: Option<f64>) -> RunConfig {
    RunConfig {
        addr,
        connections: 4,
        in_flight: 3,
        duration: Duration::from_secs(30),
        requests: Some(requests),
        warmup: Duration::ZERO,
        rate,
        timeout: Duration::from_secs(5),
    }
}

async fn check(addr: SocketAddr, make: impl Fn() -> Box<dyn ClientProto>) {
    let stats = client::run(config(addr, 401, None), &make).await;
    assert_eq!((stats.ok, stats.answered, stats.errors), (401, 401, 0));
    assert_eq!(
        (stats.io_errors, stats.timeouts, stats.unexpected),
        (0, 0, 0)
    );
    assert_eq!(stats.latency.len(), 401);
    let open = client::run(config(addr, 50, Some(2000.0)), &make).await;
    assert_eq!((open.ok, open.errors), (50, 0));
}

#[tokio::test]
async fn every_protocol_round_trips() {
    let (l, dubbo) = listener().await;
    tokio::spawn(echo::serve(l, DubboEcho::default));
    let (l, thrift) = listener().await;
    tokio::spawn(echo::serve(l, ThriftEcho::default));
    let (l, http) = listener().await;
    tokio::spawn(echo::http::serve(l));

    check(dubbo, || Box::new(DubboClient::new(16 * 1024))).await;
    for transport in [Transport::Framed, Transport::Header] {
        for proto in [Proto::Binary, Proto::Compact] {
            check(thrift, || {
                Box::new(ThriftClient::new(transport, proto, 100))
            })
            .await;
        }
    }
    check(http, || Box::new(Http1Client::new("bench", 100))).await;
    check(http, || Box::new(Http1Client::new("bench", 0))).await;

    let mut proto = DubboClient::new(100);
    let (held, opened) = idle::open(dubbo, 20, &mut proto, Duration::from_secs(5)).await;
    assert_eq!((held.len(), opened.held, opened.failed), (20, 20, 0));
}

#[tokio::test]
async fn a_wrong_answer_counts_as_an_error() {
    // A Dubbo client against the HTTP echo: no answer parses.
    let (l, http) = listener().await;
    tokio::spawn(echo::http::serve(l));
    let mut cfg = config(http, 5, None);
    cfg.timeout = Duration::from_millis(300);
    cfg.requests = None;
    cfg.duration = Duration::from_millis(500);
    let stats = client::run(cfg, || Box::new(DubboClient::new(10))).await;
    assert_eq!(stats.ok, 0);
    assert!(stats.io_errors + stats.timeouts > 0);
}
