//! The gateway's configuration: one typed struct with a default and a doc comment per
//! field, layered as defaults < TOML file < `GATEWAY_*` environment < command-line flags,
//! and validated before any port is bound (`gateway --check-config`).
//!
//! Environment overrides use the field path with `__` between levels, e.g.
//! `GATEWAY_LISTEN__TCP=0.0.0.0:7777`, `GATEWAY_LIMITS__IDLE_TIMEOUT=60s`,
//! `GATEWAY_DATA_DIR=/var/lib/ofd`. `GATEWAY_ADMIN_TOKEN` sets a single admin token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// A listener address, or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl Serialize for Listen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(a) => s.serialize_str(&a.to_string()),
            None => s.serialize_str("off"),
        }
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim() {
            "" | "off" | "none" | "disabled" => Ok(Listen(None)),
            a => a.parse().map(|a| Listen(Some(a))).map_err(|_| {
                serde::de::Error::custom(format!("invalid listen address {a:?}: expected IP:PORT or \"off\""))
            }),
        }
    }
}

/// Durations written as "10s", "500ms", "24h".
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim()).map_err(|e| {
            serde::de::Error::custom(format!("invalid duration {s:?} ({e}); write e.g. \"10s\", \"500ms\", \"24h\""))
        })
    }
}

/// Everything the gateway needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

/// Listener addresses (`"off"` disables one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// Plain TCP, what registers in the field speak.
    pub tcp: Listen,
    /// TLS over TCP.
    pub tls: Listen,
    /// QUIC (UDP).
    pub quic: Listen,
    /// Admin HTTP API.
    pub admin: Listen,
    /// `/metrics`, `/livez`, `/readyz`.
    pub metrics: Listen,
}

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain. Empty: a self-signed development certificate is generated
    /// in `<data_dir>/tls/dev-cert.pem` (and its key next to it) and its path logged.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// PEM CA bundle for register client certificates; with it set, `client_auth` decides.
    pub client_ca: Option<PathBuf>,
    /// `none` (default), `optional` or `required` client-certificate authentication.
    pub client_auth: ClientAuth,
}

/// Client-certificate policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// No client certificates.
    #[default]
    None,
    /// Verified when presented.
    Optional,
    /// Required.
    Required,
}

/// Bounds. Every per-connection resource has one, and every close has a counted reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open TCP/TLS connections at most (0: derived from the process file limit, keeping
    /// 256 descriptors for storage, listeners and the admin plane). Past it, new
    /// connections are accepted and closed at once with reason `shed_connections`.
    pub max_connections: usize,
    /// Open QUIC connections at most (they share one UDP socket, so they are not bound by
    /// the file limit).
    pub max_quic_connections: usize,
    /// Largest session body accepted (the container); the wire field is a u16.
    pub max_body_bytes: usize,
    /// Most requisites in one document, nested ones included: a bound on the work of one
    /// document. A larger one is refused for that attempt (closed, counted
    /// `too_many_requisites`), never stored: it is this server's limit, not the format's.
    pub max_requisites: u32,
    /// Documents being written to storage at once, over all connections. When exhausted,
    /// connections stop reading (backpressure).
    pub max_inflight_documents: usize,
    /// Bytes of message buffers held at once over all connections; when exhausted,
    /// connections wait before reading a message body.
    pub max_buffered_bytes: usize,
    /// TLS/QUIC handshake deadline.
    #[serde(with = "duration")]
    pub handshake_timeout: Duration,
    /// Longest wait for the first byte of the next message.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Longest time for a whole message to arrive once its first byte has (slow clients).
    #[serde(with = "duration")]
    pub frame_timeout: Duration,
    /// Longest time to write a reply.
    #[serde(with = "duration")]
    pub write_timeout: Duration,
    /// Longest wait for the durable write of a document; past it the connection is closed
    /// without an acknowledgment (the register retries; the write is idempotent).
    #[serde(with = "duration")]
    pub ack_timeout: Duration,
}

/// QUIC transport parameters, sized for small documents rather than bulk transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuicConfig {
    /// Concurrent bidirectional streams per connection (one per exchange).
    pub max_streams_per_connection: u32,
    /// Receive window per stream, bytes (a document is at most ~33 KiB).
    pub stream_window: u32,
    /// Receive window per connection, bytes.
    pub connection_window: u32,
    /// Use address validation (Retry) for every new connection.
    pub retry: bool,
}

