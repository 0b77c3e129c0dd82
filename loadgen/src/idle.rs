//! Connection-scale tests: open N connections at a ramp rate, optionally send one
//! document on each (so the gateway knows who is connected), then hold them all for a
//! while and count who the gateway closed.
//!
//! Each TCP or TLS connection is a file descriptor, and this process may open at most
//! `RLIMIT_NOFILE` (20,000 on the build machines, not raisable); a larger count is refused
//! with the number of processes it needs. QUIC connections share one UDP socket per source
//! address, so they are bounded by memory instead.
//!
//! **Phases**, for scripts that measure the server between them (its RSS per connection
//! before and after the first document): with `ready_file` the phase is written as JSON
//! (`connected` when every attempt finished, `plateau` when every first document was
//! answered, `done` at the end); with `wait_file` the first documents wait until that file
//! exists.
//!
//! **Reconnect storm** (`reconnect`): when the server closes a connection (a restart), the
//! register reconnects — exponential backoff with full jitter between attempts, as a
//! fleet of registers does — and delivers its next document, verified. The report gives,
//! per register, the time from its drop to the acknowledgment of that document, and the
//! wall-clock moments of the first drop and the last recovery, so that several processes
//! can be combined into "time until every register delivered its next document". The
//! hold ends early once every established register has been dropped and has recovered.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use rand::SeedableRng as _;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::docs::{Doc, DocPlan, DocStream, Outcome};
use crate::registers::{Population, RegisterIdentity};
use crate::stats::{Percentiles, Recorder, us};
use crate::transport::connect_stats::{ConnectErrorKind, SourceStat};
use crate::transport::quic::{QuicConnector, QuicOptions};
use crate::transport::tcp::TcpConnector;
use crate::transport::tls::TlsConnector;
use crate::transport::{Conn, Connector, ExchangeError, SourcePool, TransportKind};
use crate::verify::{Expected, verify_reply};

/// Reconnect behaviour after the server dropped a connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reconnect {
    /// Upper bound of the first (jittered) wait, and the base of the exponential backoff.
    pub backoff_min: Duration,
    /// Largest wait between two attempts.
    pub backoff_max: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self { backoff_min: Duration::from_millis(100), backoff_max: Duration::from_secs(1) }
    }
}

impl Reconnect {
    /// The wait before attempt `n` (0-based): uniform in `[0, min(max, min·2ⁿ)]`.
    pub fn wait(&self, attempt: u32, rng: &mut impl rand::Rng) -> Duration {
        let cap = self.backoff_min.saturating_mul(1u32 << attempt.min(20)).min(self.backoff_max);
        let ms = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        if ms == 0 { Duration::ZERO } else { Duration::from_micros(rng.random_range(0..=ms)) }
    }
}

/// What to hold.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// Target (loopback only).
    pub target: SocketAddr,
    /// Transport.
    pub transport: TransportKind,
    /// Trusted certificates (TLS, QUIC).
    pub ca: Vec<CertificateDer<'static>>,
    /// TLS server name.
    pub server_name: String,
    /// Source addresses.
    pub sources: Vec<Ipv4Addr>,
    /// Connections to open (connection `i` belongs to register `first + i`).
    pub connections: u64,
    /// Registers (for `send_first`).
    pub population: Population,
    /// FD of the first document of every register.
    pub fd_start: u32,
    /// New connections per second (unlimited if `None`).
    pub ramp_rate: Option<f64>,
    /// How long to hold after the plateau (a reconnect storm ends it early when every
    /// register recovered).
    pub hold: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Send one document (an open-shift report) on each connection and verify its ack.
    pub send_first: bool,
    /// Reply timeout for that document.
    pub timeout: Duration,
    /// QUIC options (keep-alive is what holds QUIC connections past the idle timeout).
    pub quic: QuicOptions,
    /// Write the phase here as JSON (`connected`, `plateau`, `done`).
    pub ready_file: Option<PathBuf>,
    /// Send the first documents only once this file exists (then at the ramp rate).
    pub wait_file: Option<PathBuf>,
    /// Reconnect and deliver the next document when the server drops a connection.
    pub reconnect: Option<Reconnect>,
    /// Write one CSV line per recovery here (register, drop and recovery times).
    pub storm_csv: Option<PathBuf>,
    /// Progress line on stderr (terminal only).
    pub progress: bool,
}

