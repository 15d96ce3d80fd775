//! The `metaproxy` command: run a proxy from a YAML file, or validate one.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Parser, Subcommand};
use metaproxy::admin::{Admin, LogLevelSetter};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// mimalloc: per-thread free lists for every size class (a lean HTTP
/// request allocates a dozen small buffers; see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Make a config file from another product's configuration.
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
}

#[derive(Debug, Subcommand)]
enum ImportFrom {
    /// Istio Gateway, VirtualService, DestinationRule, ServiceEntry and
    /// Aeraki MetaRouter YAML files: the config goes to stdout (or
    /// `--output`), every field it cannot carry to stderr.
    Istio {
        /// Write the config here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The files (several `---` documents each, in any order).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let set_log_level = init_logging(&cli);
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
        Command::Import {
            from: ImportFrom::Istio { output, files },
        } => import_istio(&files, output.as_deref()),
        Command::Run { config } => {
            let runtime = match build_runtime(cli.workers) {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("metaproxy: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(run(config, set_log_level))
        }
    }
}

/// `metaproxy import istio`: the config out, the notes on stderr.
fn import_istio(files: &[PathBuf], output: Option<&std::path::Path>) -> ExitCode {
    let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    let imported = match metaproxy::import::istio(&paths) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("metaproxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    for note in &imported.notes {
        eprintln!("not carried: {note}");
    }
    let text = format!(
        "# Made by `metaproxy import istio` from {}\n{}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        imported.yaml()
    );
    match output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("metaproxy: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        None => print!("{text}"),
    }
    eprintln!(
        "{} field(s) not carried; check the config with `metaproxy validate -c FILE`",
        imported.notes.len()
    );
    ExitCode::SUCCESS
}

/// The runtime `run` works on. One worker: everything on one
/// single-threaded runtime. More (the default: one per core): per-core
/// workers for the connections (`metaproxy_core::workers`), and a small
/// runtime of two threads for accepting, admin, discovery, xDS and health
/// checks (two, so that building a large config does not stop accepting).
fn build_runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let n = workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if n <= 1 {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
    }
    metaproxy_core::workers::start(n)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

async fn run(config: PathBuf, set_log_level: Option<LogLevelSetter>) -> ExitCode {
    let registry = metaproxy::default_registry();
    let proxy = match metaproxy::start_with_xds(&config, &registry).await {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            eprintln!("metaproxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let admin = Arc::new(Admin {
        proxy: proxy.clone(),
        config_path: config.clone(),
        set_log_level,
    });
    let admin_line = match metaproxy::admin::serve_following(admin).await {
        Ok(bound) => bound,
        Err(e) => {
            let address = proxy.snapshot().admin;
            eprintln!("metaproxy: admin endpoint cannot bind {address:?}: {e}");
            return ExitCode::FAILURE;
        }
    };
    metaproxy::reload::spawn(proxy.clone(), config.clone());
    // A stable, machine-readable line per listener (tests and scripts read these).
    {
        let mut out = std::io::stdout().lock();
        for (name, addr) in proxy.bound_addresses().await {
            let _ = writeln!(out, "listening name={name} address={addr}");
        }
        if let Some(addr) = admin_line {
            let _ = writeln!(out, "admin address={addr}");
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

/// Installs the log subscriber; returns a setter for `/log_level`.
fn init_logging(cli: &Cli) -> Option<LogLevelSetter> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cli.log))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let installed = match cli.log_format {
        LogFormat::Text => registry.with(fmt).try_init(),
        LogFormat::Json => registry.with(fmt.json()).try_init(),
    };
    installed.ok()?;
    Some(Arc::new(move |level: &str| {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    }))
}
