//! `loadgen`: drives Dubbo, Thrift or HTTP/1.1 load at one address and
//! reports throughput and latency percentiles (text, or JSON with `--json`).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use metaproxy_loadgen::client::{self, RunConfig};
use metaproxy_loadgen::proto::{
    ClientProto, dubbo::DubboClient, http1::Http1Client, thrift::ThriftClient,
};
use metaproxy_loadgen::report::Describe;
use metaproxy_loadgen::thrift_wire::{Proto, Transport};
use metaproxy_loadgen::{idle, parse_duration};
use tokio::io::AsyncReadExt;

/// Load generator for Dubbo, Thrift and HTTP/1.1 (closed or open loop).
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Cli {
    /// Protocol to speak.
    #[arg(short, long, value_enum)]
    protocol: Protocol,
    /// Address to load.
    #[arg(short, long)]
    address: SocketAddr,
    /// Thrift transport.
    #[arg(long, value_enum, default_value = "framed")]
    transport: TransportArg,
    /// Thrift protocol.
    #[arg(long, value_enum, default_value = "binary")]
    thrift_protocol: ProtoArg,
    /// Connections.
    #[arg(short, long, default_value_t = 32)]
    connections: usize,
    /// Requests in flight per connection (the cap, in open loop).
    #[arg(short = 'm', long, default_value_t = 1)]
    in_flight: usize,
    /// Measured duration (after the warm-up).
    #[arg(short, long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many answers instead (no warm-up).
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Warm-up before the measured window.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    warmup: Duration,
    /// Open loop: total requests per second, on a fixed schedule.
    #[arg(short, long)]
    rate: Option<f64>,
    /// Payload bytes (Dubbo/Thrift string argument, HTTP body; 0 = HTTP GET).
    #[arg(short = 's', long, default_value_t = 100)]
    payload: usize,
    /// Runtime threads (1 = a single-threaded runtime).
    #[arg(short, long, default_value_t = 1)]
    threads: usize,
    /// Longest wait for an answer.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Instead of load: open this many connections, make one request on
    /// each, print how many are held, and keep them open until stdin closes.
    #[arg(long)]
    idle: Option<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Protocol {
    Dubbo,
    Thrift,
    Http1,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TransportArg {
    Framed,
    Header,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProtoArg {
    Binary,
    Compact,
}

impl Cli {
    fn label(&self) -> String {
        match self.protocol {
            Protocol::Dubbo => "dubbo".into(),
            Protocol::Http1 => "http1".into(),
            Protocol::Thrift => format!(
                "thrift-{}-{}",
                format!("{:?}", self.transport).to_lowercase(),
                format!("{:?}", self.thrift_protocol).to_lowercase()
            ),
        }
    }

    fn client(&self) -> Box<dyn ClientProto> {
        match self.protocol {
            Protocol::Dubbo => Box::new(DubboClient::new(self.payload)),
            Protocol::Http1 => Box::new(Http1Client::new(&self.address.to_string(), self.payload)),
            Protocol::Thrift => Box::new(ThriftClient::new(
                match self.transport {
                    TransportArg::Framed => Transport::Framed,
                    TransportArg::Header => Transport::Header,
                },
                match self.thrift_protocol {
                    ProtoArg::Binary => Proto::Binary,
                    ProtoArg::Compact => Proto::Compact,
                },
                self.payload,
            )),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.connections == 0 || cli.in_flight == 0 {
        eprintln!("loadgen: --connections and --in-flight must be at least 1");
        return ExitCode::from(2);
    }
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
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.idle {
        Some(count) => runtime.block_on(hold_idle(&cli, count)),
        None => runtime.block_on(load(&cli)),
    }
}

async fn load(cli: &Cli) -> ExitCode {
    let cfg = RunConfig {
        addr: cli.address,
        connections: cli.connections,
        in_flight: cli.in_flight,
        duration: cli.duration,
        requests: cli.requests,
        warmup: cli.warmup,
        rate: cli.rate,
        timeout: cli.timeout,
    };
    let stats = client::run(cfg, || cli.client()).await;
    let summary = stats.summary(&Describe {
        protocol: cli.label(),
        address: cli.address.to_string(),
        connections: cli.connections,
        in_flight: cli.in_flight,
        payload: cli.payload,
        rate: cli.rate,
    });
    if cli.json {
        println!("{}", serde_json::to_string(&summary).expect("serializable"));
    } else {
        println!("{summary}");
    }
    if summary.requests == 0 {
        eprintln!("loadgen: no successful answer");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn hold_idle(cli: &Cli, count: usize) -> ExitCode {
    let mut proto = cli.client();
    let (held, opened) = idle::open(cli.address, count, proto.as_mut(), cli.timeout).await;
    if cli.json {
        println!(
            "{}",
            serde_json::json!({ "held": opened.held, "failed": opened.failed })
        );
    } else {
        println!(
            "held {} idle connections ({} failed)",
            opened.held, opened.failed
        );
    }
    let _ = std::io::stdout().flush();
    // Hold until stdin closes.
    let mut stdin = tokio::io::stdin();
    let mut sink = [0u8; 256];
    while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
    drop(held);
    if opened.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