/// The reconnect storm as one process saw it.
#[derive(Debug, Clone, Serialize)]
pub struct StormReport {
    /// Backoff bounds, ms.
    pub backoff_ms: [u64; 2],
    /// Registers whose connection the server closed at least once.
    pub dropped: u64,
    /// Drops in all (a register may be dropped again after it recovered).
    pub drops: u64,
    /// Registers that delivered their next document after their last drop.
    pub recovered: u64,
    /// Established registers that did not (still waiting, or never dropped).
    pub not_recovered: u64,
    /// Whether every established register was dropped and recovered.
    pub complete: bool,
    /// Wall-clock time of the first drop, Unix seconds.
    pub first_drop_unix_s: Option<f64>,
    /// Of the last drop.
    pub last_drop_unix_s: Option<f64>,
    /// Of the last recovery.
    pub last_recovery_unix_s: Option<f64>,
    /// From the first drop to the last recovery, seconds (`null` unless complete).
    pub all_recovered_after_s: Option<f64>,
    /// Connection attempts after drops.
    pub reconnect_attempts: u64,
    /// Failed attempts by kind.
    pub reconnect_errors: std::collections::BTreeMap<&'static str, u64>,
    /// Next documents that got no valid acknowledgment on a new connection (refused,
    /// timeout, mismatch); the register tried again.
    pub next_documents_failed: u64,
    /// Per recovery: drop → acknowledgment of the next document, µs.
    pub recovery_us: Percentiles,
    /// Connect (and handshake) time of the successful reconnects, µs.
    pub reconnect_connect_us: Percentiles,
}

/// What an idle run measured.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// Schema id.
    pub schema: &'static str,
    /// The configuration.
    pub config: serde_json::Value,
    /// Machine facts.
    pub environment: serde_json::Value,
    /// Connections established.
    pub established: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Failures by kind.
    pub connect_errors: std::collections::BTreeMap<&'static str, u64>,
    /// Connections the gateway closed during the run.
    pub closed_by_peer: u64,
    /// Connections still open when the hold ended.
    pub open_at_end: u64,
    /// From the first attempt to the last one finishing, seconds.
    pub time_to_plateau_s: f64,
    /// Achieved connection rate during the ramp.
    pub connect_rate: f64,
    /// Connect (and handshake) latency, µs.
    pub connect_latency_us: Percentiles,
    /// First documents acknowledged as required (`send_first`).
    pub first_documents_ok: u64,
    /// First documents that failed (mismatch, timeout, refusal).
    pub first_documents_failed: u64,
    /// When every attempt had finished, Unix seconds.
    pub connected_at_unix_s: f64,
    /// When every first document had been answered (= connected without `send_first`).
    pub plateau_at_unix_s: f64,
    /// This process's RSS before connecting, bytes.
    pub rss_before: Option<u64>,
    /// This process's RSS when every attempt had finished, bytes.
    pub rss_connected: Option<u64>,
    /// This process's RSS at the plateau, bytes.
    pub rss_at_plateau: Option<u64>,
    /// Client-side RSS per established connection, bytes (not the gateway's!).
    pub client_rss_per_connection: Option<f64>,
    /// Descriptors open at the plateau.
    pub fds_at_plateau: Option<u64>,
    /// Source addresses.
    pub sources: Vec<SourceStat>,
    /// The reconnect storm (`null` without `reconnect`).
    pub storm: Option<StormReport>,
}

