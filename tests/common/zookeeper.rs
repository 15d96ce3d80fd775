//! A real ZooKeeper server (Debian's `zookeeper` package, Apache's Java
//! server) on a loopback port the system picks, with a scratch data
//! directory; and kazoo (Python) to inspect and edit its nodes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{ChildGuard, python_venv, repo_root, scratch_dir};

const JAR: &str = "/usr/share/java/zookeeper.jar";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running ZooKeeper server.
pub struct ZooKeeper {
    child: Option<ChildGuard>,
    data: PathBuf,
    /// Its client port.
    pub port: u16,
}

impl ZooKeeper {
    /// Starts a server on a free port (the server binds port 0; the port is
    /// read back from the kernel's socket table).
    pub fn start(test: &str) -> ZooKeeper {
        let data = scratch_dir(&format!("zk-{test}"));
        let (child, port) = spawn(&data, 0);
        ZooKeeper {
            child: Some(child),
            data,
            port,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data stays).
    pub fn stop(&mut self) {
        self.child = None;
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        let (child, port) = spawn(&self.data, self.port);
        assert_eq!(port, self.port);
        self.child = Some(child);
    }

    /// kazoo's view: the children of `path` (empty when it does not exist).
    pub fn ls(&self, path: &str) -> Vec<String> {
        let out = kazoo(&self.address(), &["ls", path]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("kazoo ls: {e}: {out}"))
    }

    /// Runs a kazoo command of tests/peers/zookeeper/zk.py.
    pub fn kazoo(&self, args: &[&str]) -> String {
        kazoo(&self.address(), args)
    }
}

fn spawn(data: &Path, port: u16) -> (ChildGuard, u16) {
    assert!(
        Path::new(JAR).exists(),
        "ZooKeeper is needed: apt-get install zookeeper (.ci/run does)"
    );
    // Tick 200 ms: session timeouts between 0.4 s and 4 s, so an expired
    // provider session is seen quickly.
    let child = Command::new("java")
        .args(["-Xmx256m", "-Dzookeeper.admin.enableServer=false", "-cp"])
        .arg(format!("/etc/zookeeper/conf:{JAR}"))
        .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
        .arg(port.to_string())
        .arg(data)
        .arg("200")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn java (is a JDK installed?)");
    let pid = child.id();
    let child = ChildGuard(child);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(p) = listening_port(pid) {
            return (child, p);
        }
        assert!(Instant::now() < deadline, "ZooKeeper did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The TCP port process `pid` listens on, from /proc: its socket inodes
/// matched against the listening sockets of /proc/net/tcp{,6}.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect();
    for table in ["/proc/net/tcp6", "/proc/net/tcp"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is f[1] (HEX_IP:HEX_PORT), st is f[3] (0A = LISTEN), inode f[9].
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let port = f[1].rsplit(':').next()?;
                return u16::from_str_radix(port, 16).ok();
            }
        }
    }
    None
}

/// The kazoo venv, made from requirements.txt on first use (.ci/run does it up front).
fn python() -> PathBuf {
    static INSTALL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    INSTALL
        .get_or_init(|| python_venv("tests/peers/zookeeper", "import kazoo"))
        .clone()
}

fn kazoo(hosts: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(repo_root().join("tests/peers/zookeeper/zk.py"))
        .arg(hosts)
        .args(args)
        .output()
        .expect("run kazoo");
    assert!(
        out.status.success(),
        "kazoo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The address of a server another thread owns, for kazoo calls.
pub struct Hosts(pub String);

impl Hosts {
    /// Runs a kazoo command of tests/peers/zookeeper/zk.py.
    pub fn kazoo(&self, args: &[&str]) -> String {
        kazoo(&self.0, args)
    }
}
