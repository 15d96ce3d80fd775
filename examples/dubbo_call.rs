//! Calls `DemoService.sayHello` through metaproxy and counts who answered.
//!
//! ```sh
//! cargo run --example dubbo_call -- [--addr 127.0.0.1:20880] [--count 100] [--attach batchJob=true] [--name bob]
//! ```

#[path = "support/dubbo_demo.rs"]
mod dubbo_demo;

use std::collections::BTreeMap;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut addr = "127.0.0.1:20880".to_string();
    let mut count = 1usize;
    let mut name = "bob".to_string();
    let mut attachments = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))?;
        match a.as_str() {
            "--addr" => addr = value,
            "--count" => count = value.parse()?,
            "--name" => name = value,
            "--attach" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--attach wants key=value"))?;
                attachments.push((k.to_string(), v.to_string()));
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let mut s = tokio::net::TcpStream::connect(&addr).await?;
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for id in 1..=count as u64 {
        let answer = match dubbo_demo::call(&mut s, id, "sayHello", &name, &attachments).await? {
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