impl IdleReport {
    /// Human summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "idle     established {} of {}, failed {}{}\n",
            self.established,
            self.established + self.failed,
            self.failed,
            kinds(&self.connect_errors)
        );
        s += &format!(
            "ramp     plateau after {:.2}s ({:.0} connections/s); connect p50 {} p99 {} max {}\n",
            self.time_to_plateau_s,
            self.connect_rate,
            crate::stats::fmt_us(self.connect_latency_us.p50 as f64),
            crate::stats::fmt_us(self.connect_latency_us.p99 as f64),
            crate::stats::fmt_us(self.connect_latency_us.max as f64),
        );
        s += &format!("hold     closed by gateway {}, open at end {}\n", self.closed_by_peer, self.open_at_end);
        if self.first_documents_ok + self.first_documents_failed > 0 {
            s +=
                &format!("first    documents ok {}, failed {}\n", self.first_documents_ok, self.first_documents_failed);
        }
        if let Some(st) = &self.storm {
            s += &format!(
                "storm    dropped {} ({} drops), recovered {}, not recovered {}{}\n",
                st.dropped,
                st.drops,
                st.recovered,
                st.not_recovered,
                st.all_recovered_after_s.map_or(String::new(), |t| format!(
                    "; every register delivered its next document {t:.2}s after the first drop"
                )),
            );
            s += &format!(
                "         reconnect attempts {}, failed{}, next documents failed {}; drop → ack p50 {} p99 {} max {}\n",
                st.reconnect_attempts,
                {
                    let k = kinds(&st.reconnect_errors);
                    if k.is_empty() { " 0".to_owned() } else { k }
                },
                st.next_documents_failed,
                crate::stats::fmt_us(st.recovery_us.p50 as f64),
                crate::stats::fmt_us(st.recovery_us.p99 as f64),
                crate::stats::fmt_us(st.recovery_us.max as f64),
            );
        }
        if let (Some(b), Some(p)) = (self.rss_before, self.rss_at_plateau) {
            s += &format!(
                "loadgen  RSS {:.1} MiB -> {:.1} MiB ({} per connection, client side), {} fds open\n",
                b as f64 / 1_048_576.0,
                p as f64 / 1_048_576.0,
                self.client_rss_per_connection.map_or("n/a".into(), |v| format!("{v:.0} B")),
                self.fds_at_plateau.map_or("n/a".into(), |v| v.to_string()),
            );
        }
        s
    }
}

fn kinds(m: &std::collections::BTreeMap<&'static str, u64>) -> String {
    let v: Vec<String> = m.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    if v.is_empty() { String::new() } else { format!(" ({})", v.join(", ")) }
}

/// Unix time now, seconds.
fn unix_now() -> f64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[derive(Debug, Default)]
struct IdleCounters {
    established: AtomicU64,
    failed: AtomicU64,
    errors: [AtomicU64; ConnectErrorKind::ALL.len()],
    closed: AtomicU64,
    /// Connections open now (established or re-established, minus drops).
    open: AtomicU64,
    attempts_done: AtomicU64,
    first_ok: AtomicU64,
    first_failed: AtomicU64,
    // storm
    dropped_registers: AtomicU64,
    pending: AtomicU64,
    recovered_registers: AtomicU64,
    reconnect_attempts: AtomicU64,
    reconnect_errors: [AtomicU64; ConnectErrorKind::ALL.len()],
    next_failed: AtomicU64,
}

/// One recovery: a register dropped at `dropped` delivered its next document at
/// `recovered` (Unix seconds) after `attempts` connection attempts.
#[derive(Debug, Clone, Copy)]
struct Recovery {
    register: u64,
    dropped: f64,
    recovered: f64,
    attempts: u32,
    took_us: u64,
    connect_us: u64,
}

#[derive(Debug, Default)]
struct StormLog {
    drops: Vec<f64>,
    recoveries: Vec<Recovery>,
}