/// Acceptance rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// After `paid_until`, documents are still accepted for this long.
    #[serde(with = "duration")]
    pub tariff_grace: Duration,
    /// A replaced FN's documents are accepted if their own time (1012) is before the
    /// replacement plus this tolerance (clock skew of registers).
    #[serde(with = "duration")]
    pub replaced_fn_tolerance: Duration,
    /// How often register changes made by other nodes are picked up.
    #[serde(with = "duration")]
    pub registry_refresh: Duration,
    /// Accept bodies that are not plaintext documents (FN encryption on): stored verbatim
    /// and acknowledged at container level.
    pub accept_opaque: bool,
}

/// Which acknowledgment signer to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignerConfig {
    /// `software` (keyed MAC; the HSM integration is another implementation of the same
    /// trait).
    pub kind: String,
    /// Hex key of the software signer. Empty: a random key is created in
    /// `<data_dir>/signer.key` at first start (development).
    pub key_hex: Option<String>,
}

/// Storage backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `embedded` (default, in `data_dir`) or `scylla`.
    pub backend: String,
    /// Embedded: `sync_all` (fsync, default) or `sync_data` (fdatasync).
    pub sync: String,
    /// Embedded: most documents in one group commit.
    pub max_batch: usize,
    /// Embedded: append requests queued for the writer at most.
    pub queue_capacity: usize,
    /// ScyllaDB contact points.
    pub nodes: Vec<String>,
    /// ScyllaDB keyspace.
    pub keyspace: String,
    /// ScyllaDB local datacenter.
    pub local_dc: String,
    /// ScyllaDB write consistency (`local_quorum`, `quorum`, `each_quorum`, `all`).
    pub consistency: String,
    /// ScyllaDB request timeout.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// ScyllaDB replication factor in the local datacenter, used by `gateway migrate` when
    /// it creates the keyspace (an existing keyspace is left as it is).
    pub replication_factor: u32,
}

/// Admin API authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Named tokens. Secrets are given as their SHA-256 (hex) so the file holds no
    /// secret: `printf %s "$TOKEN" | sha256sum`.
    pub tokens: Vec<TokenConfig>,
    /// With no token configured at all, create `<data_dir>/admin-token` (mode 0600) at
    /// first start so that `adminctl` works on a developer machine with no set-up.
    pub dev_token: bool,
}

/// One admin token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it (recorded in the audit log).
    pub name: String,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// `admin` or `viewer`.
    pub role: String,
}

/// Graceful shutdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Idle connections are closed at random moments over this period, so that thousands
    /// of registers do not reconnect at once; in-flight documents finish first.
    #[serde(with = "duration")]
    pub drain_period: Duration,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// An `EnvFilter` directive, e.g. `info` or `gateway=debug,info` (`RUST_LOG` wins).
    pub level: String,
}

/// Forwarding to the FNS. Every stored document is queued in the outbox atomically with
/// its write; the forwarder delivers it at least once, idempotent by (FN, FD).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FnsConfig {
    /// Endpoint receiving one JSON POST per document (`http://` or `https://`). Unset:
    /// forwarding is off and documents wait in the outbox (the backlog metrics show them).
    pub url: Option<String>,
    /// Deadline of one delivery request, connection included.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Delivery requests in flight at once (per node).
    pub concurrency: usize,
    /// Due deliveries taken from one partition per round (1 to 1000).
    pub batch: u32,
    /// Pause between rounds that found nothing to deliver.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// Delay before the first retry of a failed delivery; it doubles with every attempt
    /// (with jitter) up to `retry_max`.
    #[serde(with = "duration")]
    pub retry_initial: Duration,
    /// Longest delay between two attempts of one document.
    #[serde(with = "duration")]
    pub retry_max: Duration,
    /// Delivery partitions are leased for this long and renewed at a third of it; a dead
    /// node's partitions are taken over when its leases expire.
    #[serde(with = "duration")]
    pub lease_ttl: Duration,
    /// How often the backlog size and the age of the oldest undelivered document are
    /// sampled for the metrics.
    #[serde(with = "duration")]
    pub backlog_interval: Duration,
}

