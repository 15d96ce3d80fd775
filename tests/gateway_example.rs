//! The README's first command, `cargo run --example gateway`, works: the
//! gateway starts (on free ports, `--ephemeral`), and every command it
//! prints gives the answer its comment promises.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ChildGuard, START_TIMEOUT};

/// `target/<profile>/examples/<name>`. `cargo test` builds the examples
/// along with the binary; `cargo test --test gateway_example` does not, so
/// when they are missing they are built here (once). Existing ones are used
/// as they are (a separate build may resolve features differently from the
/// test build and recompile a lot): after editing only the example, run
/// `cargo test` (which rebuilds it) rather than this test alone.
fn example(name: &str) -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_metaproxy")).parent().unwrap();
    let fresh = ["gateway", "dubbo_call"]
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
            .args(["build", "--example", "gateway", "--example", "dubbo_call"])
            .args(["--profile", &profile])
            .env("CARGO_TARGET_DIR", target_dir)
            .status()
            .expect("run cargo build --example");
        assert!(
            status.success(),
            "cargo build --example gateway --example dubbo_call failed"
        );
    });
    bin_dir.join("examples").join(name)
}

/// Runs one printed command with the example binaries instead of `cargo run`.
fn run(command: &str) -> String {
    let dubbo_call = example("dubbo_call");
    let command = command.replace(
        "cargo run --example dubbo_call --",
        &dubbo_call.display().to_string(),
    );
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

#[test]
fn every_printed_command_works() {
    let gateway = example("gateway");
    example("dubbo_call");
    let mut child = Command::new(&gateway)
        .arg("--ephemeral")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the gateway example");
    let stdout = child.stdout.take().unwrap();
    let _guard = ChildGuard(child);
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
    assert!(commands.len() >= 7, "{printed:#?}");
    assert!(
        !commands
            .iter()
            .any(|c| c.contains(":8080") || c.contains(":20880")),
        "ephemeral mode must print the real ports: {commands:#?}"
    );

    for command in &commands {
        let out = run(command);
        let context = format!("`{command}` printed:\n{out}");
        if command.contains("batchJob=true") {
            assert_eq!(count(&out, "from batchjob"), 10, "{context}");
        } else if command.contains("dubbo_call") {
            let (v1, v2) = (count(&out, "from user-v1"), count(&out, "from user-v2"));
            assert_eq!(v1 + v2, 100, "{context}");
            assert!(v1 > v2 && v2 >= 1, "{context}");
        } else if command.contains("seq 20") {
            let (v1, v2) = (count(&out, "product-v1"), count(&out, "product-v2"));
            assert_eq!(v1 + v2, 20, "{context}");
            assert!(v1 >= 10, "{context}");
        } else if command.contains("http2-prior-knowledge") {
            assert!(out.starts_with("product-v"), "{context}");
        } else if command.contains("/user/me") {
            assert!(out.starts_with("user GET /user/me"), "{context}");
        } else if command.contains("/cart") {
            for tag in ["cart-1", "cart-2", "cart-3"] {
                assert!(out.contains(tag), "{context}");
            }
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
}
