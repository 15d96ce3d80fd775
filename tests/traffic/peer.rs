//! A third-party server process started for one [`Spec`]: it takes
//! `--tag --port --delay-ms`, prints `{"event":"listening","port":N}` first
//! and then one JSON line per call. The Dubbo (sofa-rpc-node), Thrift
//! (Apache Thrift Python) and gRPC (grpcio) upstreams are all this shape.

use std::process::{Command, Stdio};

use super::{Spec, Upstream};
use crate::common::{ChildGuard, Lines, START_TIMEOUT};

/// One running peer server.
pub struct PeerProcess {
    child: Option<ChildGuard>,
    calls: Lines,
    tag: String,
    port: u16,
    /// The text that marks an ordinary call in its output.
    call_marker: &'static str,
}

impl PeerProcess {
    /// Spawns `command()` once per spec, all at once, then waits for each
    /// one's `listening` line.
    pub fn start_all(
        specs: &[Spec],
        command: impl Fn() -> Command,
        call_marker: &'static str,
    ) -> Vec<PeerProcess> {
        let spawned: Vec<_> = specs
            .iter()
            .map(|s| {
                let mut child = command()
                    .args(["--tag", &s.tag, "--port", &s.port.to_string()])
                    .args(["--delay-ms", &s.delay_ms.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("spawn a peer server (are node and the venvs installed?)");
                let calls = Lines::spawn(child.stdout.take().unwrap());
                (ChildGuard(child), calls, s)
            })
            .collect();
        spawned
            .into_iter()
            .map(|(child, calls, s)| {
                let first = calls
                    .wait_for(START_TIMEOUT, |l| l.contains("listening"))
                    .unwrap_or_else(|| panic!("peer `{}` did not start", s.tag));
                let v: serde_json::Value = serde_json::from_str(&first).expect("first line");
                assert_eq!(v["event"], "listening", "{first}");
                PeerProcess {
                    child: Some(child),
                    calls,
                    tag: s.tag.clone(),
                    port: v["port"].as_u64().unwrap() as u16,
                    call_marker,
                }
            })
            .collect()
    }
}

impl Upstream for PeerProcess {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn calls(&self) -> usize {
        self.calls
            .all()
            .iter()
            .filter(|l| l.contains(self.call_marker))
            .count()
    }
    fn kill(&mut self) {
        self.child.take();
    }
}
