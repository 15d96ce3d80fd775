//! The README's first command, `cargo run --example gateway`, works: the
//! gateway starts (on free ports, `--ephemeral`), and every command it
//! prints gives the answer its comment promises. Its Thrift listener also
//! serves Apache Thrift's Python client (a third-party peer; `thrift_call`
//! and the demo servers use metaproxy's own encoding).

mod common;
#[path = "common/thrift.rs"]
mod thrift_peers;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ChildGuard, START_TIMEOUT};

/// The examples the printed commands run.
const EXAMPLES: [&str; 3] = ["gateway", "dubbo_call", "thrift_call"];
/// The cookie jar path the gateway prints; each test run uses its own instead.
const CART_JAR: &str = "/tmp/metaproxy-cart.jar";

/// `target/<profile>/examples/<name>`. `cargo test` builds the examples
/// along with the binary; `cargo test --test gateway_example` does not, so
/// when they are missing they are built here (once). Existing ones are used
/// as they are (a separate build may resolve features differently from the
/// test build and recompile a lot): after editing only the example, run
/// `cargo test` (which rebuilds it) rather than this test alone.
fn example(name: &str) -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_metaproxy")).parent().unwrap();
    let fresh = EXAMPLES
        .iter()
        .all(|n| bin_dir.join("examples").join(n).exists());
    BUILD.call_once(|| {
        if fresh {
            return;
        }
        let target_dir = bin_dir.parent().unwrap();
        let profile = bin_dir.file_name().unwrap().to_string_lossy().into_owned();
        let profile = if profile == "debug" {
            "dev".to_string()
        } else {
            profile
        };
        let status = Command::new(env!("CARGO"))
            .current_dir(common::repo_root())
            .arg("build")
            .args(EXAMPLES.iter().flat_map(|n| ["--example", n]))
            .args(["--profile", &profile])
            .env("CARGO_TARGET_DIR", target_dir)
            .status()
            .expect("run cargo build --example");
        assert!(
            status.success(),
            "cargo build of the examples {EXAMPLES:?} failed"
        );
    });
    bin_dir.join("examples").join(name)
}

/// Runs one printed command with the example binaries instead of `cargo run`
/// and this run's own cookie jar.
fn run(command: &str, jar: &Path) -> String {
    let mut command = command.replace(CART_JAR, &jar.display().to_string());
    for name in ["dubbo_call", "thrift_call"] {
        command = command.replace(
            &format!("cargo run --example {name} --"),
            &example(name).display().to_string(),
        );
    }
    let out = Command::new("sh")
        .args(["-c", &command])
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`{command}` failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The count printed before `what` by `uniq -c` or `dubbo_call` (`  90  Hello bob, from user-v1`).
fn count(output: &str, what: &str) -> usize {
    output
        .lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| l.split_whitespace().next()?.parse::<usize>().ok())
        .sum()
}

/// The address the gateway printed for listener `name` (`  listener thrift-in  127.0.0.1:PORT`).
fn listener(printed: &[String], name: &str) -> std::net::SocketAddr {
    printed
        .iter()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("listener") && words.next() == Some(name))
                .then(|| words.next()?.parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no `listener {name}` line in {printed:#?}"))
}

/// The `cart` cookie in a curl cookie jar: (value, expiry in Unix seconds).
fn jar_cookie(jar: &Path) -> (String, u64) {
    let text = std::fs::read_to_string(jar)
        .unwrap_or_else(|e| panic!("curl wrote no cookie jar {}: {e}", jar.display()));
    // Netscape format: domain, subdomains, path, secure, expiry, name, value.
    text.lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f.len() == 7 && f[5] == "cart")
        .map(|f| (f[6].to_string(), f[4].parse().expect("expiry")))
        .unwrap_or_else(|| panic!("no cart cookie in the jar:\n{text}"))
}

