//! The `metaproxy` command: run a proxy from a YAML file, or validate one.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// A multi-protocol L7 proxy: one filter chain and router for Dubbo, Thrift,
/// HTTP and your own protocols.
#[derive(Debug, Parser)]
#[command(name = "metaproxy", version, about)]
struct Cli {
    /// Log level or filter (`info`, `debug`, `metaproxy_core=trace`); RUST_LOG wins when set.
    #[arg(long, global = true, default_value = "info")]
    log: String,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Worker threads (default: one per core). 1 runs everything on one thread.
    #[arg(long, global = true)]
    workers: Option<usize>,
    /// Config file (for the default `run` command).
    #[arg(short, long)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve traffic as the config file says (the default command).
    Run {
        /// Config file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Check a config file and list every error with its line and column.
    Validate {
        /// Config file.
        #[arg(short, long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let command = match (cli.command, cli.config) {
        (Some(c), _) => c,
        (None, Some(config)) => Command::Run { config },
        (None, None) => {
            eprintln!("metaproxy: give a config file: `metaproxy run -c FILE` (see --help)");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Validate { config } => {
            match metaproxy::validate_file(&config, &metaproxy::default_registry()) {
                Ok(summary) => {
                    println!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    for e in &errors.0 {
                        eprintln!("{e}");
                    }
                    eprintln!("{} error(s)", errors.0.len());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config } => {
            let runtime = match build_runtime(cli.workers) {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("metaproxy: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(run(config))
        }
    }
}

fn build_runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
}

async fn run(config: PathBuf) -> ExitCode {
    let registry = metaproxy::default_registry();
    let proxy = match metaproxy::start_file(&config, &registry).await {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            eprintln!("metaproxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A stable, machine-readable line per listener (tests and scripts read these).
    {
        let mut out = std::io::stdout().lock();
        for (name, addr) in proxy.bound_addresses() {
            let _ = writeln!(out, "listening name={name} address={addr}");
        }
        let _ = writeln!(out, "ready");
        let _ = out.flush();
    }
    wait_for_signal().await;
    info!("shutting down: no new connections, draining in-flight requests");
    let drained = proxy.shutdown().await;
    if drained {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_logging(cli: &Cli) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cli.log))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