/// Opens, holds and reports.
pub async fn idle(cfg: IdleConfig, cancel: CancellationToken) -> anyhow::Result<IdleReport> {
    crate::net::check_target(cfg.target)?;
    for ip in &cfg.sources {
        anyhow::ensure!(ip.octets()[0] == 127, "source address {ip} is not in 127.0.0.0/8");
    }
    anyhow::ensure!(cfg.connections > 0, "--connections must be at least 1");
    if let Some(r) = cfg.ramp_rate {
        anyhow::ensure!(
            (crate::run::MIN_RATE..=crate::run::MAX_RATE).contains(&r),
            "--ramp-rate must be between {} and {} connections per second",
            crate::run::MIN_RATE,
            crate::run::MAX_RATE
        );
    }
    anyhow::ensure!(cfg.hold <= crate::run::MAX_RUN, "--hold may be at most 30 days");
    anyhow::ensure!(
        cfg.timeout <= crate::run::MAX_WAIT && cfg.connect_timeout <= crate::run::MAX_WAIT,
        "timeouts may be at most one day"
    );
    if let Some(r) = &cfg.reconnect {
        anyhow::ensure!(
            r.backoff_min <= r.backoff_max && r.backoff_max <= crate::run::MAX_WAIT,
            "--reconnect-backoff: MIN must not exceed MAX (at most one day)"
        );
    }
    let pop = Population { count: cfg.connections, ..cfg.population.clone() };
    pop.validate()?;
    if cfg.transport.uses_fd_per_connection() {
        let limit = crate::sys::FileLimit::current().context("reading RLIMIT_NOFILE")?;
        limit.check_connections(cfg.connections, "connections").map_err(anyhow::Error::msg)?;
    }
    if matches!(cfg.transport, TransportKind::Tls | TransportKind::Quic) {
        anyhow::ensure!(!cfg.ca.is_empty(), "TLS and QUIC need --ca or --gateway-data-dir");
    }
    let sources = Arc::new(SourcePool::new(cfg.sources.clone()));
    match cfg.transport {
        TransportKind::Tcp => {
            let c = TcpConnector::new(cfg.target, sources);
            idle_with(c, cfg, pop, cancel).await
        }
        TransportKind::Tls => {
            let c = TlsConnector::new(cfg.target, sources, &cfg.ca, &cfg.server_name, false)?;
            idle_with(c, cfg, pop, cancel).await
        }
        TransportKind::Quic => {
            let c = QuicConnector::new(cfg.target, sources, &cfg.ca, &cfg.server_name, &cfg.quic)?;
            idle_with(c, cfg, pop, cancel).await
        }
    }
}

/// Writes the phase file atomically (temporary file, then rename).
fn write_phase(path: &Path, phase: &str, counters: &IdleCounters) -> anyhow::Result<()> {
    let v = serde_json::json!({
        "phase": phase,
        "pid": std::process::id(),
        "at_unix_s": unix_now(),
        "established": counters.established.load(Relaxed),
        "failed": counters.failed.load(Relaxed),
        "first_documents_ok": counters.first_ok.load(Relaxed),
        "first_documents_failed": counters.first_failed.load(Relaxed),
        "closed_by_peer": counters.closed.load(Relaxed),
        "recovered": counters.recovered_registers.load(Relaxed),
    });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{v}\n")).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Sleeps in small steps until `cond` holds, the deadline passes or `cancel` fires.
async fn wait_until(cancel: &CancellationToken, deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if cancel.is_cancelled() || Instant::now() >= deadline {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            () = cancel.cancelled() => {}
        }
    }
}

/// Shared state of one idle run.
struct Shared<C> {
    connector: C,
    cfg: IdleConfig,
    counters: IdleCounters,
    hist: Mutex<Recorder>,
    storm: Mutex<StormLog>,
}

