//! The scheduler: one task per register, open or closed loop, persistent or per-document
//! connections.
//!
//! **Open loop** (`--rate R`): register `i` of `N` sends every `N/R` seconds, its first
//! send `i/R` after the common start, so the population offers `R` documents per second
//! whatever the gateway does. Registers never pipeline (a real FN waits for each
//! acknowledgment), so when a reply is slow the next send of that register starts late;
//! the corrected latency is measured from the *intended* send time and therefore includes
//! that wait — the queueing a register experiences is not hidden (coordinated omission).
//! The uncorrected latency is measured from the actual send. Sends that start more than
//! `--late-threshold` late are counted, and scheduled sends that never happened before
//! the end are counted as `unsent`.
//!
//! **Closed loop** (`--closed`): each register sends its next document as soon as the
//! previous one is acknowledged (plus `--think-time`); this finds the maximum throughput,
//! and its latency cannot be corrected (there is no intended time).
//!
//! **Persistent** sessions connect once (paced by `--ramp-rate`) before the load starts,
//! and reconnect only after the gateway closed the connection. **Per-document** sessions
//! connect, send, wait for the acknowledgment and close for every document, like most
//! registers in the field; their latencies include the connect and handshake.
//!
//! After a timeout the register sends the same message again (up to `--max-resends`), on
//! a new connection for TCP/TLS and a new stream for QUIC. The reply to the timed-out
//! attempt is still awaited in the background for `--late-window`; when both arrive they
//! must be byte-identical (`ack_changed` otherwise). `--duplicates P` re-sends a share of
//! acknowledged documents on purpose, with the same check.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::docs::{Doc, DocKind, DocPlan, DocStream, Outcome};
use crate::registers::{Population, RegisterIdentity};
use crate::stats::{Latencies, Percentiles, Rates, Report, SCHEMA, Stats, Threshold, Timing, Verdict, us};
use crate::transport::quic::{QuicConnector, QuicOptions};
use crate::transport::tcp::TcpConnector;
use crate::transport::tls::TlsConnector;
use crate::transport::{Conn, Connector, ExchangeError, SourcePool, TransportKind};
use crate::verify::{Expected, MismatchKind, verify_reply};

/// Smallest and largest accepted rates (documents or connections per second).
pub const MIN_RATE: f64 = 0.001;
/// See [`MIN_RATE`].
pub const MAX_RATE: f64 = 100_000_000.0;
/// Longest run (`--duration`, `--hold`).
pub const MAX_RUN: Duration = Duration::from_secs(30 * 86_400);
/// Longest single wait (timeouts, think time).
pub const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// How registers use connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// One long-lived connection per register, many sequential exchanges.
    Persistent,
    /// Connect, send, wait for the acknowledgment, close — for every document.
    PerDocument,
}

impl Behaviour {
    /// Name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Persistent => "persistent",
            Self::PerDocument => "per-document",
        }
    }
}

/// Load model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum LoadModel {
    /// A target rate in documents per second, for the whole population.
    Open {
        /// Documents per second.
        rate: f64,
    },
    /// As fast as acknowledgments come back.
    Closed,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Gateway listener (loopback only).
    pub target: SocketAddr,
    /// Transport.
    pub transport: TransportKind,
    /// Trusted certificates (TLS, QUIC).
    pub ca: Vec<CertificateDer<'static>>,
    /// Where the CA came from (for the report).
    pub ca_source: Option<String>,
    /// TLS server name.
    pub server_name: String,
    /// Allow TLS session resumption (off: every handshake is a full one).
    pub tls_resumption: bool,
    /// Source addresses (empty: the kernel chooses).
    pub sources: Vec<Ipv4Addr>,
    /// Which registers.
    pub population: Population,
    /// Document sequence.
    pub plan: DocPlan,
    /// Operator INN in registration reports.
    pub ofd_inn: String,
    /// Connection behaviour.
    pub behaviour: Behaviour,
    /// Load model.
    pub load: LoadModel,
    /// Length of the load phase (after the connect phase).
    pub duration: Duration,
    /// Start of the load phase excluded from histograms and the achieved rate.
    pub warmup: Duration,
    /// Stop each register after this many documents.
    pub docs_per_register: Option<u64>,
    /// Reply timeout per exchange.
    pub timeout: Duration,
    /// Connect (and handshake) timeout.
    pub connect_timeout: Duration,
    /// Open loop: a send later than this after its intended time counts as late.
    pub late_threshold: Duration,
    /// How long a timed-out exchange is still awaited in the background.
    pub late_window: Duration,
    /// Resends after timeouts before a document is given up.
    pub max_resends: u32,
    /// Share of acknowledged documents sent again on purpose.
    pub duplicates: f64,
    /// Persistent sessions: new connections per second in the connect phase.
    pub ramp_rate: Option<f64>,
    /// Closed loop: pause between an acknowledgment and the next document.
    pub think_time: Duration,
    /// QUIC options.
    pub quic: QuicOptions,
    /// Histogram shards.
    pub shards: usize,
    /// Runtime worker threads (reported only).
    pub threads: usize,
    /// Show a live progress line on stderr (only if it is a terminal).
    pub progress: bool,
    /// Thresholds to judge.
    pub thresholds: Vec<Threshold>,
    /// Mismatches tolerated before the verdict fails.
    pub max_mismatches: u64,
}