/// Alert rules: evaluated by one node of a cluster at a time (lease `alerts-evaluator`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Evaluate rules and send webhook notifications on this node.
    pub enabled: bool,
    /// Time between two evaluations of every enabled rule over every register.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// A firing alert resolves only after its condition was absent in this many
    /// consecutive evaluations (no flapping on one missed evaluation).
    pub resolve_after: u32,
    /// How often due webhook notifications are sent.
    #[serde(with = "duration")]
    pub notify_interval: Duration,
    /// Deadline of one webhook request.
    #[serde(with = "duration")]
    pub webhook_timeout: Duration,
    /// Attempts before a notification is abandoned (it stays visible as abandoned).
    pub webhook_max_attempts: u32,
    /// Delay before the first webhook retry; doubles with every attempt (with jitter).
    #[serde(with = "duration")]
    pub webhook_retry_initial: Duration,
    /// Longest delay between two webhook attempts.
    #[serde(with = "duration")]
    pub webhook_retry_max: Duration,
    /// The evaluator and notifier leases live this long without renewal.
    #[serde(with = "duration")]
    pub lease_ttl: Duration,
}

/// Resend jobs: one node at a time runs them (lease `resend-runner`), through the FNS
/// endpoint of `[fns]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResendConfig {
    /// How often the runner looks for pending jobs.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// Documents read per page (1 to 1000); progress is persisted after every page.
    pub page_size: u32,
    /// Delivery requests in flight at once.
    pub concurrency: usize,
    /// Attempts per document before it counts as failed for the job.
    pub max_attempts: u32,
    /// Delay before the first retry of a document; doubles with every attempt.
    #[serde(with = "duration")]
    pub retry_initial: Duration,
    /// The runner lease lives this long without renewal.
    #[serde(with = "duration")]
    pub lease_ttl: Duration,
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
        }
    }
}

impl Default for FnsConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout: Duration::from_secs(10),
            concurrency: 32,
            batch: 500,
            poll_interval: Duration::from_secs(1),
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            lease_ttl: Duration::from_secs(30),
            backlog_interval: Duration::from_secs(10),
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(60),
            resolve_after: 3,
            notify_interval: Duration::from_secs(1),
            webhook_timeout: Duration::from_secs(5),
            webhook_max_attempts: 10,
            webhook_retry_initial: Duration::from_secs(2),
            webhook_retry_max: Duration::from_secs(600),
            lease_ttl: Duration::from_secs(30),
        }
    }
}

impl Default for ResendConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            page_size: 500,
            concurrency: 16,
            max_attempts: 5,
            retry_initial: Duration::from_millis(500),
            lease_ttl: Duration::from_secs(30),
        }
    }
}

fn addr(s: &str) -> Listen {
    Listen(s.parse().ok())
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            tcp: addr("127.0.0.1:7777"),
            tls: addr("127.0.0.1:7778"),
            quic: addr("127.0.0.1:7778"),
            admin: addr("127.0.0.1:8080"),
            metrics: addr("127.0.0.1:9477"),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 0,
            max_quic_connections: 250_000,
            max_body_bytes: ffd::Limits::default().max_body_len,
            max_requisites: ffd::Limits::default().max_requisites,
            max_inflight_documents: 8192,
            max_buffered_bytes: 256 << 20,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            frame_timeout: Duration::from_secs(20),
            write_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self { max_streams_per_connection: 4, stream_window: 64 << 10, connection_window: 256 << 10, retry: false }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            tariff_grace: Duration::from_secs(3 * 86_400),
            replaced_fn_tolerance: Duration::from_secs(86_400),
            registry_refresh: Duration::from_secs(30),
            accept_opaque: true,
        }
    }
}

impl Default for SignerConfig {
    fn default() -> Self {
        Self { kind: "software".into(), key_hex: None }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: "embedded".into(),
            sync: "sync_all".into(),
            max_batch: 4096,
            queue_capacity: 16_384,
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "ofd".into(),
            local_dc: "dc1".into(),
            consistency: "local_quorum".into(),
            request_timeout: Duration::from_secs(5),
            replication_factor: 3,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { tokens: Vec::new(), dev_token: true }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { drain_period: Duration::from_secs(10) }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: "text".into(), level: "info,fjall=warn,lsm_tree=warn".into() }
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
        if storage::Inn::parse(&self.ofd_inn).is_err() {
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
            }
            other => {
                return invalid("storage.backend", format!("unknown backend {other:?} (embedded or scylla)"));
            }
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

    /// Checks `[fns]`, `[alerts]` and `[resend]`.
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
