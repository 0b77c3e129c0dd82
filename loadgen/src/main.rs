//! `loadgen` — register simulator and benchmark driver for the OFD gateway.
//!
//! Subcommands: `run` (load), `registers` (CSV for `adminctl registers import`),
//! `baseline` (the trivial responder), `idle` (hold many connections).
//!
//! Exit codes: 0 ok; 1 runtime error; 2 usage or refused configuration (non-loopback
//! address, file limit); 3 verification failures (mismatches, changed acks); 99 a
//! `--threshold` was breached.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use loadgen::baseline::{Baseline, BaselineConfig, ServerTls};
use loadgen::docs::{Clock, DocPlan, Fault};
use loadgen::idle::{IdleConfig, Reconnect};
use loadgen::onboard::{OnboardConfig, default_paid_until, onboard, resolve_token};
use loadgen::registers::{FfdMix, Population};
use loadgen::run::{Behaviour, LoadModel, RunConfig};
use loadgen::stats::Threshold;
use loadgen::transport::TransportKind;
use loadgen::transport::quic::QuicOptions;
use rustls::pki_types::CertificateDer;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Cash-register simulator and benchmark driver for the OFD gateway",
    long_about = "Simulates many cash registers sending valid fiscal documents to the gateway \
over TCP, TLS or QUIC, verifies every acknowledgment, and measures latency with HdrHistograms \
from the intended send time (open loop). Only loopback (127.0.0.0/8) targets are allowed.\n\n\
Exit codes: 0 ok, 1 error, 2 usage/refused configuration, 3 verification failures, 99 threshold breached."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run load against the gateway (or the baseline) and report.
    Run(Box<RunArgs>),
    /// Write registers as CSV for `adminctl registers import`.
    Registers(RegistersArgs),
    /// Serve the trivial responder: canned acks, no parsing, no storage.
    Baseline(BaselineArgs),
    /// Open many connections and hold them (connection-scale tests, reconnect storms).
    Idle(Box<IdleArgs>),
    /// Import registers through the gateway's admin API (what `run --onboard` does first).
    Onboard(OnboardArgs),
}

#[derive(Debug, Args)]
struct AdminArgs {
    /// Admin API (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    admin: String,
    /// Admin bearer token (default: DIR/admin-token of --gateway-data-dir).
    #[arg(long, env = "LOADGEN_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Tariff plan for onboarded registers.
    #[arg(long)]
    tariff: Option<String>,
    /// End of the paid period for onboarded registers (RFC 3339; default one year ahead).
    #[arg(long)]
    paid_until: Option<String>,
}

