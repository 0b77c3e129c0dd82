//! The gateway's configuration: one typed struct with a default and a doc comment per
//! field, one module per `[section]`, layered as defaults < TOML file < `GATEWAY_*`
//! environment < command-line flags, and validated before any port is bound
//! (`gateway --check-config`). The example file `config/gateway.example.toml` is rendered
//! from these same doc comments and defaults ([`example`]; `gateway config-doc`), and a
//! test keeps the committed file equal to it.
//!
//! Environment overrides use the field path with `__` between levels, e.g.
//! `GATEWAY_LISTEN__TCP=0.0.0.0:7777`, `GATEWAY_LIMITS__IDLE_TIMEOUT=60s`,
//! `GATEWAY_DATA_DIR=/var/lib/ofd`. `GATEWAY_ADMIN_TOKEN` sets a single admin token.

mod admin;
mod alerts;
pub mod example;
mod fns;
mod ingest;
mod limits;
mod listen;
mod log;
mod quic;
mod reports;
mod resend;
mod shutdown;
mod signer;
mod storage;
mod tls;
mod values;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use admin::{AdminConfig, TokenConfig};
pub use alerts::AlertsConfig;
pub use fns::FnsConfig;
pub use ingest::{IngestConfig, TagPolicy};
pub use limits::LimitsConfig;
pub use listen::ListenConfig;
pub use log::LogConfig;
pub use quic::QuicConfig;
pub use reports::ReportsConfig;
pub use resend::ResendConfig;
pub use shutdown::ShutdownConfig;
pub use signer::SignerConfig;
pub use storage::StorageConfig;
pub use tls::{ClientAuth, TlsConfig};
pub use values::{FreeSpace, Listen};

/// Everything the gateway needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of the embedded store, the development TLS certificate, the development
    /// admin token and the development signing key.
    pub data_dir: PathBuf,
    /// INN of this operator, written into every acknowledgment (tag 1017).
    pub ofd_inn: String,
    /// Name of this node in a cluster (leases for background work); defaults to the host
    /// name.
    pub node_id: String,
    /// A single admin token (role admin), usually given as `GATEWAY_ADMIN_TOKEN`. A
    /// secret: never serialised (`print-config` leaves it out).
    #[serde(skip_serializing)]
    pub admin_token: Option<String>,
    /// Listener addresses.
    pub listen: ListenConfig,
    /// TLS for the TLS and QUIC listeners.
    pub tls: TlsConfig,
    /// Per-connection and global bounds.
    pub limits: LimitsConfig,
    /// QUIC transport parameters.
    pub quic: QuicConfig,
    /// Acceptance rules.
    pub ingest: IngestConfig,
    /// The acknowledgment signer.
    pub signer: SignerConfig,
    /// Where documents are stored.
    pub storage: StorageConfig,
    /// Admin API authentication.
    pub admin: AdminConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Logging.
    pub log: LogConfig,
    /// Forwarding of accepted documents to the tax service (FNS).
    pub fns: FnsConfig,
    /// Alert rule evaluation and webhook notifications.
    pub alerts: AlertsConfig,
    /// Resend jobs (documents delivered to the FNS again on an admin's request).
    pub resend: ResendConfig,
    /// Revenue reports, shifts and FD continuity (time zones, longest range).
    pub reports: ReportsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            ofd_inn: "7700000009".into(),
            node_id: String::new(),
            admin_token: None,
            listen: ListenConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            quic: QuicConfig::default(),
            ingest: IngestConfig::default(),
            signer: SignerConfig::default(),
            storage: StorageConfig::default(),
            admin: AdminConfig::default(),
            shutdown: ShutdownConfig::default(),
            log: LogConfig::default(),
            fns: FnsConfig::default(),
            alerts: AlertsConfig::default(),
            resend: ResendConfig::default(),
            reports: ReportsConfig::default(),
        }
    }
}

