//! The `gateway` binary: configuration, logging, signals; everything else is the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: frame buffers are allocated on the I/O threads and
/// freed on the storage writer thread, a pattern glibc's arenas handle poorly (it showed as
/// ~12% of the gateway's CPU under load).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use gateway::config::{Config, Listen};

/// The OFD ingest gateway.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// TOML configuration file (see config/gateway.example.toml).
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (embedded store, development certificate and token).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Plain TCP listener, IP:PORT or "off".
    #[arg(long)]
    tcp_listen: Option<String>,
    /// TLS listener, IP:PORT or "off".
    #[arg(long)]
    tls_listen: Option<String>,
    /// QUIC listener (UDP), IP:PORT or "off".
    #[arg(long)]
    quic_listen: Option<String>,
    /// Admin API listener, IP:PORT or "off".
    #[arg(long)]
    admin_listen: Option<String>,
    /// Metrics/health listener, IP:PORT or "off".
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Validate the configuration and exit (0 when valid, 64 with a message otherwise).
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the metrics catalogue as Markdown (docs/metrics.md).
    MetricsDoc,
    /// Print the effective configuration as TOML.
    PrintConfig,
    /// Print the documented example configuration (config/gateway.example.toml), rendered
    /// from the code's doc comments and defaults.
    ConfigDoc,
    /// Apply the ScyllaDB schema (versioned CQL in config/schema) to the configured
    /// cluster; with `--dry-run`, print the statements instead.
    Migrate {
        /// Print the CQL that would run; connect to nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Exit code for configuration errors (EX_USAGE).
const EX_CONFIG: u8 = 64;

fn parse_listen(flag: &str, v: &str) -> Result<Listen, String> {
    serde_json::from_value::<Listen>(serde_json::Value::String(v.to_owned())).map_err(|e| format!("--{flag}: {e}"))
}

fn effective_config(cli: &Cli) -> Result<Config, String> {
    let mut cfg = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(d) = &cli.data_dir {
        cfg.data_dir = d.clone();
    }
    for (flag, value, slot) in [
        ("tcp-listen", &cli.tcp_listen, &mut cfg.listen.tcp),
        ("tls-listen", &cli.tls_listen, &mut cfg.listen.tls),
        ("quic-listen", &cli.quic_listen, &mut cfg.listen.quic),
        ("admin-listen", &cli.admin_listen, &mut cfg.listen.admin),
        ("metrics-listen", &cli.metrics_listen, &mut cfg.listen.metrics),
    ] {
        if let Some(v) = value {
            *slot = parse_listen(flag, v)?;
        }
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::MetricsDoc) => {
            print!("{}", gateway::metrics::render_markdown());
            return ExitCode::SUCCESS;
        }
        Some(Command::ConfigDoc) => {
            print!("{}", gateway::config::example::render());
            return ExitCode::SUCCESS;
        }
        Some(Command::PrintConfig | Command::Migrate { .. }) | None => {}
    }
    let cfg = match effective_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gateway: configuration error: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    if cli.check_config {
        println!("configuration is valid");
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Migrate { dry_run }) = cli.command {
        return migrate(&cfg, dry_run);
    }
    if matches!(cli.command, Some(Command::PrintConfig)) {
        match toml::to_string_pretty(&cfg) {
            Ok(t) => {
                print!("{t}");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("gateway: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    init_logging(&cfg);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let running = gateway::start(cfg).await?;
        let signal = running.shutdown_signal();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            signal.trigger();
        });
        running.wait().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "scylla")]
fn migrate(cfg: &Config, dry_run: bool) -> ExitCode {
    use storage::scylla::{MigrationConfig, connect_session, migrate, render};
    if cfg.storage.backend != "scylla" {
        eprintln!("gateway: storage.backend is {:?}: the embedded store needs no migration", cfg.storage.backend);
        return ExitCode::from(EX_CONFIG);
    }
    let local_dc = if cfg.storage.local_dc.is_empty() { "dc1" } else { &cfg.storage.local_dc };
    let mc = MigrationConfig::single_dc(cfg.storage.keyspace.clone(), local_dc, cfg.storage.replication_factor);
    if dry_run {
        return match render(&mc) {
            Ok(versions) => {
                for v in versions {
                    println!("-- version {}: {}", v.version, v.description);
                    for st in v.statements {
                        println!("{st};");
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gateway: {e}");
                ExitCode::from(EX_CONFIG)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let sc = gateway::server::scylla_config(cfg)?;
        let session = connect_session(&sc).await?;
        anyhow::Ok(migrate(&session, &mc).await?)
    });
    match result {
        Ok(r) => {
            println!(
                "keyspace {}: applied {:?}, already applied {:?}, unknown {:?}",
                r.keyspace, r.applied, r.already_applied, r.unknown
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gateway: migration failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "scylla"))]
fn migrate(cfg: &Config, _dry_run: bool) -> ExitCode {
    if cfg.storage.backend == "scylla" {
        eprintln!("gateway: this build has no ScyllaDB backend; rebuild with `--features scylla`");
    } else {
        eprintln!("gateway: storage.backend is {:?}: the embedded store needs no migration", cfg.storage.backend);
    }
    ExitCode::from(EX_CONFIG)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // without signal handlers, only an explicit trigger stops the gateway
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
