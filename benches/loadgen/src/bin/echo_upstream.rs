//! `echo-upstream`: a fast echo server for the benchmarks (Dubbo, Thrift
//! framed/THeader × binary/compact, HTTP/1.1 + h2c). Prints
//! `listening address=ADDR` once bound.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use metaproxy_loadgen::echo::{self, dubbo::DubboEcho, thrift::ThriftEcho};
use tokio::net::TcpListener;

/// Echo upstream for the benchmarks.
#[derive(Debug, Parser)]
#[command(name = "echo-upstream")]
struct Cli {
    /// Protocol to serve.
    #[arg(short, long, value_enum)]
    protocol: Protocol,
    /// Address to bind (port 0: any free port).
    #[arg(short, long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Runtime threads (1 = a single-threaded runtime).
    #[arg(short, long, default_value_t = 1)]
    threads: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Protocol {
    Dubbo,
    Thrift,
    Http,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("echo-upstream: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match TcpListener::bind(cli.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("echo-upstream: cannot bind {}: {e}", cli.listen);
                return ExitCode::FAILURE;
            }
        };
        let addr = listener.local_addr().expect("bound address");
        println!("listening address={addr}");
        let _ = std::io::stdout().flush();
        match cli.protocol {
            Protocol::Dubbo => echo::serve(listener, DubboEcho::default).await,
            Protocol::Thrift => echo::serve(listener, ThriftEcho::default).await,
            Protocol::Http => echo::http::serve(listener).await,
        }
        ExitCode::SUCCESS
    })
}
