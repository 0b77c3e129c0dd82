//! The command line: one clap struct per subcommand, and the option groups they share
//! (connection, population, admin API).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use loadgen::registers::FfdMix;
use loadgen::run::Behaviour;
use loadgen::stats::Threshold;
use loadgen::transport::TransportKind;

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
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
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
    /// The CQL baseline: one row of a document's size per document, straight to the
    /// cluster with the gateway's driver and consistency (what the cluster can write).
    CqlBaseline(CqlBaselineArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CqlBaselineArgs {
    /// Contact points, comma separated (loopback only).
    #[arg(long, default_value = "127.0.0.1:9042", env = "SCYLLA_URI")]
    pub(crate) nodes: String,
    /// Data centre.
    #[arg(long, default_value = "dc1")]
    pub(crate) dc: String,
    /// Keyspace created for the run (dropped afterwards unless --keep).
    #[arg(long, default_value = "ofd_bench")]
    pub(crate) keyspace: String,
    /// Replication factor (default: the number of contact points, at most 3).
    #[arg(long)]
    pub(crate) rf: Option<u32>,
    /// Writes per document.
    #[arg(long, value_enum, default_value = "insert")]
    pub(crate) mode: loadgen::cql_baseline::Mode,
    /// Bytes per row.
    #[arg(long, default_value_t = 600)]
    pub(crate) size: usize,
    /// Documents in flight.
    #[arg(long, default_value_t = 200)]
    pub(crate) concurrency: usize,
    /// Measured time.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// Unmeasured warm-up.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub(crate) warmup: Duration,
    /// Driver request timeout.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
    /// Keep the keyspace.
    #[arg(long)]
    pub(crate) keep: bool,
    /// Write the report as JSON to this file (`-` = stdout).
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// Admin API (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub(crate) admin: String,
    /// Admin bearer token (default: DIR/admin-token of --gateway-data-dir).
    #[arg(long, env = "LOADGEN_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) admin_token: Option<String>,
    /// Tariff plan for onboarded registers.
    #[arg(long)]
    pub(crate) tariff: Option<String>,
    /// End of the paid period for onboarded registers (RFC 3339; default one year ahead).
    #[arg(long)]
    pub(crate) paid_until: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct OnboardArgs {
    #[command(flatten)]
    pub(crate) pop: PopArgs,
    #[command(flatten)]
    pub(crate) admin: AdminArgs,
    /// The gateway's data directory (its admin token DIR/admin-token).
    #[arg(long)]
    pub(crate) gateway_data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ConnArgs {
    /// Transport.
    #[arg(long, value_enum, default_value = "tcp")]
    pub(crate) transport: TransportKind,
    /// Gateway address (loopback only). Default: 127.0.0.1:7777 for tcp, :7778 for tls/quic.
    #[arg(long)]
    pub(crate) target: Option<String>,
    /// Trust this PEM certificate (TLS, QUIC).
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// TLS server name to verify.
    #[arg(long, default_value = "localhost")]
    pub(crate) server_name: String,
    /// The gateway's data directory: trusts DIR/tls/dev-cert.pem, reads DIR/admin-token.
    #[arg(long)]
    pub(crate) gateway_data_dir: Option<PathBuf>,
    /// Source addresses, round-robin: `127.0.0.1-127.0.0.20` or a comma list (127/8 only).
    #[arg(long)]
    pub(crate) source_ips: Option<String>,
    /// Connect (and handshake) timeout.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub(crate) connect_timeout: Duration,
    /// QUIC keep-alive interval (`0s` = none).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) quic_keep_alive: Option<Duration>,
    /// QUIC idle timeout proposed to the server (the lower of both sides applies).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) quic_idle_timeout: Duration,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct PopArgs {
    /// Number of registers.
    #[arg(long, alias = "registers", default_value_t = 100)]
    pub(crate) count: u64,
    /// Index of the first register (split a population over processes).
    #[arg(long, default_value_t = 0)]
    pub(crate) first_register: u64,
    /// Seed: identities and document contents are reproducible from it.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// FFD versions and their weights.
    #[arg(long, default_value = "1.05=20,1.1=10,1.2=70")]
    pub(crate) ffd_mix: FfdMix,
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    #[command(flatten)]
    pub(crate) pop: PopArgs,
    /// Open loop: target rate in documents per second for the whole population.
    #[arg(long, conflicts_with = "closed")]
    pub(crate) rate: Option<f64>,
    /// Closed loop: each register sends its next document when the previous ack arrives.
    #[arg(long)]
    pub(crate) closed: bool,
    /// Connection behaviour.
    #[arg(long, value_enum, default_value = "persistent")]
    pub(crate) behaviour: Behaviour,
    /// Length of the load phase.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// Excluded from histograms and the achieved rate.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub(crate) warmup: Duration,
    /// Stop each register after this many documents.
    #[arg(long)]
    pub(crate) docs_per_register: Option<u64>,
    /// Reply timeout per exchange.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
    /// Open loop: sends later than this after their intended time count as late.
    #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
    pub(crate) late_threshold: Duration,
    /// How long a timed-out reply is still awaited (default: --timeout).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) late_window: Option<Duration>,
    /// Resends of a timed-out document before giving up.
    #[arg(long, default_value_t = 2)]
    pub(crate) max_resends: u32,
    /// Resend after the gateway closed without an answer, or the connection failed (up to
    /// --max-resends, backing off 100 ms … 2 s), as a register does with an unacknowledged
    /// document; without it the document is counted refused and the next one is sent.
    #[arg(long)]
    pub(crate) retry_refused: bool,
    /// Write one line per acknowledged document: FN, FD, SHA-256 of the container sent and
    /// of the acknowledgment container received (tab-separated).
    #[arg(long)]
    pub(crate) acked_out: Option<PathBuf>,
    /// Share of acknowledged documents re-sent on purpose (ack must be byte-identical).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) duplicates: f64,
    /// Share of documents replaced by an injected fault.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) malformed: f64,
    /// Faults to inject: fd_mismatch, truncated, unknown_form, bad_container_crc.
    #[arg(long, value_delimiter = ',', default_value = "fd_mismatch,truncated,unknown_form,bad_container_crc")]
    pub(crate) faults: Vec<String>,
    /// Persistent sessions: new connections per second while connecting.
    #[arg(long)]
    pub(crate) ramp_rate: Option<f64>,
    /// Closed loop: pause after each ack.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub(crate) think_time: Duration,
    /// Receipts per shift, `MIN-MAX`.
    #[arg(long, default_value = "5-40")]
    pub(crate) receipts_per_shift: String,
    /// First FD number of every register (raise it to avoid re-sending stored FDs).
    #[arg(long, default_value_t = 1)]
    pub(crate) fd_start: u32,
    /// Document times from this Unix time, one minute per document (byte-reproducible).
    #[arg(long)]
    pub(crate) fixed_time: Option<u32>,
    /// Allow TLS session resumption (default: every handshake is a full one).
    #[arg(long)]
    pub(crate) tls_resume: bool,
    /// Write every figure as JSON here (`-` = stdout; the summary then goes to stderr).
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// No human summary.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// No live progress line.
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Pass/fail conditions, e.g. `p99<5ms`, `rate>=10000`, `timeouts==0` (exit 99).
    #[arg(long = "threshold")]
    pub(crate) thresholds: Vec<Threshold>,
    /// Mismatches tolerated before exiting with 3.
    #[arg(long, default_value_t = 0)]
    pub(crate) max_mismatches: u64,
    /// Import the registers through the admin API before the run.
    #[arg(long)]
    pub(crate) onboard: bool,
    #[command(flatten)]
    pub(crate) admin: AdminArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RegistersArgs {
    #[command(flatten)]
    pub(crate) pop: PopArgs,
    /// Output CSV (`-` = stdout).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Tariff plan column.
    #[arg(long)]
    pub(crate) tariff: Option<String>,
    /// paid_until column, RFC 3339 (default one year ahead; `none` leaves it empty).
    #[arg(long)]
    pub(crate) paid_until: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct BaselineArgs {
    /// Plain TCP listener (`none` to disable).
    #[arg(long, default_value = "127.0.0.1:7777")]
    pub(crate) listen: String,
    /// TLS listener.
    #[arg(long)]
    pub(crate) tls_listen: Option<String>,
    /// QUIC listener (UDP).
    #[arg(long)]
    pub(crate) quic_listen: Option<String>,
    /// Certificate PEM for TLS/QUIC (default: a self-signed one).
    #[arg(long, requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// Private key PEM.
    #[arg(long, requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// Write the certificate clients must trust here (use with loadgen --ca).
    #[arg(long)]
    pub(crate) cert_out: Option<PathBuf>,
    /// Print the answered rate every interval (`0s` = only at exit).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub(crate) stats_interval: Duration,
    /// Stop after this long (default: until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct IdleArgs {
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    /// Connections to open.
    #[arg(long)]
    pub(crate) connections: u64,
    /// Index of the first register.
    #[arg(long, default_value_t = 0)]
    pub(crate) first_register: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// New connections per second.
    #[arg(long)]
    pub(crate) ramp_rate: Option<f64>,
    /// Hold time after the plateau.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) hold: Duration,
    /// Send one document per connection and verify its ack.
    #[arg(long)]
    pub(crate) send_first: bool,
    /// Reply timeout of that document (and of the next one after a reconnect).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
    /// FD of every register's first document (raise it to re-run against stored data).
    #[arg(long, default_value_t = 1)]
    pub(crate) fd_start: u32,
    /// Reconnect storm: when the server drops a connection, reconnect (with backoff) and
    /// deliver the next document; the hold ends once every register has recovered.
    #[arg(long)]
    pub(crate) reconnect: bool,
    /// Reconnect backoff `MIN-MAX`: attempt n waits uniformly up to min(MAX, MIN·2ⁿ).
    #[arg(long, default_value = "100ms-1s")]
    pub(crate) reconnect_backoff: String,
    /// Write one CSV line per recovery here (register, drop and recovery times).
    #[arg(long)]
    pub(crate) storm_csv: Option<PathBuf>,
    /// Write the phase (`connected`, `plateau`, `done`) here as JSON, for scripts.
    #[arg(long)]
    pub(crate) ready_file: Option<PathBuf>,
    /// Send the first documents only once this file exists (measure the server between).
    #[arg(long)]
    pub(crate) wait_file: Option<PathBuf>,
    /// Import the registers through the admin API first.
    #[arg(long)]
    pub(crate) onboard: bool,
    #[command(flatten)]
    pub(crate) admin: AdminArgs,
    /// Write the report as JSON here (`-` = stdout).
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    pub(crate) no_progress: bool,
}
