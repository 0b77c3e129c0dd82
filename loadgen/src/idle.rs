//! Connection-scale tests: open N connections at a ramp rate, optionally send one
//! document on each (so the gateway knows who is connected), then hold them all for a
//! while and count who the gateway closed.
//!
//! Each TCP or TLS connection is a file descriptor, and this process may open at most
//! `RLIMIT_NOFILE` (20,000 on the build machines, not raisable); a larger count is refused
//! with the number of processes it needs. QUIC connections share one UDP socket per source
//! address, so they are bounded by memory instead.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::Context as _;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::docs::{DocPlan, DocStream, Outcome};
use crate::registers::{Population, RegisterIdentity};
use crate::stats::{ConnectErrorKind, Percentiles, Recorder, us};
use crate::transport::quic::{QuicConnector, QuicOptions};
use crate::transport::tcp::TcpConnector;
use crate::transport::tls::TlsConnector;
use crate::transport::{Conn, Connector, SourcePool, TransportKind};
use crate::verify::{Expected, verify_reply};

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
    /// New connections per second (unlimited if `None`).
    pub ramp_rate: Option<f64>,
    /// How long to hold after the last connection attempt.
    pub hold: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Send one document (an open-shift report) on each connection and verify its ack.
    pub send_first: bool,
    /// Reply timeout for that document.
    pub timeout: Duration,
    /// QUIC options (keep-alive is what holds QUIC connections past the idle timeout).
    pub quic: QuicOptions,
    /// Progress line on stderr (terminal only).
    pub progress: bool,
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
    /// This process's RSS before connecting, bytes.
    pub rss_before: Option<u64>,
    /// This process's RSS at the plateau, bytes.
    pub rss_at_plateau: Option<u64>,
    /// Client-side RSS per established connection, bytes (not the gateway's!).
    pub client_rss_per_connection: Option<f64>,
    /// Descriptors open at the plateau.
    pub fds_at_plateau: Option<u64>,
    /// Source addresses.
    pub sources: Vec<crate::stats::SourceStat>,
}