impl RunConfig {
    /// Defaults for `target`, suitable for tests; callers override what they need.
    pub fn new(target: SocketAddr, transport: TransportKind, population: Population) -> Self {
        Self {
            target,
            transport,
            ca: Vec::new(),
            ca_source: None,
            server_name: "localhost".into(),
            tls_resumption: false,
            sources: Vec::new(),
            population,
            plan: DocPlan::default(),
            ofd_inn: crate::registers::DEFAULT_OFD_INN.into(),
            behaviour: Behaviour::Persistent,
            load: LoadModel::Closed,
            duration: Duration::from_secs(2),
            warmup: Duration::ZERO,
            docs_per_register: None,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            late_threshold: Duration::from_millis(2),
            late_window: Duration::from_secs(5),
            max_resends: 2,
            duplicates: 0.0,
            ramp_rate: None,
            think_time: Duration::ZERO,
            quic: QuicOptions::default(),
            shards: 16,
            threads: 1,
            progress: false,
            thresholds: Vec::new(),
            max_mismatches: 0,
        }
    }

    /// Checks what can be checked before connecting.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::net::check_target(self.target)?;
        for ip in &self.sources {
            anyhow::ensure!(ip.octets()[0] == 127, "source address {ip} is not in 127.0.0.0/8");
        }
        self.population.validate()?;
        if let LoadModel::Open { rate } = self.load {
            anyhow::ensure!(
                (MIN_RATE..=MAX_RATE).contains(&rate),
                "--rate must be between {MIN_RATE} and {MAX_RATE} documents per second"
            );
        }
        if let Some(r) = self.ramp_rate {
            anyhow::ensure!(
                (MIN_RATE..=MAX_RATE).contains(&r),
                "--ramp-rate must be between {MIN_RATE} and {MAX_RATE} connections per second"
            );
        }
        for (name, d, max) in [
            ("--duration", self.duration, MAX_RUN),
            ("--timeout", self.timeout, MAX_WAIT),
            ("--connect-timeout", self.connect_timeout, MAX_WAIT),
            ("--late-window", self.late_window, MAX_WAIT),
            ("--think-time", self.think_time, MAX_WAIT),
        ] {
            anyhow::ensure!(d <= max, "{name} may be at most {}", humantime::format_duration(max));
        }
        anyhow::ensure!(self.max_resends <= 100, "--max-resends may be at most 100");
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.duplicates) && (0.0..=1.0).contains(&self.plan.malformed_share),
            "--duplicates and --malformed are shares between 0 and 1"
        );
        anyhow::ensure!(self.warmup < self.duration, "--warmup must be shorter than --duration");
        anyhow::ensure!(!self.timeout.is_zero(), "--timeout must be positive");
        if matches!(self.transport, TransportKind::Tls | TransportKind::Quic) {
            anyhow::ensure!(
                !self.ca.is_empty(),
                "{} needs a CA: --ca FILE, or --gateway-data-dir DIR for the gateway's \
                 development certificate (DIR/tls/dev-cert.pem)",
                self.transport.name()
            );
        }
        if self.transport.uses_fd_per_connection() {
            let limit = crate::sys::FileLimit::current().context("reading RLIMIT_NOFILE")?;
            limit
                .check_connections(self.population.count, "registers (one connection each)")
                .map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }

    /// The configuration as echoed in the report.
    pub fn echo(&self) -> serde_json::Value {
        let (model, rate) = match self.load {
            LoadModel::Open { rate } => ("open", Some(rate)),
            LoadModel::Closed => ("closed", None),
        };
        serde_json::json!({
            "target": self.target.to_string(),
            "transport": self.transport.name(),
            "server_name": self.server_name,
            "ca": self.ca_source,
            "tls_resumption": self.tls_resumption,
            "source_ips": if self.sources.is_empty() {
                serde_json::json!("auto")
            } else {
                serde_json::json!(self.sources.iter().map(ToString::to_string).collect::<Vec<_>>())
            },
            "seed": self.population.seed,
            "first_register": self.population.first,
            "registers": self.population.count,
            "ffd_mix": self.population.mix.describe(),
            "behaviour": self.behaviour.name(),
            "load_model": model,
            "rate": rate,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "docs_per_register": self.docs_per_register,
            "timeout_ms": self.timeout.as_millis() as u64,
            "connect_timeout_ms": self.connect_timeout.as_millis() as u64,
            "late_threshold_us": us(self.late_threshold),
            "late_window_ms": self.late_window.as_millis() as u64,
            "max_resends": self.max_resends,
            "duplicates": self.duplicates,
            "malformed": self.plan.malformed_share,
            "faults": self.plan.faults.iter().map(|f| f.name()).collect::<Vec<_>>(),
            "receipts_per_shift": [self.plan.receipts_per_shift.0, self.plan.receipts_per_shift.1],
            "fd_start": self.plan.fd_start,
            "clock": self.plan.clock,
            "ramp_rate": self.ramp_rate,
            "think_time_ms": self.think_time.as_millis() as u64,
            "quic_keep_alive_ms": self.quic.keep_alive.map(|d| d.as_millis() as u64),
            "threads": self.threads,
            "max_mismatches": self.max_mismatches,
        })
    }
}