#[derive(Debug, Args)]
struct OnboardArgs {
    #[command(flatten)]
    pop: PopArgs,
    #[command(flatten)]
    admin: AdminArgs,
    /// The gateway's data directory (its admin token DIR/admin-token).
    #[arg(long)]
    gateway_data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ConnArgs {
    /// Transport.
    #[arg(long, value_enum, default_value = "tcp")]
    transport: TransportKind,
    /// Gateway address (loopback only). Default: 127.0.0.1:7777 for tcp, :7778 for tls/quic.
    #[arg(long)]
    target: Option<String>,
    /// Trust this PEM certificate (TLS, QUIC).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// TLS server name to verify.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// The gateway's data directory: trusts DIR/tls/dev-cert.pem, reads DIR/admin-token.
    #[arg(long)]
    gateway_data_dir: Option<PathBuf>,
    /// Source addresses, round-robin: `127.0.0.1-127.0.0.20` or a comma list (127/8 only).
    #[arg(long)]
    source_ips: Option<String>,
    /// Connect (and handshake) timeout.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// QUIC keep-alive interval (`0s` = none).
    #[arg(long, value_parser = humantime::parse_duration)]
    quic_keep_alive: Option<Duration>,
    /// QUIC idle timeout proposed to the server (the lower of both sides applies).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    quic_idle_timeout: Duration,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
struct PopArgs {
    /// Number of registers.
    #[arg(long, alias = "registers", default_value_t = 100)]
    count: u64,
    /// Index of the first register (split a population over processes).
    #[arg(long, default_value_t = 0)]
    first_register: u64,
    /// Seed: identities and document contents are reproducible from it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// FFD versions and their weights.
    #[arg(long, default_value = "1.05=20,1.1=10,1.2=70")]
    ffd_mix: FfdMix,
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)]
struct RunArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    pop: PopArgs,
    /// Open loop: target rate in documents per second for the whole population.
    #[arg(long, conflicts_with = "closed")]
    rate: Option<f64>,
    /// Closed loop: each register sends its next document when the previous ack arrives.
    #[arg(long)]
    closed: bool,
    /// Connection behaviour.
    #[arg(long, value_enum, default_value = "persistent")]
    behaviour: Behaviour,
    /// Length of the load phase.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Excluded from histograms and the achieved rate.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Stop each register after this many documents.
    #[arg(long)]
    docs_per_register: Option<u64>,
    /// Reply timeout per exchange.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Open loop: sends later than this after their intended time count as late.
    #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
    late_threshold: Duration,
    /// How long a timed-out reply is still awaited (default: --timeout).
    #[arg(long, value_parser = humantime::parse_duration)]
    late_window: Option<Duration>,
    /// Resends of a timed-out document before giving up.
    #[arg(long, default_value_t = 2)]
    max_resends: u32,
    /// Share of acknowledged documents re-sent on purpose (ack must be byte-identical).
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Share of documents replaced by an injected fault.
    #[arg(long, default_value_t = 0.0)]
    malformed: f64,
    /// Faults to inject: fd_mismatch, truncated, unknown_form, bad_container_crc.
    #[arg(long, value_delimiter = ',', default_value = "fd_mismatch,truncated,unknown_form,bad_container_crc")]
    faults: Vec<String>,
    /// Persistent sessions: new connections per second while connecting.
    #[arg(long)]
    ramp_rate: Option<f64>,
    /// Closed loop: pause after each ack.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    think_time: Duration,
    /// Receipts per shift, `MIN-MAX`.
    #[arg(long, default_value = "5-40")]
    receipts_per_shift: String,
    /// First FD number of every register (raise it to avoid re-sending stored FDs).
    #[arg(long, default_value_t = 1)]
    fd_start: u32,
    /// Document times from this Unix time, one minute per document (byte-reproducible).
    #[arg(long)]
    fixed_time: Option<u32>,
    /// Allow TLS session resumption (default: every handshake is a full one).
    #[arg(long)]
    tls_resume: bool,
    /// Write every figure as JSON here (`-` = stdout; the summary then goes to stderr).
    #[arg(long)]
    json: Option<PathBuf>,
    /// No human summary.
    #[arg(long)]
    quiet: bool,
    /// No live progress line.
    #[arg(long)]
    no_progress: bool,
    /// Pass/fail conditions, e.g. `p99<5ms`, `rate>=10000`, `timeouts==0` (exit 99).
    #[arg(long = "threshold")]
    thresholds: Vec<Threshold>,
    /// Mismatches tolerated before exiting with 3.
    #[arg(long, default_value_t = 0)]
    max_mismatches: u64,
    /// Import the registers through the admin API before the run.
    #[arg(long)]
    onboard: bool,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Debug, Args)]
struct RegistersArgs {
    #[command(flatten)]
    pop: PopArgs,
    /// Output CSV (`-` = stdout).
    #[arg(long)]
    out: PathBuf,
    /// Tariff plan column.
    #[arg(long)]
    tariff: Option<String>,
    /// paid_until column, RFC 3339 (default one year ahead; `none` leaves it empty).
    #[arg(long)]
    paid_until: Option<String>,
}