#[allow(clippy::too_many_lines)]
async fn idle_with<C: Connector>(
    connector: C,
    cfg: IdleConfig,
    pop: Population,
    cancel: CancellationToken,
) -> anyhow::Result<IdleReport> {
    let sh = Arc::new(Shared {
        connector,
        cfg: cfg.clone(),
        counters: IdleCounters::default(),
        hist: Mutex::new(Recorder::default()),
        storm: Mutex::new(StormLog::default()),
    });
    let counters = || &sh.counters;
    let (release_tx, release_rx) = watch::channel(false);
    let rss_before = crate::sys::rss_bytes();
    let start = Instant::now();
    // when the first documents may go: at once (paced like the connects), or once the
    // wait file exists (then paced at the ramp rate from that moment, so that a hundred
    // thousand registers do not all send in the same millisecond)
    let (go_tx, go_rx) = watch::channel(cfg.wait_file.is_none().then_some(start));
    let mut tasks = tokio::task::JoinSet::new();
    let progress = progress_bar(cfg.progress);
    let status = |what: &str| {
        let c = counters();
        format!(
            "{what}: {} established, {} failed, {} first documents, {} closed by gateway, {} recovered",
            c.established.load(Relaxed),
            c.failed.load(Relaxed),
            c.first_ok.load(Relaxed) + c.first_failed.load(Relaxed),
            c.closed.load(Relaxed),
            c.recovered_registers.load(Relaxed),
        )
    };
    for i in 0..cfg.connections {
        if cancel.is_cancelled() {
            break;
        }
        if let Some(rate) = cfg.ramp_rate.filter(|r| *r > 0.0) {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = cancel.cancelled() => break,
            }
        }
        if let Some(b) = &progress
            && i % 256 == 0
        {
            b.set_message(status("connecting"));
        }
        let (sh, release, go) = (sh.clone(), release_rx.clone(), go_rx.clone());
        let index = pop.first + i;
        let seed = pop.seed;
        let mix = pop.mix.clone();
        tasks.spawn(async move { register_task(sh, seed, i, index, mix, go, release).await });
    }
    // phase 1: every attempt finished
    let far = Instant::now() + cfg.hold + Duration::from_secs(86_400);
    wait_until(&cancel, far, || {
        if let Some(b) = &progress {
            b.set_message(status("connecting"));
        }
        counters().attempts_done.load(Relaxed) >= cfg.connections
    })
    .await;
    let connected = start.elapsed();
    let connected_at_unix_s = unix_now();
    let rss_connected = crate::sys::rss_bytes();
    if let Some(p) = &cfg.ready_file {
        write_phase(p, "connected", counters())?;
    }
    // phase 2: first documents (after the wait file, if any)
    let hold_deadline = Instant::now() + cfg.hold;
    // without the wait file before the hold ends, no first documents are sent
    let mut go = cfg.wait_file.is_none();
    if let Some(w) = &cfg.wait_file
        && wait_until(&cancel, hold_deadline, || w.exists()).await
    {
        let _ = go_tx.send(Some(Instant::now()));
        go = true;
    }
    if cfg.send_first && go {
        wait_until(&cancel, far, || {
            if let Some(b) = &progress {
                b.set_message(status("first documents"));
            }
            let c = counters();
            c.first_ok.load(Relaxed) + c.first_failed.load(Relaxed) >= c.established.load(Relaxed)
        })
        .await;
    }
    let plateau_at_unix_s = if cfg.send_first { unix_now() } else { connected_at_unix_s };
    let rss_at_plateau = crate::sys::rss_bytes();
    let fds_at_plateau = crate::sys::open_fds();
    if let Some(p) = &cfg.ready_file {
        write_phase(p, "plateau", counters())?;
    }
    // hold (ends early when a reconnect storm is complete)
    let storm_complete = || {
        let c = counters();
        let est = c.established.load(Relaxed);
        est > 0 && c.dropped_registers.load(Relaxed) >= est && c.pending.load(Relaxed) == 0
    };
    let hold_end = Instant::now().max(hold_deadline);
    loop {
        if cfg.reconnect.is_some() && storm_complete() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(hold_end) => break,
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if let Some(b) = &progress {
            b.set_message(format!(
                "{}, {:.0}s left",
                status("holding"),
                hold_end.saturating_duration_since(Instant::now()).as_secs_f64()
            ));
        }
    }
    let established = counters().established.load(Relaxed);
    let closed = counters().closed.load(Relaxed);
    let pending_at_end = counters().pending.load(Relaxed);
    let open_at_end = counters().open.load(Relaxed);
    let _ = release_tx.send(true);
    let drain =
        tokio::time::timeout(Duration::from_secs(10), async { while tasks.join_next().await.is_some() {} }).await;
    if drain.is_err() {
        tasks.abort_all();
    }
    if let Some(b) = progress {
        b.finish_and_clear();
    }
    if let Some(p) = &cfg.ready_file {
        write_phase(p, "done", counters())?;
    }
    let connect = {
        let g = sh.hist.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Percentiles::of(&g.connect)
    };
    let per_conn = match (rss_before, rss_at_plateau) {
        (Some(b), Some(p)) if established > 0 => Some(p.saturating_sub(b) as f64 / established as f64),
        _ => None,
    };
    let storm = match &cfg.reconnect {
        Some(r) => Some(storm_report(&sh, r, established, pending_at_end)?),
        None => None,
    };
    let c = counters();
    Ok(IdleReport {
        schema: "loadgen.idle/1",
        config: serde_json::json!({
            "target": cfg.target.to_string(),
            "transport": cfg.transport.name(),
            "connections": cfg.connections,
            "first_register": cfg.population.first,
            "seed": cfg.population.seed,
            "fd_start": cfg.fd_start,
            "ramp_rate": cfg.ramp_rate,
            "hold_s": cfg.hold.as_secs_f64(),
            "send_first": cfg.send_first,
            "connect_timeout_ms": cfg.connect_timeout.as_millis() as u64,
            "timeout_ms": cfg.timeout.as_millis() as u64,
            "quic_keep_alive_ms": cfg.quic.keep_alive.map(|d| d.as_millis() as u64),
            "reconnect": cfg.reconnect.map(|r| serde_json::json!({
                "backoff_min_ms": r.backoff_min.as_millis() as u64,
                "backoff_max_ms": r.backoff_max.as_millis() as u64,
            })),
            "source_ips": if cfg.sources.is_empty() {
                serde_json::json!("auto")
            } else {
                serde_json::json!(cfg.sources.iter().map(ToString::to_string).collect::<Vec<_>>())
            },
        }),
        environment: crate::run::environment(0, None),
        established,
        failed: c.failed.load(Relaxed),
        connect_errors: ConnectErrorKind::ALL.iter().map(|k| (k.name(), c.errors[k.index()].load(Relaxed))).collect(),
        closed_by_peer: closed,
        open_at_end,
        time_to_plateau_s: connected.as_secs_f64(),
        connect_rate: if connected.as_secs_f64() > 0.0 {
            (established + c.failed.load(Relaxed)) as f64 / connected.as_secs_f64()
        } else {
            0.0
        },
        connect_latency_us: connect,
        first_documents_ok: c.first_ok.load(Relaxed),
        first_documents_failed: c.first_failed.load(Relaxed),
        connected_at_unix_s,
        plateau_at_unix_s,
        rss_before,
        rss_connected,
        rss_at_plateau,
        client_rss_per_connection: per_conn,
        fds_at_plateau,
        sources: sh.connector.sources(),
        storm,
    })
}

