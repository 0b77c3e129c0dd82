//! What a run is asked to do: the load model, the connection behaviour, every option with
//! its default, the limits they are checked against, and the echo of them in the report.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use rustls::pki_types::CertificateDer;
use serde::Serialize;

use crate::docs::DocPlan;
use crate::registers::Population;
use crate::stats::{Threshold, us};
use crate::transport::TransportKind;
use crate::transport::quic::QuicOptions;

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
    /// Also resend (after a short backoff) when the gateway closed the connection without
    /// an answer or the connection failed — as a register does with an unacknowledged
    /// document — instead of moving on to the next document.
    pub retry_refused: bool,
    /// Write one line per acknowledged document here: FN, FD, SHA-256 of the container
    /// sent and of the acknowledgment container received (tab-separated).
    pub acked_out: Option<std::path::PathBuf>,
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
            retry_refused: false,
            acked_out: None,
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
            "retry_refused": self.retry_refused,
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