impl IdleReport {
    /// Human summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "idle     established {} of {}, failed {}{}\n",
            self.established,
            self.established + self.failed,
            self.failed,
            if self.failed > 0 {
                format!(
                    " ({})",
                    self.connect_errors
                        .iter()
                        .filter(|(_, n)| **n > 0)
                        .map(|(k, n)| format!("{k} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                String::new()
            }
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

#[derive(Debug, Default)]
struct IdleCounters {
    established: AtomicU64,
    failed: AtomicU64,
    errors: [AtomicU64; ConnectErrorKind::ALL.len()],
    closed: AtomicU64,
    attempts_done: AtomicU64,
    first_ok: AtomicU64,
    first_failed: AtomicU64,
}

/// Opens, holds and reports.
pub async fn idle(cfg: IdleConfig, cancel: CancellationToken) -> anyhow::Result<IdleReport> {
    crate::net::check_target(cfg.target)?;
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

#[allow(clippy::too_many_lines)]
async fn idle_with<C: Connector>(
    connector: C,
    cfg: IdleConfig,
    pop: Population,
    cancel: CancellationToken,
) -> anyhow::Result<IdleReport> {
    let connector = Arc::new(connector);
    let counters = Arc::new(IdleCounters::default());
    let hist = Arc::new(std::sync::Mutex::new(Recorder::default()));
    let (release_tx, release_rx) = watch::channel(false);
    let rss_before = crate::sys::rss_bytes();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let progress = progress_bar(cfg.progress);
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
            b.set_message(format!(
                "connecting: {} established, {} failed, {} closed by gateway",
                counters.established.load(Relaxed),
                counters.failed.load(Relaxed),
                counters.closed.load(Relaxed)
            ));
        }
        let (connector, counters, hist, mut release, cfg2) =
            (connector.clone(), counters.clone(), hist.clone(), release_rx.clone(), cfg.clone());
        let seed = pop.seed;
        let index = pop.first + i;
        let mix = pop.mix.clone();
        tasks.spawn(async move {
            let t = Instant::now();
            let conn = connector.connect(t + cfg2.connect_timeout).await;
            let mut conn = match conn {
                Ok(c) => {
                    counters.established.fetch_add(1, Relaxed);
                    let d = us(t.elapsed());
                    hist.lock().unwrap_or_else(std::sync::PoisonError::into_inner).connect.saturating_record(d);
                    counters.attempts_done.fetch_add(1, Relaxed);
                    c
                }
                Err(e) => {
                    counters.failed.fetch_add(1, Relaxed);
                    counters.errors[e.kind.index()].fetch_add(1, Relaxed);
                    counters.attempts_done.fetch_add(1, Relaxed);
                    return;
                }
            };
            if cfg2.send_first {
                let ok = first_document(&mut conn, seed, index, &mix, cfg2.timeout).await;
                let c = if ok { &counters.first_ok } else { &counters.first_failed };
                c.fetch_add(1, Relaxed);
            }
            tokio::select! {
                () = conn.closed() => {
                    counters.closed.fetch_add(1, Relaxed);
                    return;
                }
                _ = release.wait_for(|r| *r) => {}
            }
            conn.close().await;
        });
    }
    // plateau: every attempt finished
    while counters.attempts_done.load(Relaxed) < cfg.connections && !cancel.is_cancelled() {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            () = cancel.cancelled() => {}
        }
        if let Some(b) = &progress {
            b.set_message(format!(
                "connecting: {} established, {} failed, {} closed by gateway",
                counters.established.load(Relaxed),
                counters.failed.load(Relaxed),
                counters.closed.load(Relaxed)
            ));
        }
    }
    let plateau = start.elapsed();
    let rss_at_plateau = crate::sys::rss_bytes();
    let fds_at_plateau = crate::sys::open_fds();
    let hold_end = Instant::now() + cfg.hold;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(hold_end) => break,
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if let Some(b) = &progress {
            b.set_message(format!(
                "holding: {} open, {} closed by gateway, {:.0}s left",
                counters.established.load(Relaxed)
                    - counters.closed.load(Relaxed).min(counters.established.load(Relaxed)),
                counters.closed.load(Relaxed),
                hold_end.saturating_duration_since(Instant::now()).as_secs_f64()
            ));
        }
    }
    let established = counters.established.load(Relaxed);
    let closed = counters.closed.load(Relaxed);
    let _ = release_tx.send(true);
    let drain =
        tokio::time::timeout(Duration::from_secs(10), async { while tasks.join_next().await.is_some() {} }).await;
    if drain.is_err() {
        tasks.abort_all();
    }
    if let Some(b) = progress {
        b.finish_and_clear();
    }
    let connect = {
        let g = hist.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Percentiles::of(&g.connect)
    };
    let per_conn = match (rss_before, rss_at_plateau) {
        (Some(b), Some(p)) if established > 0 => Some(p.saturating_sub(b) as f64 / established as f64),
        _ => None,
    };
    Ok(IdleReport {
        schema: "loadgen.idle/1",
        config: serde_json::json!({
            "target": cfg.target.to_string(),
            "transport": cfg.transport.name(),
            "connections": cfg.connections,
            "first_register": cfg.population.first,
            "seed": cfg.population.seed,
            "ramp_rate": cfg.ramp_rate,
            "hold_s": cfg.hold.as_secs_f64(),
            "send_first": cfg.send_first,
            "connect_timeout_ms": cfg.connect_timeout.as_millis() as u64,
            "quic_keep_alive_ms": cfg.quic.keep_alive.map(|d| d.as_millis() as u64),
            "source_ips": if cfg.sources.is_empty() {
                serde_json::json!("auto")
            } else {
                serde_json::json!(cfg.sources.iter().map(ToString::to_string).collect::<Vec<_>>())
            },
        }),
        environment: crate::run::environment(0, None),
        established,
        failed: counters.failed.load(Relaxed),
        connect_errors: ConnectErrorKind::ALL
            .iter()
            .map(|k| (k.name(), counters.errors[k.index()].load(Relaxed)))
            .collect(),
        closed_by_peer: closed,
        open_at_end: established.saturating_sub(closed),
        time_to_plateau_s: plateau.as_secs_f64(),
        connect_rate: if plateau.as_secs_f64() > 0.0 {
            (established + counters.failed.load(Relaxed)) as f64 / plateau.as_secs_f64()
        } else {
            0.0
        },
        connect_latency_us: connect,
        first_documents_ok: counters.first_ok.load(Relaxed),
        first_documents_failed: counters.first_failed.load(Relaxed),
        rss_before,
        rss_at_plateau,
        client_rss_per_connection: per_conn,
        fds_at_plateau,
        sources: connector.sources(),
    })
}

async fn first_document<K: Conn>(
    conn: &mut K,
    seed: u64,
    index: u64,
    mix: &crate::registers::FfdMix,
    timeout: Duration,
) -> bool {
    let Ok(reg) = RegisterIdentity::derive(seed, index, mix) else {
        return false;
    };
    let mut docs = DocStream::new(seed, &reg, crate::registers::DEFAULT_OFD_INN, DocPlan::default());
    let Some(doc) = docs.next_doc() else {
        return false;
    };
    let Outcome::Ack(code) = doc.expect else {
        return false;
    };
    match conn.exchange(&doc.message, Instant::now() + timeout).await {
        Ok(reply) => verify_reply(reply, &Expected { fn_number: reg.fn_number, fd: doc.fd, code }).is_ok(),
        Err(_) => false,
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