fn storm_report<C>(
    sh: &Shared<C>,
    r: &Reconnect,
    established: u64,
    pending_at_end: u64,
) -> anyhow::Result<StormReport> {
    let c = &sh.counters;
    let log = sh.storm.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut rec = Recorder::default();
    for e in &log.recoveries {
        rec.uncorrected.saturating_record(e.took_us.max(1));
        rec.connect.saturating_record(e.connect_us.max(1));
    }
    let dropped = c.dropped_registers.load(Relaxed);
    let recovered_now = dropped.saturating_sub(pending_at_end);
    let complete = established > 0 && dropped >= established && pending_at_end == 0;
    let first_drop = log.drops.iter().copied().reduce(f64::min);
    let last_recovery = log.recoveries.iter().map(|e| e.recovered).reduce(f64::max);
    if let Some(p) = &sh.cfg.storm_csv {
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?);
        writeln!(f, "register,dropped_at_unix_s,recovered_at_unix_s,attempts,recovery_us,connect_us")?;
        for e in &log.recoveries {
            writeln!(
                f,
                "{},{:.6},{:.6},{},{},{}",
                e.register, e.dropped, e.recovered, e.attempts, e.took_us, e.connect_us
            )?;
        }
        f.flush()?;
    }
    Ok(StormReport {
        backoff_ms: [r.backoff_min.as_millis() as u64, r.backoff_max.as_millis() as u64],
        dropped,
        drops: log.drops.len() as u64,
        recovered: recovered_now,
        not_recovered: established.saturating_sub(recovered_now),
        complete,
        first_drop_unix_s: first_drop,
        last_drop_unix_s: log.drops.iter().copied().reduce(f64::max),
        last_recovery_unix_s: last_recovery,
        all_recovered_after_s: match (complete, first_drop, last_recovery) {
            (true, Some(a), Some(b)) => Some(((b - a) * 1e6).round() / 1e6),
            _ => None,
        },
        reconnect_attempts: c.reconnect_attempts.load(Relaxed),
        reconnect_errors: ConnectErrorKind::ALL
            .iter()
            .map(|k| (k.name(), c.reconnect_errors[k.index()].load(Relaxed)))
            .collect(),
        next_documents_failed: c.next_failed.load(Relaxed),
        recovery_us: Percentiles::of(&rec.uncorrected),
        reconnect_connect_us: Percentiles::of(&rec.connect),
    })
}