/// A configuration problem, with the field it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be parsed.
    #[error("{0}")]
    Parse(String),
    /// A value is out of range or inconsistent.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads defaults < `file` (if any) < `GATEWAY_*` environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Parse(format!("config file {} does not exist", path.display())));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig.merge(Env::prefixed("GATEWAY_").split("__"));
        let cfg: Config = fig.extract().map_err(|e| ConfigError::Parse(format_figment_error(e)))?;
        Ok(cfg)
    }

    /// Checks ranges and consistency; `Err` names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, message: String| Err(ConfigError::Invalid { field, message });
        if ::storage::Inn::parse(&self.ofd_inn).is_err() {
            return invalid(
                "ofd_inn",
                format!("{:?} is not a valid INN (10 or 12 digits with control digits)", self.ofd_inn),
            );
        }
        let l = &self.limits;
        if !(64..=65_535).contains(&l.max_body_bytes) {
            return invalid("limits.max_body_bytes", "must be between 64 and 65535 (the wire field is a u16)".into());
        }
        if l.max_requisites < 16 {
            return invalid("limits.max_requisites", "must be at least 16".into());
        }
        if l.max_inflight_documents == 0 {
            return invalid("limits.max_inflight_documents", "must be at least 1".into());
        }
        if l.max_buffered_bytes < l.max_body_bytes + 30 {
            return invalid("limits.max_buffered_bytes", "must hold at least one largest message".into());
        }
        for (field, d) in [
            ("limits.handshake_timeout", l.handshake_timeout),
            ("limits.idle_timeout", l.idle_timeout),
            ("limits.frame_timeout", l.frame_timeout),
            ("limits.write_timeout", l.write_timeout),
            ("limits.ack_timeout", l.ack_timeout),
        ] {
            if d.is_zero() {
                return invalid(field, "must be greater than zero".into());
            }
        }
        if self.quic.max_streams_per_connection == 0 || self.quic.max_streams_per_connection > 64 {
            return invalid("quic.max_streams_per_connection", "must be between 1 and 64".into());
        }
        if (self.quic.stream_window as usize) < l.max_body_bytes + 30 {
            return invalid("quic.stream_window", "must hold at least one largest message".into());
        }
        if self.quic.connection_window < self.quic.stream_window {
            return invalid("quic.connection_window", "must be at least quic.stream_window".into());
        }
        if let (Some(a), Some(b)) = (self.listen.tls.0, self.listen.tcp.0)
            && a == b
            && a.port() != 0
        {
            return invalid("listen.tls", "must differ from listen.tcp".into());
        }
        if self.signer.kind != "software" {
            return invalid("signer.kind", format!("unknown signer {:?} (available: software)", self.signer.kind));
        }
        if let Some(k) = &self.signer.key_hex
            && hex::decode(k).map(|b| b.len() < 16).unwrap_or(true)
        {
            return invalid("signer.key_hex", "must be at least 16 bytes of hex".into());
        }
        match self.storage.backend.as_str() {
            "embedded" => {
                if !matches!(self.storage.sync.as_str(), "sync_all" | "sync_data") {
                    return invalid("storage.sync", "must be \"sync_all\" or \"sync_data\"".into());
                }
                if self.storage.max_batch == 0 || self.storage.queue_capacity == 0 {
                    return invalid("storage.max_batch", "max_batch and queue_capacity must be at least 1".into());
                }
            }
            "scylla" => {
                if self.storage.nodes.is_empty() {
                    return invalid("storage.nodes", "at least one contact point is needed".into());
                }
                if !matches!(self.storage.consistency.as_str(), "local_quorum" | "quorum" | "each_quorum" | "all") {
                    return invalid(
                        "storage.consistency",
                        format!(
                            "{:?} cannot acknowledge fiscal documents safely; use local_quorum, quorum, each_quorum or all",
                            self.storage.consistency
                        ),
                    );
                }
                if !(1..=9).contains(&self.storage.min_replication_factor) {
                    return invalid("storage.min_replication_factor", "must be between 1 and 9".into());
                }
                if self.storage.request_timeout < std::time::Duration::from_millis(100) {
                    return invalid("storage.request_timeout", "must be at least 100ms".into());
                }
                if self.storage.journal_settle < self.storage.request_timeout * 2 {
                    return invalid(
                        "storage.journal_settle",
                        "must be at least twice storage.request_timeout (an entry still being written must not be passed)"
                            .into(),
                    );
                }
                if self.storage.max_derived_lag < self.storage.journal_settle * 3 {
                    return invalid(
                        "storage.max_derived_lag",
                        "must be at least 3 × storage.journal_settle (another node's cursor trails by the settle time)"
                            .into(),
                    );
                }
                let spec = self.storage.speculative_delay;
                if !spec.is_zero() && spec < std::time::Duration::from_millis(10) {
                    return invalid("storage.speculative_delay", "must be 0s (off) or at least 10ms".into());
                }
            }
            other => {
                return invalid("storage.backend", format!("unknown backend {other:?} (embedded or scylla)"));
            }
        }
        if self.storage.backend == "scylla" && self.signer.key_hex.is_none() {
            return invalid(
                "signer.key_hex",
                "a CQL store is shared by several gateways, which must sign with one key: set signer.key_hex \
                 (the same on every gateway; a development key in data_dir would differ per node)"
                    .into(),
            );
        }
        for t in &self.admin.tokens {
            if !matches!(t.role.as_str(), "admin" | "viewer") {
                return invalid("admin.tokens.role", format!("token {:?}: role must be admin or viewer", t.name));
            }
            if hex::decode(&t.sha256).map(|b| b.len() != 32).unwrap_or(true) {
                return invalid("admin.tokens.sha256", format!("token {:?}: must be 64 hex digits (SHA-256)", t.name));
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return invalid("log.format", "must be text or json".into());
        }
        if (self.tls.client_auth != ClientAuth::None) && self.tls.client_ca.is_none() {
            return invalid("tls.client_ca", "client_auth needs a client_ca bundle".into());
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return invalid("tls.key", "tls.cert and tls.key go together".into());
        }
        if let Err((field, message)) = self.validate_background() {
            return invalid(field, message);
        }
        Ok(())
    }

    /// Checks `[fns]`, `[admin]`, `[reports]`, `[alerts]` and `[resend]`.
    fn validate_background(&self) -> Result<(), (&'static str, String)> {
        let f = &self.fns;
        if let Some(url) = f.url.as_deref().filter(|u| !u.trim().is_empty()) {
            match reqwest::Url::parse(url.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => {
                    return Err(("fns.url", format!("{url:?} is not an http:// or https:// URL")));
                }
            }
        }
        if f.concurrency == 0 || f.concurrency > 4096 {
            return Err(("fns.concurrency", "must be between 1 and 4096".into()));
        }
        if f.batch == 0 || f.batch > 1000 {
            return Err(("fns.batch", "must be between 1 and 1000".into()));
        }
        self.admin.validate()?;
        self.reports.validate()?;
        self.alerts.validate_alertmanager()?;
        let a = &self.alerts;
        let r = &self.resend;
        for (field, d) in [
            ("fns.timeout", f.timeout),
            ("fns.poll_interval", f.poll_interval),
            ("fns.retry_initial", f.retry_initial),
            ("fns.lease_ttl", f.lease_ttl),
            ("fns.backlog_interval", f.backlog_interval),
            ("alerts.interval", a.interval),
            ("alerts.notify_interval", a.notify_interval),
            ("alerts.webhook_timeout", a.webhook_timeout),
            ("alerts.webhook_retry_initial", a.webhook_retry_initial),
            ("alerts.lease_ttl", a.lease_ttl),
            ("resend.poll_interval", r.poll_interval),
            ("resend.retry_initial", r.retry_initial),
            ("resend.lease_ttl", r.lease_ttl),
        ] {
            if d.is_zero() {
                return Err((field, "must be greater than zero".into()));
            }
        }
        if f.retry_max < f.retry_initial {
            return Err(("fns.retry_max", "must be at least fns.retry_initial".into()));
        }
        if a.webhook_retry_max < a.webhook_retry_initial {
            return Err(("alerts.webhook_retry_max", "must be at least alerts.webhook_retry_initial".into()));
        }
        if a.resolve_after == 0 {
            return Err(("alerts.resolve_after", "must be at least 1".into()));
        }
        if a.webhook_max_attempts == 0 {
            return Err(("alerts.webhook_max_attempts", "must be at least 1".into()));
        }
        if r.page_size == 0 || r.page_size > 1000 {
            return Err(("resend.page_size", "must be between 1 and 1000".into()));
        }
        if r.concurrency == 0 || r.concurrency > 4096 {
            return Err(("resend.concurrency", "must be between 1 and 4096".into()));
        }
        if r.max_attempts == 0 {
            return Err(("resend.max_attempts", "must be at least 1".into()));
        }
        Ok(())
    }

    /// The FNS endpoint, when forwarding is on.
    pub fn fns_url(&self) -> Option<&str> {
        self.fns.url.as_deref().map(str::trim).filter(|u| !u.is_empty())
    }

    /// The effective node id.
    pub fn node_id(&self) -> String {
        if !self.node_id.is_empty() {
            return self.node_id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "gateway".into())
    }

    /// ffd limits derived from this configuration.
    pub fn ffd_limits(&self) -> ffd::Limits {
        ffd::Limits {
            max_body_len: self.limits.max_body_bytes,
            max_requisites: self.limits.max_requisites,
            ..ffd::Limits::default()
        }
    }
}

fn format_figment_error(e: figment::Error) -> String {
    let mut out = Vec::new();
    for err in e {
        let path = err.path.join(".");
        let src =
            err.metadata.as_ref().and_then(|m| m.source.as_ref()).map(|s| format!(" (from {s})")).unwrap_or_default();
        if path.is_empty() {
            out.push(format!("{}{src}", err.kind));
        } else {
            out.push(format!("{path}: {}{src}", err.kind));
        }
    }
    out.join("; ")
}
