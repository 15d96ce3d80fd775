//! Calls the `Greeter` Thrift service through metaproxy and counts the answers.
//!
//! ```sh
//! cargo run --example thrift_call -- [--addr 127.0.0.1:9090] [--method hello] [--arg bob] [--count 10] [--header key=value]...
//! ```
//!
//! Speaks framed binary Thrift; with `--header` it speaks THeader (binary)
//! and sends the info headers on every call. Prints one line per distinct
//! answer with its count (`    10  Hello bob, from greeter-v1`); an
//! exception from the server or the proxy prints as `error: …`.

#[path = "support/thrift_demo.rs"]
mod thrift_demo;

use std::collections::BTreeMap;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut addr = "127.0.0.1:9090".to_string();
    let mut method = "hello".to_string();
    let mut arg = "bob".to_string();
    let mut count = 1usize;
    let mut headers = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))?;
        match a.as_str() {
            "--addr" => addr = value,
            "--method" => method = value,
            "--arg" => arg = value,
            "--count" => count = value.parse()?,
            "--header" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--header wants key=value"))?;
                headers.push((k.to_string(), v.to_string()));
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let mut client = thrift_demo::Client::connect(&addr, headers).await?;
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for seqid in 1..=i32::try_from(count)? {
        let answer = match client.call(seqid, &method, &arg).await? {
            Ok(text) => text,
            Err(err) => format!("error: {err}"),
        };
        *answers.entry(answer).or_default() += 1;
    }
    for (answer, n) in answers {
        println!("{n:>6}  {answer}");
    }
    Ok(())
}