/// One register: connect, (first document,) hold; with `reconnect`, come back after every
/// drop and deliver the next document.
async fn register_task<C: Connector>(
    sh: Arc<Shared<C>>,
    seed: u64,
    ordinal: u64,
    index: u64,
    mix: crate::registers::FfdMix,
    mut go: watch::Receiver<Option<Instant>>,
    mut release: watch::Receiver<bool>,
) {
    let c = &sh.counters;
    let cfg = &sh.cfg;
    let t = Instant::now();
    let mut conn = match sh.connector.connect(t + cfg.connect_timeout).await {
        Ok(conn) => {
            c.established.fetch_add(1, Relaxed);
            c.open.fetch_add(1, Relaxed);
            let d = us(t.elapsed());
            sh.hist.lock().unwrap_or_else(std::sync::PoisonError::into_inner).connect.saturating_record(d);
            c.attempts_done.fetch_add(1, Relaxed);
            conn
        }
        Err(e) => {
            c.failed.fetch_add(1, Relaxed);
            c.errors[e.kind.index()].fetch_add(1, Relaxed);
            c.attempts_done.fetch_add(1, Relaxed);
            return;
        }
    };
    let needs_docs = cfg.send_first || cfg.reconnect.is_some();
    let reg = RegisterIdentity::derive(seed, index, &mix).ok();
    let plan = DocPlan { fd_start: cfg.fd_start, ..DocPlan::default() };
    let mut docs = match (&reg, needs_docs) {
        (Some(r), true) => Some(DocStream::new(seed, r, crate::registers::DEFAULT_OFD_INN, plan)),
        _ => None,
    };
    if cfg.send_first {
        let go_at = tokio::select! {
            g = go.wait_for(Option::is_some) => g.ok().and_then(|g| *g),
            _ = release.wait_for(|r| *r) => None,
        };
        let Some(go_at) = go_at else {
            conn.close().await;
            return;
        };
        if let Some(rate) = cfg.ramp_rate.filter(|r| *r > 0.0) {
            let at = go_at + Duration::from_secs_f64(ordinal as f64 / rate);
            let released = tokio::select! {
                () = tokio::time::sleep_until(at) => false,
                _ = release.wait_for(|r| *r) => true,
            };
            if released {
                conn.close().await;
                return;
            }
        }
        let ok = match (&reg, docs.as_mut()) {
            (Some(r), Some(d)) => match next_ackable(d) {
                Some(doc) => deliver(&mut conn, r, &doc, cfg.timeout).await.is_ok(),
                None => false,
            },
            _ => false,
        };
        let n = if ok { &c.first_ok } else { &c.first_failed };
        n.fetch_add(1, Relaxed);
    }
    let mut ever_dropped = false;
    loop {
        let released = tokio::select! {
            () = conn.closed() => false,
            _ = release.wait_for(|r| *r) => true,
        };
        if released {
            conn.close().await;
            return;
        }
        c.closed.fetch_add(1, Relaxed);
        c.open.fetch_sub(1, Relaxed);
        let (Some(rc), Some(reg), Some(docs)) = (cfg.reconnect, &reg, docs.as_mut()) else { return };
        let dropped_at = Instant::now();
        let dropped_unix = unix_now();
        if !ever_dropped {
            ever_dropped = true;
            c.dropped_registers.fetch_add(1, Relaxed);
        }
        c.pending.fetch_add(1, Relaxed);
        sh.storm.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drops.push(dropped_unix);
        let Some(doc) = next_ackable(docs) else { return };
        let mut attempt: u32 = 0;
        let mut rng = rand::rngs::SmallRng::from_rng(&mut rand::rng());
        conn = loop {
            let wait = rc.wait(attempt, &mut rng);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = release.wait_for(|r| *r) => return,
            }
            c.reconnect_attempts.fetch_add(1, Relaxed);
            let t = Instant::now();
            let connected = tokio::select! {
                r = sh.connector.connect(t + cfg.connect_timeout) => r,
                _ = release.wait_for(|r| *r) => return,
            };
            let mut fresh = match connected {
                Ok(x) => x,
                Err(e) => {
                    c.reconnect_errors[e.kind.index()].fetch_add(1, Relaxed);
                    continue;
                }
            };
            let connect_us = us(t.elapsed());
            let delivered = tokio::select! {
                r = deliver(&mut fresh, reg, &doc, cfg.timeout) => r,
                _ = release.wait_for(|r| *r) => return,
            };
            if delivered.is_err() {
                c.next_failed.fetch_add(1, Relaxed);
                fresh.close().await;
                continue;
            }
            let recovered = unix_now();
            c.open.fetch_add(1, Relaxed);
            c.pending.fetch_sub(1, Relaxed);
            c.recovered_registers.fetch_add(1, Relaxed);
            sh.storm.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recoveries.push(Recovery {
                register: index,
                dropped: dropped_unix,
                recovered,
                attempts: attempt,
                took_us: us(dropped_at.elapsed()),
                connect_us,
            });
            break fresh;
        };
    }
}

