//! Thrift active health checks and retries through the real binary, with
//! Apache Thrift's Python server: the probe is a real Thrift call.

mod common;
#[path = "common/thrift.rs"]
mod thrift_peers;

use std::time::{Duration, Instant};

use common::{Proxy, dead_address};
use thrift_peers::{ThriftServer, client};

#[test]
fn thrift_call_probes_keep_traffic_off_a_dead_server() {
    let live = ThriftServer::start("framed", "binary", "live");
    let config = format!(
        r#"listeners:
  - name: thrift-in
    address: 127.0.0.1:0
    protocol: thrift
    routes:
      - route: {{ cluster: backend }}
clusters:
  - name: backend
    protocol: thrift
    options: {{ transport: framed, protocol: binary }}
    health_check: {{ interval: 100ms, timeout: 1s, unhealthy_threshold: 1, healthy_threshold: 1, method: hello }}
    endpoints: [ {{ address: "{}" }}, {{ address: "{}" }} ]
"#,
        live.address(),
        dead_address()
    );
    let proxy = Proxy::start("thrift-health", &config);
    // The probe is a real call: the Python server logs it.
    assert!(
        live.wait_call("hello", Duration::from_secs(10)).is_some(),
        "no probe call"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxy.logs().contains("endpoint is unhealthy") {
        assert!(
            Instant::now() < deadline,
            "dead server not detected:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = client(
        proxy.addr("thrift-in").port(),
        &["--transport", "framed", "--count", "20"],
    );
    assert_eq!(s.ok, 20, "{} / logs:\n{}", s.raw, proxy.logs());
    assert!(
        !proxy.logs().contains("endpoint is healthy again"),
        "the live one never flapped"
    );
}
