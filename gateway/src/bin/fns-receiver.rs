//! `fns-receiver`: a local stand-in for the tax service's intake, for demos and tests.
//!
//! Point the gateway at it (`[fns] url = "http://127.0.0.1:9500/documents"`), then watch
//! `curl -s 127.0.0.1:9500/stats`. See `docs/fns.md`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gateway::control::fns::receiver::{Receiver, ReceiverOptions};

/// A local FNS receiver: accepts the gateway's document deliveries, deduplicates them by
/// their idempotency key, counts them, and serves what arrived.
///
/// Routes: POST /documents (or /), POST /alerts (webhook sink), GET /stats,
/// GET /documents/{fn}/{fd}, GET /documents?limit=N, GET /alerts, GET /healthz.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "Local FNS receiver: accepts the documents the gateway forwards, deduplicates them by idempotency key, counts them (GET /stats). For tests and demos.",
    long_about = None
)]
struct Cli {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:9500")]
    listen: SocketAddr,
    /// Answer the first N POSTs with 503 (failure injection).
    #[arg(long, default_value_t = 0)]
    fail_first: u64,
    /// Then answer this fraction (0.0–1.0) of POSTs with 503, at random.
    #[arg(long, default_value_t = 0.0, value_parser = parse_ratio)]
    fail_ratio: f64,
    /// Append every received event to this JSON-lines file and replay it at start
    /// (deduplication and counters survive a restart).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Also write the bound address (IP:PORT) to this file.
    #[arg(long)]
    addr_file: Option<PathBuf>,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err("must be between 0.0 and 1.0".into()) }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fns-receiver: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let rx = Receiver::open(ReceiverOptions {
        fail_first: cli.fail_first,
        fail_ratio: cli.fail_ratio,
        data: cli.data.clone(),
    })?;
    let listener =
        tokio::net::TcpListener::bind(cli.listen).await.map_err(|e| anyhow::anyhow!("binding {}: {e}", cli.listen))?;
    let addr = listener.local_addr()?;
    if let Some(path) = &cli.addr_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, addr.to_string())?;
        std::fs::rename(&tmp, path)?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "fns-receiver listening on http://{addr}")?;
        out.flush()?;
    }
    let stats = rx.stats();
    tracing::info!(%addr, unique = stats.unique, fail_first = cli.fail_first, fail_ratio = cli.fail_ratio, "fns-receiver ready");
    rx.clone().serve(listener, shutdown_signal()).await?;
    let s = rx.stats();
    tracing::info!(
        received = s.received,
        unique = s.unique,
        duplicates = s.duplicates,
        resends = s.resends,
        "fns-receiver stopped"
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