#[derive(Debug, Args)]
struct BaselineArgs {
    /// Plain TCP listener (`none` to disable).
    #[arg(long, default_value = "127.0.0.1:7777")]
    listen: String,
    /// TLS listener.
    #[arg(long)]
    tls_listen: Option<String>,
    /// QUIC listener (UDP).
    #[arg(long)]
    quic_listen: Option<String>,
    /// Certificate PEM for TLS/QUIC (default: a self-signed one).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key PEM.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Write the certificate clients must trust here (use with loadgen --ca).
    #[arg(long)]
    cert_out: Option<PathBuf>,
    /// Print the answered rate every interval (`0s` = only at exit).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    stats_interval: Duration,
    /// Stop after this long (default: until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
struct IdleArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Connections to open.
    #[arg(long)]
    connections: u64,
    /// Index of the first register.
    #[arg(long, default_value_t = 0)]
    first_register: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// New connections per second.
    #[arg(long)]
    ramp_rate: Option<f64>,
    /// Hold time after the plateau.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// Send one document per connection and verify its ack.
    #[arg(long)]
    send_first: bool,
    /// Reply timeout of that document (and of the next one after a reconnect).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// FD of every register's first document (raise it to re-run against stored data).
    #[arg(long, default_value_t = 1)]
    fd_start: u32,
    /// Reconnect storm: when the server drops a connection, reconnect (with backoff) and
    /// deliver the next document; the hold ends once every register has recovered.
    #[arg(long)]
    reconnect: bool,
    /// Reconnect backoff `MIN-MAX`: attempt n waits uniformly up to min(MAX, MIN·2ⁿ).
    #[arg(long, default_value = "100ms-1s")]
    reconnect_backoff: String,
    /// Write one CSV line per recovery here (register, drop and recovery times).
    #[arg(long)]
    storm_csv: Option<PathBuf>,
    /// Write the phase (`connected`, `plateau`, `done`) here as JSON, for scripts.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Send the first documents only once this file exists (measure the server between).
    #[arg(long)]
    wait_file: Option<PathBuf>,
    /// Import the registers through the admin API first.
    #[arg(long)]
    onboard: bool,
    #[command(flatten)]
    admin: AdminArgs,
    /// Write the report as JSON here (`-` = stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    no_progress: bool,
}

/// A configuration error: exit code 2.
#[derive(Debug)]
struct Usage(anyhow::Error);

