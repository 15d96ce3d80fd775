//! Issue #5's scenario table: every traffic policy scenario, written once
//! (`tests/traffic/scenarios.rs`), run for every protocol against real
//! third-party servers through the release binary, on the example configs
//! of `examples/traffic/`.
//!
//! | scenario | Dubbo | Thrift | HTTP | gRPC |
//! |---|---|---|---|---|
//! | kill 1 of 3 under load, eject, readmit | ✓ | ✓ | ✓ | ✓ (not retried: bodies stream) |
//! | slow upstream: per-try and route timeouts | ✓ | ✓ | ✓ | ✓ |
//! | circuit breaker overflow | ✓ | ✓ | ✓ | ✓ |
//! | … counted in `metaproxy_local_replies_total` | ✓ | ✓ | ignored: bug | ignored: bug |
//! | zone drain (reload) and zone failure (kill) | ✓ | ✓ | ✓ | ✓ |
//! | affinity: key (real client, 1000 calls), source IP | ✓ | ✓ | ✓ | ✓ |
//! | affinity: cookie | | | ✓ | |
//! | mirror share | ✓ | ✓ | ✓ | – (bodies are not mirrored) |
//!
//! Upstreams: sofa-rpc-node providers (Dubbo), Apache Thrift Python servers,
//! in-process hyper backends (HTTP), grpcio servers (gRPC). Load and
//! affinity loops use persistent Rust clients (one connection each); the
//! key-affinity scenario uses each protocol's real third-party client.

mod common;
#[path = "common/http.rs"]
mod http_peers;
#[path = "common/thrift.rs"]
mod thrift_peers;
mod traffic;

/// One `#[test]` per scenario and protocol: `scenario::protocol`.
macro_rules! table {
    ($($scenario:ident: [$($(#[$attr:meta])* $name:ident => $flavor:ty),* $(,)?];)*) => {
        $(
            mod $scenario {
                $(
                    #[test]
                    $(#[$attr])*
                    fn $name() {
                        crate::traffic::scenarios::$scenario::<$flavor>();
                    }
                )*
            }
        )*
    };
}

use traffic::dubbo::Dubbo;
use traffic::grpc::Grpc;
use traffic::http::Http;
use traffic::thrift::Thrift;

table! {
    kill_one_of_three: [dubbo => super::Dubbo, thrift => super::Thrift, http => super::Http, grpc => super::Grpc];
    slow_upstream: [dubbo => super::Dubbo, thrift => super::Thrift, http => super::Http, grpc => super::Grpc];
    breaker_overflow_counted: [dubbo => super::Dubbo, thrift => super::Thrift, http => super::Http, grpc => super::Grpc];
    zone_failover: [dubbo => super::Dubbo, thrift => super::Thrift, http => super::Http, grpc => super::Grpc];
    affinity: [dubbo => super::Dubbo, thrift => super::Thrift, http => super::Http, grpc => super::Grpc];
    mirror_share: [dubbo => super::Dubbo, thrift => super::Thrift, http => super::Http];
}

#[test]
fn http_cookie_affinity() {
    traffic::scenarios::http_cookie_affinity();
}

/// `metaproxy validate` locates zone mistakes (line and column).
#[test]
fn zone_mistakes_are_located() {
    let path = common::write_config(
        "traffic-zone-mistakes",
        r#"listeners:
  - name: in
    address: 127.0.0.1:0
    protocol: dubbo
    routes: [ { route: { cluster: backend } } ]
clusters:
  - name: backend
    protocol: dubbo
    locality: { zones: [zone-a, zone-c], drain: [zone-x] }
    endpoints:
      - { address: 127.0.0.1:20881, zone: zone-a, priority: 1 }
      - { address: 127.0.0.1:20882, zone: zone-b, weight: 0 }
"#,
    );
    let (ok, out, err) = common::validate(&path);
    assert!(!ok, "accepted: {out}");
    for expected in [
        ":9:33: no endpoint is in zone `zone-c`",
        ":9:50: cannot drain zone `zone-x`: no endpoint is in it",
        ":11:61: `priority` cannot be combined with the cluster's `locality`",
        ":12:9: endpoint weight must be at least 1 (to take an endpoint out of traffic, use `drain: true`)",
    ] {
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
    }
}