/// Runs the load and returns the judged report. `cancel` ends the load early (Ctrl-C);
/// what was measured until then is reported.
pub async fn run(cfg: RunConfig, cancel: CancellationToken) -> anyhow::Result<Report> {
    cfg.validate()?;
    let sources = Arc::new(SourcePool::new(cfg.sources.clone()));
    match cfg.transport {
        TransportKind::Tcp => {
            let c = TcpConnector::new(cfg.target, sources);
            run_with(c, cfg, cancel).await
        }
        TransportKind::Tls => {
            let c = TlsConnector::new(cfg.target, sources, &cfg.ca, &cfg.server_name, cfg.tls_resumption)?;
            run_with(c, cfg, cancel).await
        }
        TransportKind::Quic => {
            let c = QuicConnector::new(cfg.target, sources, &cfg.ca, &cfg.server_name, &cfg.quic)?;
            let endpoints = c.endpoints().to_vec();
            let r = run_with(c, cfg, cancel).await;
            for ep in endpoints {
                ep.close(0u32.into(), b"done");
                let _ = tokio::time::timeout(Duration::from_secs(1), ep.wait_idle()).await;
            }
            r
        }
    }
}

/// Shared state of a run.
struct Ctx<C: Connector> {
    connector: C,
    pacer: Option<crate::pacer::Pacer>,
    cfg: RunConfig,
    stats: Stats,
    tracker: TaskTracker,
    cancel: CancellationToken,
    start: Instant,
    last_done: Mutex<Instant>,
    last_connect_error: Mutex<Option<String>>,
}

/// Window of one load phase.
#[derive(Debug, Clone, Copy)]
struct Window {
    t0: Instant,
    measure_from: Instant,
    end: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.end
    }
}

/// What happened to a document.
enum Sent {
    /// It went out (whatever the answer).
    Yes,
    /// No connection: the register keeps it for its next slot.
    NoConnection(Doc),
}

struct Ready {
    n: AtomicU64,
    notify: Notify,
}