fn usage<E: Into<anyhow::Error>>(e: E) -> Usage {
    Usage(e.into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    loadgen::install_crypto_provider();
    let threads = match &cli.cmd {
        Cmd::Run(a) => a.conn.threads,
        Cmd::Idle(a) => a.conn.threads,
        Cmd::Baseline(a) => a.threads,
        Cmd::Registers(_) => Some(1),
        Cmd::Onboard(_) => Some(1),
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = threads {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async move {
        match cli.cmd {
            Cmd::Run(a) => cmd_run(*a).await,
            Cmd::Registers(a) => cmd_registers(&a),
            Cmd::Baseline(a) => cmd_baseline(a).await,
            Cmd::Idle(a) => cmd_idle(*a).await,
            Cmd::Onboard(a) => cmd_onboard(a).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(Outcome::Usage(Usage(e))) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Outcome::Fail(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

enum Outcome {
    Usage(Usage),
    Fail(anyhow::Error),
}

impl From<Usage> for Outcome {
    fn from(u: Usage) -> Self {
        Self::Usage(u)
    }
}

impl From<anyhow::Error> for Outcome {
    fn from(e: anyhow::Error) -> Self {
        Self::Fail(e)
    }
}

fn ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: finishing in-flight exchanges and reporting");
            t.cancel();
        }
    });
    token
}

struct Resolved {
    target: SocketAddr,
    ca: Vec<CertificateDer<'static>>,
    ca_source: Option<String>,
    sources: Vec<Ipv4Addr>,
    threads: usize,
}

fn resolve_conn(c: &ConnArgs) -> Result<Resolved, Usage> {
    let target = match &c.target {
        Some(t) => loadgen::net::parse_target(t, "target").map_err(usage)?,
        None => c.transport.default_target(),
    };
    let sources = match &c.source_ips {
        Some(s) => loadgen::net::parse_sources(s).map_err(usage)?,
        None => Vec::new(),
    };
    let (ca, ca_source) = if matches!(c.transport, TransportKind::Tls | TransportKind::Quic) {
        let path = match (&c.ca, &c.gateway_data_dir) {
            (Some(p), _) => p.clone(),
            (None, Some(d)) => d.join("tls").join("dev-cert.pem"),
            (None, None) => {
                return Err(usage(anyhow::anyhow!(
                    "{} needs a certificate to trust: --ca FILE, or --gateway-data-dir DIR \
                     (the gateway's development certificate DIR/tls/dev-cert.pem)",
                    c.transport.name()
                )));
            }
        };
        (loadgen::transport::tls::load_ca(&path).map_err(usage)?, Some(path.display().to_string()))
    } else {
        (Vec::new(), None)
    };
    let threads =
        c.threads.unwrap_or_else(|| std::thread::available_parallelism().map(std::num::NonZeroUsize::get).unwrap_or(1));
    Ok(Resolved { target, ca, ca_source, sources, threads })
}

fn report_limit(transport: TransportKind) {
    if let Ok(l) = loadgen::sys::FileLimit::current() {
        let what = if transport.uses_fd_per_connection() {
            format!("one process can hold about {} {} connections", l.connection_capacity(), transport.name())
        } else {
            "QUIC connections share one UDP socket per source address".to_owned()
        };
        eprintln!("loadgen: file limit {} (hard {}): {what}", l.soft, l.hard);
    }
}

fn parse_range(s: &str) -> Result<(u32, u32), Usage> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u32 = a.trim().parse().map_err(|_| usage(anyhow::anyhow!("bad range {s:?}: use MIN-MAX")))?;
    let b: u32 = b.trim().parse().map_err(|_| usage(anyhow::anyhow!("bad range {s:?}: use MIN-MAX")))?;
    if a > b {
        return Err(usage(anyhow::anyhow!("bad range {s:?}: MIN is above MAX")));
    }
    Ok((a, b))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")?;
    } else {
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn cmd_run(a: RunArgs) -> Result<i32, Outcome> {
    let r = resolve_conn(&a.conn)?;
    let load = match (a.rate, a.closed) {
        (Some(rate), false) => LoadModel::Open { rate },
        (None, true) => LoadModel::Closed,
        (None, false) => LoadModel::Open { rate: 1000.0 },
        (Some(_), true) => return Err(usage(anyhow::anyhow!("--rate and --closed exclude each other")).into()),
    };
    let faults = a
        .faults
        .iter()
        .map(|f| {
            Fault::from_name(f.trim()).ok_or_else(|| {
                usage(anyhow::anyhow!("unknown fault {f:?} (fd_mismatch, truncated, unknown_form, bad_container_crc)"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let population =
        Population { seed: a.pop.seed, first: a.pop.first_register, count: a.pop.count, mix: a.pop.ffd_mix.clone() };
    let plan = DocPlan {
        receipts_per_shift: parse_range(&a.receipts_per_shift)?,
        malformed_share: a.malformed,
        faults,
        fd_start: a.fd_start,
        clock: a.fixed_time.map_or(Clock::Wall, Clock::Fixed),
        ..DocPlan::default()
    };
    let mut cfg = RunConfig::new(r.target, a.conn.transport, population.clone());
    cfg.ca = r.ca;
    cfg.ca_source = r.ca_source;
    cfg.server_name = a.conn.server_name.clone();
    cfg.tls_resumption = a.tls_resume;
    cfg.sources = r.sources;
    cfg.plan = plan;
    cfg.behaviour = a.behaviour;
    cfg.load = load;
    cfg.duration = a.duration;
    cfg.warmup = a.warmup;
    cfg.docs_per_register = a.docs_per_register;
    cfg.timeout = a.timeout;
    cfg.connect_timeout = a.conn.connect_timeout;
    cfg.late_threshold = a.late_threshold;
    cfg.late_window = a.late_window.unwrap_or(a.timeout);
    cfg.max_resends = a.max_resends;
    cfg.duplicates = a.duplicates;
    cfg.ramp_rate = a.ramp_rate;
    cfg.think_time = a.think_time;
    cfg.quic = QuicOptions {
        keep_alive: a.conn.quic_keep_alive.filter(|d| !d.is_zero()),
        idle_timeout: a.conn.quic_idle_timeout,
    };
    cfg.threads = r.threads;
    cfg.shards = (r.threads * 4).max(4);
    cfg.progress = !a.no_progress;
    cfg.thresholds = a.thresholds.clone();
    cfg.max_mismatches = a.max_mismatches;
    cfg.validate().map_err(usage)?;
    report_limit(a.conn.transport);

    if a.onboard {
        do_onboard(&a.admin, a.conn.gateway_data_dir.as_deref(), &population).await?;
    }

    let report = loadgen::run::run(cfg, ctrl_c()).await?;
    let to_stdout = a.json.as_deref() == Some(Path::new("-"));
    if let Some(p) = &a.json {
        write_json(p, &report)?;
    }
    if !a.quiet {
        if to_stdout {
            eprint!("{}", report.summary());
        } else {
            print!("{}", report.summary());
        }
    }
    Ok(report.verdict.exit_code)
}

/// Imports `population` through the admin API.
async fn do_onboard(a: &AdminArgs, data_dir: Option<&Path>, population: &Population) -> Result<(), Outcome> {
    population.validate().map_err(usage)?;
    let admin = loadgen::net::check_admin_url(&a.admin).map_err(usage)?;
    let token = resolve_token(a.admin_token.as_deref(), data_dir).map_err(usage)?;
    let ocfg = OnboardConfig {
        admin,
        token,
        batch: loadgen::onboard::MAX_BATCH,
        tariff: a.tariff.clone(),
        paid_until: Some(a.paid_until.clone().unwrap_or_else(default_paid_until)),
        timeout: Duration::from_secs(120),
    };
    let t = std::time::Instant::now();
    let out = onboard(&ocfg, population).await?;
    eprintln!(
        "loadgen: onboarded {} registers in {:.1}s: {} created, {} updated, {} unchanged",
        population.count,
        t.elapsed().as_secs_f64(),
        out.created,
        out.updated,
        out.unchanged
    );
    Ok(())
}

async fn cmd_onboard(a: OnboardArgs) -> Result<i32, Outcome> {
    let population =
        Population { seed: a.pop.seed, first: a.pop.first_register, count: a.pop.count, mix: a.pop.ffd_mix.clone() };
    do_onboard(&a.admin, a.gateway_data_dir.as_deref(), &population).await?;
    Ok(0)
}

fn cmd_registers(a: &RegistersArgs) -> Result<i32, Outcome> {
    let population =
        Population { seed: a.pop.seed, first: a.pop.first_register, count: a.pop.count, mix: a.pop.ffd_mix.clone() };
    population.validate().map_err(usage)?;
    let paid_until = match a.paid_until.as_deref() {
        Some("none" | "") => None,
        Some(p) => {
            time::OffsetDateTime::parse(p, &time::format_description::well_known::Rfc3339)
                .map_err(|_| usage(anyhow::anyhow!("--paid-until {p:?} is not RFC 3339")))?;
            Some(p.to_owned())
        }
        None => Some(default_paid_until()),
    };
    let n = if a.out == Path::new("-") {
        let out = std::io::stdout().lock();
        loadgen::registers::write_csv(out, &population, a.tariff.as_deref(), paid_until.as_deref())?
    } else {
        loadgen::registers::write_csv_file(&a.out, &population, a.tariff.as_deref(), paid_until.as_deref())?
    };
    if a.out != Path::new("-") {
        eprintln!(
            "loadgen: wrote {n} registers to {} (import with `adminctl registers import {}`)",
            a.out.display(),
            a.out.display()
        );
    }
    Ok(0)
}

fn opt_addr(s: Option<&str>, what: &'static str) -> Result<Option<SocketAddr>, Usage> {
    match s {
        None | Some("none") => Ok(None),
        Some(s) => Ok(Some(loadgen::net::parse_target(s, what).map_err(usage)?)),
    }
}

async fn cmd_baseline(a: BaselineArgs) -> Result<i32, Outcome> {
    let cfg = BaselineConfig {
        tcp: opt_addr(Some(&a.listen), "listen address")?,
        tls: opt_addr(a.tls_listen.as_deref(), "TLS listen address")?,
        quic: opt_addr(a.quic_listen.as_deref(), "QUIC listen address")?,
        tls_material: match (&a.cert, &a.key) {
            (Some(c), Some(k)) => Some(ServerTls::from_files(c, k).map_err(usage)?),
            _ => None,
        },
        backlog: 4096,
    };
    let b = Baseline::start(cfg).await?;
    for (name, addr) in [("tcp", b.tcp_addr), ("tls", b.tls_addr), ("quic", b.quic_addr)] {
        if let Some(addr) = addr {
            eprintln!("baseline: {name} on {addr}");
        }
    }
    if let (Some(p), Some(pem)) = (&a.cert_out, &b.cert_pem) {
        std::fs::write(p, pem).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("baseline: certificate written to {} (loadgen --ca {})", p.display(), p.display());
    }
    let cancel = ctrl_c();
    let start = tokio::time::Instant::now();
    let stop_at = a.duration.map(|d| start + d);
    let mut last = (start, 0u64);
    loop {
        let tick = if a.stats_interval.is_zero() { Duration::from_secs(3600) } else { a.stats_interval };
        let sleep_until =
            stop_at.map_or(tokio::time::Instant::now() + tick, |s| s.min(tokio::time::Instant::now() + tick));
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep_until(sleep_until) => {}
        }
        if stop_at.is_some_and(|s| tokio::time::Instant::now() >= s) {
            break;
        }
        let now = tokio::time::Instant::now();
        let m = b.messages();
        eprintln!(
            "baseline: {:.0} messages/s, {} connections, {} rejected",
            (m - last.1) as f64 / now.duration_since(last.0).as_secs_f64(),
            b.counters.connections.load(std::sync::atomic::Ordering::Relaxed),
            b.counters.rejected.load(std::sync::atomic::Ordering::Relaxed),
        );
        last = (now, m);
    }
    eprintln!(
        "baseline: answered {} messages on {} connections in {:.1}s",
        b.messages(),
        b.counters.connections.load(std::sync::atomic::Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    b.stop().await;
    Ok(0)
}

async fn cmd_idle(a: IdleArgs) -> Result<i32, Outcome> {
    let r = resolve_conn(&a.conn)?;
    if a.conn.transport.uses_fd_per_connection() {
        let l = loadgen::sys::FileLimit::current().context("reading RLIMIT_NOFILE")?;
        l.check_connections(a.connections, "connections").map_err(|e| usage(anyhow::Error::msg(e)))?;
    }
    report_limit(a.conn.transport);
    let reconnect = if a.reconnect {
        let (lo, hi) = a.reconnect_backoff.split_once('-').unwrap_or((&a.reconnect_backoff, &a.reconnect_backoff));
        let parse = |v: &str| {
            humantime::parse_duration(v.trim())
                .map_err(|e| usage(anyhow::anyhow!("--reconnect-backoff {:?}: {e}", a.reconnect_backoff)))
        };
        Some(Reconnect { backoff_min: parse(lo)?, backoff_max: parse(hi)? })
    } else {
        None
    };
    let population = Population { seed: a.seed, first: a.first_register, count: a.connections, mix: FfdMix::default() };
    if a.onboard {
        do_onboard(&a.admin, a.conn.gateway_data_dir.as_deref(), &population).await?;
    }
    let cfg = IdleConfig {
        target: r.target,
        transport: a.conn.transport,
        ca: r.ca,
        server_name: a.conn.server_name.clone(),
        sources: r.sources,
        connections: a.connections,
        population,
        fd_start: a.fd_start,
        ramp_rate: a.ramp_rate,
        hold: a.hold,
        connect_timeout: a.conn.connect_timeout,
        send_first: a.send_first,
        timeout: a.timeout,
        quic: QuicOptions {
            keep_alive: Some(a.conn.quic_keep_alive.unwrap_or(Duration::from_secs(10))).filter(|d| !d.is_zero()),
            idle_timeout: a.conn.quic_idle_timeout,
        },
        ready_file: a.ready_file.clone(),
        wait_file: a.wait_file.clone(),
        reconnect,
        storm_csv: a.storm_csv.clone(),
        progress: !a.no_progress,
    };
    let report = loadgen::idle::idle(cfg, ctrl_c()).await?;
    if let Some(p) = &a.json {
        write_json(p, &report)?;
    }
    if a.json.as_deref() == Some(Path::new("-")) {
        eprint!("{}", report.summary());
    } else {
        print!("{}", report.summary());
    }
    let storm_failed = report.storm.as_ref().is_some_and(|st| !st.complete);
    Ok(if report.failed > 0 || report.first_documents_failed > 0 || storm_failed {
        loadgen::stats::EXIT_VERIFY
    } else {
        0
    })
}
