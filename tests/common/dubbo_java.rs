//! Apache Dubbo's Java reference implementation (3.3.6) as a test peer:
//! the provider and consumer of tests/peers/dubbo-java (one jar built by its
//! build.sh, once per test process), dubbo protocol with hessian2, direct or
//! through ZooKeeper with Dubbo's own registry client (Curator 5).
//!
//! Java 17 and Maven are required: without them these tests fail, loudly
//! (.ci/run installs Maven and builds the jar up front).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{ChildGuard, ClientSummary, Lines, poke, repo_root};

/// A JVM with Dubbo takes a few seconds to start; a loaded machine more.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a consumer run may take in all (JVM start, the calls, exit).
const CONSUMER_TIMEOUT: Duration = Duration::from_secs(90);

/// The peer's jar, built (when its sources changed) on first use.
pub fn jar() -> PathBuf {
    static JAR: OnceLock<PathBuf> = OnceLock::new();
    JAR.get_or_init(|| {
        let java = Command::new("java").arg("-version").output();
        assert!(
            java.is_ok_and(|o| o.status.success()),
            "Java 17 is needed for the Dubbo Java peer (apt-get install openjdk-17-jdk-headless)"
        );
        let script = repo_root().join("tests/peers/dubbo-java/build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed (Maven is needed: apt-get install maven):\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(path.is_file(), "build.sh printed {}", path.display());
        path
    })
    .clone()
}

/// `java` with the options every peer JVM gets: a small heap and quick startup.
fn java() -> Command {
    let mut cmd = Command::new("java");
    cmd.args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]);
    cmd
}

/// A Dubbo Java provider of `org.apache.dubbo.samples.DemoService`
/// answering `Hello <name>, from <tag>`.
pub struct JavaProvider {
    child: ChildGuard,
    /// The port Dubbo listens on (the kernel picked it).
    pub port: u16,
    /// Its stdout after the listening line: one JSON line per call.
    pub calls: Lines,
    stderr: Lines,
    pub tag: String,
    /// The provider URL Dubbo exported (and registered, with `--zk`).
    pub url: String,
}

impl JavaProvider {
    /// Starts a provider; with `zk` it registers in that ZooKeeper (Dubbo
    /// group `group` when given) and returns once registered.
    pub fn start(tag: &str, zk: Option<&str>, group: Option<&str>) -> JavaProvider {
        let mut args = vec!["--tag", tag];
        if let Some(zk) = zk {
            args.extend(["--zk", zk]);
        }
        if let Some(group) = group {
            args.extend(["--group", group]);
        }
        let mut child = java()
            .arg("-jar")
            .arg(jar())
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn java (is a JDK installed?)");
        let calls = Lines::spawn(child.stdout.take().unwrap());
        let stderr = Lines::spawn(child.stderr.take().unwrap());
        let child = ChildGuard(child);
        let first = calls.next(START_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "Java provider {tag} printed nothing in {START_TIMEOUT:?}; stderr:\n{}",
                stderr.all().join("\n")
            )
        });
        let v: serde_json::Value = serde_json::from_str(&first)
            .unwrap_or_else(|e| panic!("provider's first line ({e}): {first}"));
        assert_eq!(v["event"], "listening", "{first}");
        JavaProvider {
            child,
            port: v["port"].as_u64().unwrap() as u16,
            calls,
            stderr,
            tag: tag.to_string(),
            url: v["url"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// Starts several providers at once (JVMs start slowly): `(tag, zk, group)`.
    pub fn start_all(specs: &[(&str, Option<&str>, Option<&str>)]) -> Vec<JavaProvider> {
        std::thread::scope(|s| {
            let handles: Vec<_> = specs
                .iter()
                .map(|&(tag, zk, group)| s.spawn(move || JavaProvider::start(tag, zk, group)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a provider failed to start"))
                .collect()
        })
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the JVM (SIGKILL): a registered node stays until its ZooKeeper
    /// session expires.
    pub fn kill(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }

    /// A graceful stop ("stop" on stdin: Dubbo unexports and unregisters);
    /// waits up to `within` for the JVM to exit, then kills it.
    pub fn stop(&mut self, within: Duration) -> bool {
        poke(&mut self.child.0, "stop\n");
        let exited = wait_exit(&mut self.child.0, within);
        if !exited {
            self.kill();
        }
        exited
    }

    /// Waits for the next call line whose method is `method`.
    pub fn wait_call(&self, method: &str, timeout: Duration) -> Option<serde_json::Value> {
        self.calls
            .wait_for(timeout, |l| l.contains(&format!("\"method\":\"{method}\"")))
            .map(|l| serde_json::from_str(&l).unwrap())
    }

    /// Dubbo's log so far (stderr), for failure messages.
    pub fn logs(&self) -> String {
        self.stderr.all().join("\n")
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the Dubbo Java consumer (`--url dubbo://H:P` or `--zk HOST:PORT`,
/// `--calls N`, `--attachment k=v`, `--group`, `--version`, `--method`,
/// `--arg`, `--timeout-ms`, `--serialization`) and returns its summary.
pub fn java_consumer(args: &[&str]) -> ClientSummary {
    let mut child = java()
        .arg("-cp")
        .arg(jar())
        .arg("org.apache.dubbo.samples.Consumer")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn java consumer");
    let stdout = Lines::spawn(child.stdout.take().unwrap());
    let stderr = Lines::spawn(child.stderr.take().unwrap());
    let mut child = ChildGuard(child);
    assert!(
        wait_exit(&mut child.0, CONSUMER_TIMEOUT),
        "Java consumer {args:?} still running after {CONSUMER_TIMEOUT:?}; stderr:\n{}",
        stderr.all().join("\n")
    );
    // The readers may still be draining the pipes the JVM closed.
    let line = stdout
        .wait_for(Duration::from_secs(5), |l| l.starts_with('{'))
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!(
            "Java consumer {args:?} printed no summary ({e}): {:?}\nstderr:\n{}",
            stdout.all(),
            stderr.all().join("\n")
        )
    });
    ClientSummary::of(&v, line)
}

/// [`java_consumer`] runs side by side (each is a JVM start): one summary
/// per argument list, in order.
pub fn java_consumers(runs: &[Vec<String>]) -> Vec<ClientSummary> {
    std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|args| {
                s.spawn(move || {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    java_consumer(&args)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a consumer run failed"))
            .collect()
    })
}