/// The next document that must be acknowledged (skips injected faults; there are none
/// with the default plan).
fn next_ackable(docs: &mut DocStream) -> Option<Doc> {
    loop {
        let d = docs.next_doc()?;
        if matches!(d.expect, Outcome::Ack(_)) {
            return Some(d);
        }
    }
}

/// Sends `doc` and verifies its acknowledgment.
async fn deliver<K: Conn>(conn: &mut K, reg: &RegisterIdentity, doc: &Doc, timeout: Duration) -> Result<(), ()> {
    let Outcome::Ack(code) = doc.expect else { return Err(()) };
    match conn.exchange(&doc.message, Instant::now() + timeout).await {
        Ok(reply) => {
            verify_reply(reply, &Expected { fn_number: reg.fn_number, fd: doc.fd, code }).map(|_| ()).map_err(|_| ())
        }
        Err(ExchangeError::Timeout | ExchangeError::Refused | ExchangeError::Truncated(_))
        | Err(ExchangeError::TooLarge | ExchangeError::Io(_)) => Err(()),
    }
}

fn progress_bar(enabled: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal as _;
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new_spinner();
    b.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    b.enable_steady_tick(Duration::from_millis(250));
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_exponential_and_capped() {
        let r = Reconnect { backoff_min: Duration::from_millis(100), backoff_max: Duration::from_secs(1) };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for attempt in 0..30 {
            let cap = Duration::from_millis(100 * (1u64 << attempt.min(10))).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(r.wait(attempt, &mut rng) <= cap, "attempt {attempt}");
            }
        }
        // jitter: not always the cap
        let waits: Vec<Duration> = (0..50).map(|_| r.wait(5, &mut rng)).collect();
        assert!(waits.iter().any(|w| *w < Duration::from_millis(900)));
        let zero = Reconnect { backoff_min: Duration::ZERO, backoff_max: Duration::ZERO };
        assert_eq!(zero.wait(3, &mut rng), Duration::ZERO);
    }
}