/// The first word of every line (the demo backends start with their tag).
fn tags(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

/// Sticky carts, past the printed commands: a request that carries the
/// jar's cookie goes to the jar's instance and gets no new cookie.
fn check_cookie_sticks(http: std::net::SocketAddr, jar: &Path, tag: &str) {
    let (value, _) = jar_cookie(jar);
    for _ in 0..5 {
        let out = run(&format!("curl -si -b cart={value} http://{http}/cart"), jar);
        let lower = out.to_lowercase();
        assert!(!lower.contains("set-cookie"), "cookie set again:\n{out}");
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
        assert!(body.starts_with(tag), "cart={value} left {tag}:\n{out}");
    }
}

/// The Thrift listener with Apache Thrift's Python client: framed binary,
/// unframed compact, THeader binary and THeader compact (compact is
/// translated to binary for the demo servers), info headers reaching the
/// server, the proxy's UNKNOWN_METHOD.
fn check_python_client(thrift: std::net::SocketAddr) {
    let port = thrift.port();
    let s = thrift_peers::client(port, &["--method", "hello", "--count", "5"]);
    assert_eq!(s.result("Hello bob, from greeter-v1"), 5, "{}", s.raw);
    // Unframed compact after framed binary: the proxy's pooled upstream
    // connections carry both transports, translated to binary.
    let s = thrift_peers::client(
        port,
        &[
            "--transport",
            "buffered",
            "--protocol",
            "compact",
            "--count",
            "3",
        ],
    );
    assert_eq!(s.result("Hello bob, from greeter-v1"), 3, "{}", s.raw);
    let s = thrift_peers::client(
        port,
        &[
            "--transport",
            "header",
            "--method",
            "header",
            "--arg",
            "x-user",
            "--header",
            "x-user=carol",
            "--count",
            "3",
        ],
    );
    assert_eq!(s.result("greeter-v2: x-user=carol"), 3, "{}", s.raw);
    let s = thrift_peers::client(
        port,
        &[
            "--transport",
            "header",
            "--protocol",
            "compact",
            "--header",
            "x-canary=true",
            "--count",
            "3",
        ],
    );
    assert_eq!(s.result("Hello bob, from greeter-v2"), 3, "{}", s.raw);
    let s = thrift_peers::client(port, &["--method", "getItem"]);
    assert_eq!(s.exceptions("1"), 1, "UNKNOWN_METHOD expected: {}", s.raw);
}

#[test]
fn every_printed_command_works() {
    let gateway = example("gateway");
    for name in EXAMPLES {
        example(name);
    }
    let mut child = Command::new(&gateway)
        .arg("--ephemeral")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the gateway example");
    let stdout = child.stdout.take().unwrap();
    let mut guard = ChildGuard(child);
    let lines = std::sync::mpsc::channel::<String>();
    let (tx, rx) = lines;
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    loop {
        let line = rx
            .recv_timeout(START_TIMEOUT)
            .unwrap_or_else(|_| panic!("the gateway did not get ready; printed:\n{printed:#?}"));
        if line == "ready" {
            break;
        }
        printed.push(line);
    }
    let commands: Vec<String> = printed
        .iter()
        .filter_map(|l| l.trim_start().strip_prefix("$ "))
        .map(str::to_string)
        .collect();
    assert!(commands.len() >= 13, "{printed:#?}");
    assert!(
        !commands
            .iter()
            .any(|c| [":8080", ":20880", ":9090"].iter().any(|p| c.contains(p))),
        "ephemeral mode must print the real ports: {commands:#?}"
    );
    assert!(
        commands.iter().any(|c| c.contains(CART_JAR)),
        "the sticky-cart command uses {CART_JAR}: {commands:#?}"
    );
    let jar = common::scratch_dir("gateway-cart").join("cart.jar");
    let http = listener(&printed, "http-in");

    for command in &commands {
        let out = run(command, &jar);
        let context = format!("`{command}` printed:\n{out}");
        if command.contains("batchJob=true") {
            assert_eq!(count(&out, "from batchjob"), 10, "{context}");
        } else if command.contains("dubbo_call") {
            let (v1, v2) = (count(&out, "from user-v1"), count(&out, "from user-v2"));
            assert_eq!(v1 + v2, 100, "{context}");
            assert!(v1 > v2 && v2 >= 1, "{context}");
        } else if command.contains("x-canary=true") {
            assert_eq!(count(&out, "Hello bob, from greeter-v2"), 10, "{context}");
        } else if command.contains("--method hello") {
            assert_eq!(count(&out, "Hello bob, from greeter-v1"), 10, "{context}");
        } else if command.contains("--method header") {
            assert_eq!(count(&out, "greeter-v2: x-user=alice"), 10, "{context}");
        } else if command.contains("--method getItem") {
            assert_eq!(
                count(&out, "TApplicationException UNKNOWN_METHOD"),
                1,
                "{context}"
            );
            assert!(out.contains("metaproxy"), "a local reply: {context}");
        } else if command.contains("seq 20") {
            let (v1, v2) = (count(&out, "product-v1"), count(&out, "product-v2"));
            assert_eq!(v1 + v2, 20, "{context}");
            assert!(v1 >= 10, "{context}");
        } else if command.contains("http2-prior-knowledge") {
            assert!(out.starts_with("product-v"), "{context}");
        } else if command.contains("/user/me") {
            assert!(out.starts_with("user GET /user/me"), "{context}");
        } else if command.contains("set-cookie") {
            let line = out.trim().to_lowercase();
            assert!(line.starts_with("set-cookie: cart="), "{context}");
            assert!(line.contains("max-age=3600"), "{context}");
            assert!(line.contains("path=/"), "{context}");
        } else if command.contains(CART_JAR) {
            let tags = tags(&out);
            assert_eq!(tags.len(), 3, "{context}");
            assert!(tags[0].starts_with("cart-"), "{context}");
            assert!(tags.iter().all(|t| *t == tags[0]), "not sticky: {context}");
            let (_, expires) = jar_cookie(&jar);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            assert!(
                (now + 3500..=now + 3700).contains(&expires),
                "the cart cookie should live 1h: expires {expires}, now {now}"
            );
            check_cookie_sticks(http, &jar, tags[0]);
        } else if command.contains("seq 30") {
            let per_tag = ["cart-1", "cart-2", "cart-3"].map(|t| count(&out, t));
            assert_eq!(per_tag.iter().sum::<usize>(), 30, "{context}");
            assert!(
                per_tag.iter().filter(|&&n| n > 0).count() >= 2,
                "new carts should spread: {context}"
            );
        } else if command.contains("/nothing") {
            assert!(out.contains(" 404"), "{context}");
            assert!(
                out.to_lowercase().contains("x-metaproxy-reason"),
                "{context}"
            );
        } else {
            panic!("no check for a printed command: {context}");
        }
    }
    check_python_client(listener(&printed, "thrift-in"));

    // SIGTERM: the gateway stops and removes its scratch config directory.
    let config = printed
        .iter()
        .find_map(|l| {
            l.split_once(", config ")
                .map(|(_, p)| PathBuf::from(p.trim()))
        })
        .unwrap_or_else(|| panic!("no config path printed: {printed:#?}"));
    assert!(config.exists(), "{}", config.display());
    let status = Command::new("kill")
        .args(["-TERM", &guard.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while guard.0.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !config.parent().unwrap().exists(),
        "{} left behind",
        config.display()
    );
}