async fn run_with<C: Connector>(connector: C, cfg: RunConfig, cancel: CancellationToken) -> anyhow::Result<Report> {
    let started_at =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let start = Instant::now();
    let count = cfg.population.count;
    let pacer = match cfg.load {
        LoadModel::Open { .. } => Some(crate::pacer::Pacer::start().context("starting the pacer thread")?),
        LoadModel::Closed => None,
    };
    let ctx = Arc::new(Ctx {
        connector,
        pacer,
        stats: Stats::new(cfg.shards),
        tracker: TaskTracker::new(),
        cancel: cancel.clone(),
        start,
        last_done: Mutex::new(start),
        last_connect_error: Mutex::new(None),
        cfg,
    });
    let ready = Arc::new(Ready { n: AtomicU64::new(0), notify: Notify::new() });
    let (t0_tx, t0_rx) = watch::channel::<Option<Window>>(None);
    let progress = Progress::start(&ctx, cancel.clone());
    let stop_time: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let watcher = {
        let st = stop_time.clone();
        let c = cancel.clone();
        tokio::spawn(async move {
            c.cancelled().await;
            let _ = st.set(Instant::now());
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    for pos in 0..count {
        let ctx = ctx.clone();
        let ready = ready.clone();
        let rx = t0_rx.clone();
        tasks.spawn(async move { register_task(ctx, pos, ready, rx).await });
    }
    drop(t0_rx);

    // connect phase (persistent sessions): wait until every register tried once
    if ctx.cfg.behaviour == Behaviour::Persistent {
        while ready.n.load(Relaxed) < count && !cancel.is_cancelled() {
            tokio::select! {
                () = ready.notify.notified() => {}
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
    let t0 = Instant::now() + Duration::from_millis(20);
    let window = Window { t0, measure_from: t0 + ctx.cfg.warmup, end: t0 + ctx.cfg.duration };
    let _ = t0_tx.send(Some(window));

    // hard stop: everything is bounded by timeouts, this is a second fence
    let grace = ctx.cfg.timeout * (ctx.cfg.max_resends + 2) + ctx.cfg.connect_timeout * 2 + Duration::from_secs(5);
    let hard_stop = tokio::time::sleep_until(window.end + grace);
    tokio::pin!(hard_stop);
    let mut finished = None;
    loop {
        tokio::select! {
            r = tasks.join_next() => if r.is_none() { finished = Some(Instant::now()); break },
            () = &mut hard_stop => {
                cancel.cancel();
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    // late readers and comparisons: bounded by the late window
    ctx.tracker.close();
    let bound = ctx.cfg.late_window + Duration::from_secs(1);
    let _ = tokio::time::timeout(bound, ctx.tracker.wait()).await;
    watcher.abort();
    progress.finish();

    // the window ends at the scheduled end, at Ctrl-C, or when every register is done
    // (--docs-per-register), whichever comes first
    let mut stopped = stop_time.get().copied().map_or(window.end, |s| s.min(window.end));
    if let Some(f) = finished {
        stopped = stopped.min(f.max(window.measure_from));
    }
    let measure_s = stopped.saturating_duration_since(window.measure_from).as_secs_f64();
    let last_done = *ctx.last_done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let c = &ctx.stats.counters;
    let merged = ctx.stats.merged();
    let open = matches!(ctx.cfg.load, LoadModel::Open { .. });
    let counters = c.snapshot();
    let sending_s = stopped.saturating_duration_since(window.t0).as_secs_f64();
    let kinds = [
        DocKind::OpenShift,
        DocKind::Receipt,
        DocKind::Return,
        DocKind::StateReport,
        DocKind::CloseShift,
        DocKind::Malformed,
    ];
    let mut report = Report {
        schema: SCHEMA,
        loadgen_version: env!("CARGO_PKG_VERSION"),
        started_at,
        config: ctx.cfg.echo(),
        environment: environment(ctx.cfg.threads, ctx.last_connect_error_text()),
        timing: Timing {
            connect_phase_s: window.t0.saturating_duration_since(start).as_secs_f64(),
            warmup_s: ctx.cfg.warmup.as_secs_f64(),
            measure_s,
            elapsed_s: last_done.max(stopped).saturating_duration_since(start).as_secs_f64(),
        },
        rates: Rates {
            offered: match ctx.cfg.load {
                LoadModel::Open { rate } => Some(rate),
                LoadModel::Closed => None,
            },
            achieved: if measure_s > 0.0 { counters.documents_ok_in_window as f64 / measure_s } else { 0.0 },
            sent: if sending_s > 0.0 { counters.documents_sent as f64 / sending_s } else { 0.0 },
        },
        mismatches: c.mismatch_map(),
        mismatches_total: c.mismatches_total(),
        connect_errors: c.connect_error_map(),
        documents_by_kind: kinds.iter().enumerate().map(|(i, k)| (kind_name(*k), c.by_kind[i].load(Relaxed))).collect(),
        counters,
        sources: ctx.connector.sources(),
        tls_handshakes: ctx.connector.handshakes(),
        latency_us: Latencies {
            corrected: open.then(|| Percentiles::of(&merged.corrected)),
            uncorrected: Percentiles::of(&merged.uncorrected),
            connect: Percentiles::of(&merged.connect),
            send_lag: open.then(|| Percentiles::of(&merged.send_lag)),
        },
        thresholds: Vec::new(),
        verdict: Verdict { ok: true, exit_code: 0, reasons: Vec::new() },
    };
    report.judge(&ctx.cfg.thresholds, ctx.cfg.max_mismatches);
    Ok(report)
}

fn kind_name(k: DocKind) -> &'static str {
    match k {
        DocKind::OpenShift => "open_shift",
        DocKind::Receipt => "receipt",
        DocKind::Return => "return",
        DocKind::StateReport => "state_report",
        DocKind::CloseShift => "close_shift",
        DocKind::Malformed => "malformed",
    }
}

fn kind_index(k: DocKind) -> usize {
    match k {
        DocKind::OpenShift => 0,
        DocKind::Receipt => 1,
        DocKind::Return => 2,
        DocKind::StateReport => 3,
        DocKind::CloseShift => 4,
        DocKind::Malformed => 5,
    }
}

/// Machine facts for the report.
pub fn environment(threads: usize, last_connect_error: Option<String>) -> serde_json::Value {
    let limit = crate::sys::FileLimit::current().ok();
    serde_json::json!({
        "file_limit": limit,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "threads": threads,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned()),
        "ip_local_port_range": std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join("-")),
        "rss_bytes_end": crate::sys::rss_bytes(),
        "last_connect_error": last_connect_error,
    })
}

impl<C: Connector> Ctx<C> {
    fn last_connect_error_text(&self) -> Option<String> {
        self.last_connect_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn mark_done(&self, t: Instant) {
        let mut g = self.last_done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if t > *g {
            *g = t;
        }
    }

    async fn connect(&self, key: u64) -> Option<C::Conn> {
        let t = Instant::now();
        match self.connector.connect(t + self.cfg.connect_timeout).await {
            Ok(c) => {
                self.stats.counters.connects_ok.fetch_add(1, Relaxed);
                let d = us(t.elapsed());
                self.stats.with(key, |r| r.connect.saturating_record(d));
                Some(c)
            }
            Err(e) => {
                self.stats.counters.connect_error(e.kind);
                *self.last_connect_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(format!("{}: {}", e.kind.name(), e.detail));
                None
            }
        }
    }

    /// Sends one document, with resends and an optional deliberate duplicate.
    #[allow(clippy::too_many_lines)]
    async fn perform(
        self: &Arc<Self>,
        conn: &mut Option<C::Conn>,
        docs: &mut DocStream,
        doc: Doc,
        intended: Option<Instant>,
        key: u64,
        w: Window,
    ) -> Sent {
        let c = &self.stats.counters;
        let cfg = &self.cfg;
        let start = Instant::now();
        if conn.is_none() {
            *conn = self.connect(key).await;
            if conn.is_none() {
                return Sent::NoConnection(doc);
            }
        }
        c.documents_sent.fetch_add(1, Relaxed);
        c.by_kind[kind_index(doc.kind)].fetch_add(1, Relaxed);
        if doc.fault.is_some() {
            c.malformed_sent.fetch_add(1, Relaxed);
        }
        let measured = intended.unwrap_or(start) >= w.measure_from;
        if let Some(it) = intended {
            let lag = start.saturating_duration_since(it);
            if lag > cfg.late_threshold {
                c.late_sends.fetch_add(1, Relaxed);
            }
            if measured {
                self.stats.with(key, |r| r.send_lag.saturating_record(us(lag)));
            }
        }
        let want = match doc.expect {
            Outcome::Ack(code) => Some(code),
            Outcome::Close => None,
        };
        let expected = Expected { fn_number: docs.identity().fn_number, fd: doc.fd, code: want.unwrap_or(0) };
        let mut late: Vec<oneshot::Receiver<Option<Bytes>>> = Vec::new();
        let mut attempt = 0;
        let mut good: Option<Bytes> = None;
        let mut done = start;
        loop {
            if conn.is_none() {
                *conn = self.connect(key).await;
            }
            let Some(cn) = conn.as_mut() else {
                // a resend that found no connection: the register gives the document up
                c.gave_up.fetch_add(1, Relaxed);
                break;
            };
            c.bytes_sent.fetch_add(doc.message.len() as u64, Relaxed);
            let r = cn.exchange(&doc.message, Instant::now() + cfg.timeout).await;
            done = Instant::now();
            match r {
                Ok(reply) => {
                    c.bytes_received.fetch_add(reply.len() as u64, Relaxed);
                    if want.is_none() {
                        c.mismatch(MismatchKind::UnexpectedReply);
                    } else {
                        match verify_reply(reply.clone(), &expected) {
                            Ok(_) => good = Some(reply),
                            Err(kind) => {
                                c.mismatch(kind);
                                if kind == MismatchKind::Structure {
                                    // framing can no longer be trusted
                                    if let Some(cn) = conn.take() {
                                        cn.close().await;
                                    }
                                }
                            }
                        }
                    }
                    break;
                }
                Err(ExchangeError::Timeout) => {
                    c.timeouts.fetch_add(1, Relaxed);
                    if let Some(cn) = conn.take() {
                        let (back, fut) = cn.split_late(done + cfg.late_window);
                        *conn = back;
                        let (tx, rx) = oneshot::channel();
                        late.push(rx);
                        self.tracker.spawn(async move {
                            let _ = tx.send(fut.await);
                        });
                    }
                    if want.is_none() {
                        break;
                    }
                    if attempt >= cfg.max_resends {
                        c.gave_up.fetch_add(1, Relaxed);
                        break;
                    }
                    attempt += 1;
                    c.resends.fetch_add(1, Relaxed);
                }
                Err(ExchangeError::Refused) => {
                    *conn = None;
                    if want.is_none() {
                        good = Some(Bytes::new());
                    } else {
                        c.refusals.fetch_add(1, Relaxed);
                    }
                    break;
                }
                Err(ExchangeError::Truncated(_)) => {
                    *conn = None;
                    c.mismatch(MismatchKind::Truncated);
                    break;
                }
                Err(ExchangeError::TooLarge) => {
                    *conn = None;
                    c.mismatch(MismatchKind::Structure);
                    break;
                }
                Err(ExchangeError::Io(_)) => {
                    *conn = None;
                    c.io_errors.fetch_add(1, Relaxed);
                    break;
                }
            }
        }
        self.mark_done(done);
        if good.is_some() {
            c.documents_ok.fetch_add(1, Relaxed);
            if doc.fault.is_some() {
                c.malformed_ok.fetch_add(1, Relaxed);
            }
            if w.contains(done) {
                c.documents_ok_in_window.fetch_add(1, Relaxed);
            }
            if measured && want.is_some() {
                let u = us(done.saturating_duration_since(start));
                let corrected = intended.map(|it| us(done.saturating_duration_since(it)));
                self.stats.with(key, |r| {
                    r.uncorrected.saturating_record(u);
                    if let Some(v) = corrected {
                        r.corrected.saturating_record(v);
                    }
                });
            }
        }
        let good = good.filter(|b| !b.is_empty());
        if !late.is_empty() {
            let me = self.clone();
            let reference = good.clone();
            self.tracker.spawn(async move {
                me.compare_late(late, reference, expected).await;
            });
        }
        if let Some(first) = good
            && docs.roll(cfg.duplicates)
        {
            self.duplicate(conn, &doc.message, &first, &expected, key).await;
        }
        if cfg.behaviour == Behaviour::PerDocument
            && let Some(cn) = conn.take()
        {
            cn.close().await;
        }
        Sent::Yes
    }

    /// Late replies of timed-out attempts: verified, and compared with the reply that was
    /// accepted (or with each other).
    async fn compare_late(
        &self,
        late: Vec<oneshot::Receiver<Option<Bytes>>>,
        mut reference: Option<Bytes>,
        expected: Expected,
    ) {
        let c = &self.stats.counters;
        for rx in late {
            let Ok(Some(reply)) = rx.await else { continue };
            c.late_acks.fetch_add(1, Relaxed);
            if let Err(kind) = verify_reply(reply.clone(), &expected) {
                c.mismatch(kind);
            }
            match &reference {
                Some(r) if *r == reply => {
                    c.acks_identical.fetch_add(1, Relaxed);
                }
                Some(_) => {
                    c.ack_changed.fetch_add(1, Relaxed);
                }
                None => reference = Some(reply),
            }
        }
    }

    /// Sends an acknowledged document again (a retransmission, as after a lost ack) and
    /// checks that the acknowledgment is byte-identical.
    async fn duplicate(
        self: &Arc<Self>,
        conn: &mut Option<C::Conn>,
        message: &Bytes,
        first: &Bytes,
        expected: &Expected,
        key: u64,
    ) {
        let c = &self.stats.counters;
        if self.cfg.behaviour == Behaviour::PerDocument
            && let Some(cn) = conn.take()
        {
            cn.close().await;
        }
        if conn.is_none() {
            *conn = self.connect(key).await;
        }
        let Some(cn) = conn.as_mut() else { return };
        c.duplicates_sent.fetch_add(1, Relaxed);
        c.bytes_sent.fetch_add(message.len() as u64, Relaxed);
        match cn.exchange(message, Instant::now() + self.cfg.timeout).await {
            Ok(reply) => {
                c.bytes_received.fetch_add(reply.len() as u64, Relaxed);
                if reply == *first {
                    c.acks_identical.fetch_add(1, Relaxed);
                } else {
                    c.ack_changed.fetch_add(1, Relaxed);
                    if let Err(kind) = verify_reply(reply, expected) {
                        c.mismatch(kind);
                    }
                }
            }
            Err(ExchangeError::Timeout) => {
                c.timeouts.fetch_add(1, Relaxed);
                if let Some(cn) = conn.take() {
                    let (back, fut) = cn.split_late(Instant::now() + self.cfg.late_window);
                    *conn = back;
                    let me = self.clone();
                    let first = first.clone();
                    let expected = *expected;
                    self.tracker.spawn(async move {
                        let (tx, rx) = oneshot::channel();
                        let _ = tx.send(fut.await);
                        me.compare_late(vec![rx], Some(first), expected).await;
                    });
                }
            }
            Err(ExchangeError::Refused) => {
                *conn = None;
                c.refusals.fetch_add(1, Relaxed);
            }
            Err(ExchangeError::Truncated(_)) => {
                *conn = None;
                c.mismatch(MismatchKind::Truncated);
            }
            Err(ExchangeError::TooLarge) => {
                *conn = None;
                c.mismatch(MismatchKind::Structure);
            }
            Err(ExchangeError::Io(_)) => {
                *conn = None;
                c.io_errors.fetch_add(1, Relaxed);
            }
        }
    }
}

async fn register_task<C: Connector>(
    ctx: Arc<Ctx<C>>,
    pos: u64,
    ready: Arc<Ready>,
    mut t0_rx: watch::Receiver<Option<Window>>,
) {
    let cfg = &ctx.cfg;
    let index = cfg.population.first + pos;
    let reg = RegisterIdentity::derive(cfg.population.seed, index, &cfg.population.mix);
    let mut conn: Option<C::Conn> = None;
    let mut docs = reg.ok().map(|r| DocStream::new(cfg.population.seed, &r, &cfg.ofd_inn, cfg.plan.clone()));
    if cfg.behaviour == Behaviour::Persistent && docs.is_some() {
        if let Some(rate) = cfg.ramp_rate.filter(|r| *r > 0.0) {
            let at = ctx.start + Duration::from_secs_f64(pos as f64 / rate);
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = ctx.cancel.cancelled() => {}
            }
        }
        if !ctx.cancel.is_cancelled() {
            conn = ctx.connect(pos).await;
        }
    }
    ready.n.fetch_add(1, Relaxed);
    ready.notify.notify_one();
    let Some(docs) = docs.as_mut() else { return };
    let w = match t0_rx.wait_for(Option::is_some).await {
        Ok(v) => match *v {
            Some(w) => w,
            None => return,
        },
        Err(_) => return,
    };
    let n = cfg.population.count as f64;
    let period = match cfg.load {
        LoadModel::Open { rate } => Some(Duration::from_secs_f64(n / rate)),
        LoadModel::Closed => None,
    };
    let mut next = match cfg.load {
        LoadModel::Open { rate } => w.t0 + Duration::from_secs_f64(pos as f64 / rate),
        LoadModel::Closed => w.t0,
    };
    if period.is_none() {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = ctx.cancel.cancelled() => {}
        }
    }
    let mut sent: u64 = 0;
    // a document that found no connection, with the time it was first meant to go out:
    // its corrected latency keeps counting from there
    let mut held: Option<(Doc, Option<Instant>)> = None;
    loop {
        if ctx.cancel.is_cancelled() || cfg.docs_per_register.is_some_and(|l| sent >= l) {
            break;
        }
        let intended = if let Some(p) = period {
            if next >= w.end {
                break;
            }
            let now = Instant::now();
            if now >= w.end {
                let missed = (w.end - next).as_secs_f64() / p.as_secs_f64();
                ctx.stats.counters.unsent.fetch_add(missed.ceil() as u64, Relaxed);
                break;
            }
            if next > now {
                if let Some(pacer) = &ctx.pacer {
                    tokio::select! {
                        () = pacer.sleep_until(next) => {}
                        () = ctx.cancel.cancelled() => break,
                    }
                } else {
                    tokio::select! {
                        () = tokio::time::sleep_until(next) => {}
                        () = ctx.cancel.cancelled() => break,
                    }
                }
            }
            Some(next)
        } else {
            if Instant::now() >= w.end {
                break;
            }
            None
        };
        let (doc, intended) = match held.take() {
            Some((d, first)) => (d, first.or(intended)),
            None => match docs.next_doc() {
                Some(d) => (d, intended),
                None => break,
            },
        };
        match ctx.perform(&mut conn, docs, doc, intended, pos, w).await {
            Sent::Yes => sent += 1,
            Sent::NoConnection(d) => {
                held = Some((d, intended));
                if period.is_some() {
                    // the slot passed without a send
                    ctx.stats.counters.unsent.fetch_add(1, Relaxed);
                }
                if period.is_none() {
                    // closed loop: do not spin on a gateway that refuses connections
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        () = ctx.cancel.cancelled() => break,
                    }
                }
            }
        }
        if let Some(p) = period {
            next += p;
        } else if !cfg.think_time.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(cfg.think_time) => {}
                () = ctx.cancel.cancelled() => break,
            }
        }
    }
    if let Some(cn) = conn.take() {
        cn.close().await;
    }
}

/// The live progress line (stderr, only on a terminal).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    stop: CancellationToken,
}

impl Progress {
    fn start<C: Connector>(ctx: &Arc<Ctx<C>>, cancel: CancellationToken) -> Self {
        use std::io::IsTerminal as _;
        let stop = cancel.child_token();
        if !ctx.cfg.progress || !std::io::stderr().is_terminal() {
            return Self { bar: None, stop };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
        let b = bar.clone();
        let ctx = ctx.clone();
        let s = stop.clone();
        tokio::spawn(async move {
            let mut last = 0u64;
            let mut last_t = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = s.cancelled() => break,
                }
                let c = &ctx.stats.counters;
                let ok = c.documents_ok.load(Relaxed);
                let now = Instant::now();
                let rate = (ok - last.min(ok)) as f64 / now.duration_since(last_t).as_secs_f64().max(1e-3);
                last = ok;
                last_t = now;
                b.set_message(format!(
                    "{:>6.1}s  ok {ok} ({rate:.0}/s)  mismatches {}  timeouts {}  refusals {}  conns {} (failed {})",
                    ctx.start.elapsed().as_secs_f64(),
                    c.mismatches_total(),
                    c.timeouts.load(Relaxed),
                    c.refusals.load(Relaxed),
                    c.connects_ok.load(Relaxed),
                    c.connects_failed.load(Relaxed),
                ));
                b.tick();
            }
        });
        Self { bar: Some(bar), stop }
    }

    fn finish(self) {
        self.stop.cancel();
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
