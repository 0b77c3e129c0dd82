//! Configuration of the ScyllaDB backend and of its schema migration.
//!
//! [`ScyllaConfig`] is what the gateway's `[storage]` section (with `backend = "scylla"`)
//! deserialises into; [`ScyllaConfig::validate`] runs before anything connects, so an
//! unsafe setting stops the process at start-up instead of losing an acknowledged
//! document later.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use scylla::statement::Consistency;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Consistency level of the writes (and, where legal, the reads) of the store.
///
/// Only levels that wait for a majority of replicas are accepted for the ack path: with
/// `ONE`/`LOCAL_ONE` an acknowledged document lives on one replica until hinted handoff
/// or repair copy it (and hints are neither durable nor kept beyond 3 hours), and `ANY`
/// may acknowledge a write that reached no replica at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsistencyLevel {
    /// A hint is enough: refused.
    #[serde(alias = "any")]
    Any,
    /// One replica: refused.
    #[serde(alias = "one")]
    One,
    /// Two replicas (whatever the replication factor): refused (not a majority for RF ≥ 4).
    #[serde(alias = "two")]
    Two,
    /// Three replicas: refused for the same reason as `TWO`.
    #[serde(alias = "three")]
    Three,
    /// One replica in the local datacenter: refused.
    #[serde(alias = "local_one")]
    LocalOne,
    /// Majority of the replicas in the local datacenter (the default).
    #[serde(alias = "local_quorum")]
    LocalQuorum,
    /// Majority of all replicas, across datacenters.
    #[serde(alias = "quorum")]
    Quorum,
    /// Majority in every datacenter (writes; reads then use `LOCAL_QUORUM`).
    #[serde(alias = "each_quorum")]
    EachQuorum,
    /// Every replica: safe, but one node down stops every write.
    #[serde(alias = "all")]
    All,
}

impl ConsistencyLevel {
    /// The driver's value.
    pub fn to_driver(self) -> Consistency {
        match self {
            Self::Any => Consistency::Any,
            Self::One => Consistency::One,
            Self::Two => Consistency::Two,
            Self::Three => Consistency::Three,
            Self::LocalOne => Consistency::LocalOne,
            Self::LocalQuorum => Consistency::LocalQuorum,
            Self::Quorum => Consistency::Quorum,
            Self::EachQuorum => Consistency::EachQuorum,
            Self::All => Consistency::All,
        }
    }

    /// Whether an acknowledgment may be sent after a write at this level returned.
    pub fn is_safe_for_acks(self) -> bool {
        matches!(self, Self::LocalQuorum | Self::Quorum | Self::EachQuorum | Self::All)
    }

    /// The level reads use: the same, except `EACH_QUORUM`, which is write-only in CQL
    /// (a `LOCAL_QUORUM` read overlaps every `EACH_QUORUM` write in the local DC).
    pub fn for_reads(self) -> Self {
        match self {
            Self::EachQuorum => Self::LocalQuorum,
            other => other,
        }
    }

    /// CQL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "ANY",
            Self::One => "ONE",
            Self::Two => "TWO",
            Self::Three => "THREE",
            Self::LocalOne => "LOCAL_ONE",
            Self::LocalQuorum => "LOCAL_QUORUM",
            Self::Quorum => "QUORUM",
            Self::EachQuorum => "EACH_QUORUM",
            Self::All => "ALL",
        }
    }
}

impl std::str::FromStr for ConsistencyLevel {
    type Err = ConfigError;

    /// Parses the CQL spelling in any case (`LOCAL_QUORUM`, `local_quorum`), so the
    /// gateway's `[storage] consistency` string converts without a table of its own.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ALL: [ConsistencyLevel; 9] = [
            ConsistencyLevel::Any,
            ConsistencyLevel::One,
            ConsistencyLevel::Two,
            ConsistencyLevel::Three,
            ConsistencyLevel::LocalOne,
            ConsistencyLevel::LocalQuorum,
            ConsistencyLevel::Quorum,
            ConsistencyLevel::EachQuorum,
            ConsistencyLevel::All,
        ];
        ALL.into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| refuse("consistency", format!("unknown consistency level {s:?}")))
    }
}

impl fmt::Display for ConsistencyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the gateway (or adminctl) connects to ScyllaDB. Deserialised from the
/// `[storage]` section of the gateway config when `backend = "scylla"`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScyllaConfig {
    /// Contact points, `host:port` (port 9042 if omitted). The driver discovers the rest
    /// of the cluster from them; list two or three so that one down node does not stop a
    /// restart.
    pub nodes: Vec<String>,
    /// Keyspace holding the schema of `config/schema/*.cql`.
    #[serde(default = "default_keyspace")]
    pub keyspace: String,
    /// The datacenter this gateway runs in: requests go to its replicas first and
    /// `LOCAL_QUORUM` counts its replicas. May be omitted only when the cluster has a
    /// single datacenter (checked at connect).
    #[serde(default)]
    pub local_dc: Option<String>,
    /// Consistency of writes (and reads). Only majority levels are accepted.
    #[serde(default = "default_consistency")]
    pub consistency: ConsistencyLevel,
    /// Client-side timeout of one request, milliseconds. Keep it above the server's
    /// write timeout (2000 ms by default) so the server's own, more informative timeout
    /// arrives first, and far below a register's own wait for an answer. A timeout is an
    /// unknown outcome: nothing is acknowledged and the register retries.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// TCP connect timeout, milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// User name, when the cluster requires authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (prefer an environment override to a file value). Never printed.
    #[serde(default)]
    pub password: Option<String>,
    /// Refuse to start when the keyspace's replication factor in the local datacenter is
    /// below this (3 in production: a quorum of 3 survives one node). Tests against a
    /// single node set it to 1.
    #[serde(default = "default_min_rf")]
    pub min_replication_factor: u32,
    /// Documents appended concurrently by one `append_documents` call.
    #[serde(default = "default_append_concurrency")]
    pub append_concurrency: usize,
    /// How long a journal entry may take to become visible after its position (the
    /// appending node's clock) was taken, milliseconds. An append whose entry took longer
    /// than half of it is not acknowledged; the journal followers re-read the last
    /// `journal_settle_ms` behind what they have read, and never move their persisted
    /// cursor past entries younger than this. Must be at least 2 × `request_timeout_ms`;
    /// clock skew between gateway nodes beyond a quarter of it is refused.
    #[serde(default = "default_journal_settle_ms", alias = "outbox_settle_ms")]
    pub journal_settle_ms: u64,
    /// Send an idempotent request (a read, a plain write, the document's conditional
    /// insert) to a second replica when the first has not answered after this long,
    /// milliseconds; 0 turns it off. Bounds the stall of a node that died but is not yet
    /// marked down.
    #[serde(default = "default_speculative_delay_ms")]
    pub speculative_delay_ms: u64,
    /// How far behind the derived views (time index, register activity, FD gaps) of a
    /// journal partition may fall before appends to that partition are refused,
    /// milliseconds (backpressure: registers get no answer and retransmit later). At
    /// least 3 × `journal_settle_ms` (another node's cursor trails by the settle time).
    #[serde(default = "default_max_derived_lag_ms")]
    pub max_derived_lag_ms: u64,
    /// This gateway's name among the nodes sharing the keyspace (its leases and heartbeat
    /// row). Default: a random name per start.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Start on a cluster whose `commitlog_sync` is `periodic` (replicas answer from
    /// memory). Refused by default: an acknowledged document must survive a power cut.
    #[serde(default)]
    pub allow_periodic_commitlog: bool,
}

fn default_keyspace() -> String {
    "ofd".to_owned()
}
fn default_consistency() -> ConsistencyLevel {
    ConsistencyLevel::LocalQuorum
}
fn default_request_timeout_ms() -> u64 {
    3_000
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_min_rf() -> u32 {
    3
}
fn default_append_concurrency() -> usize {
    64
}
fn default_journal_settle_ms() -> u64 {
    10_000
}
fn default_max_derived_lag_ms() -> u64 {
    300_000
}
fn default_speculative_delay_ms() -> u64 {
    200
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        Self {
            nodes: vec!["127.0.0.1:9042".to_owned()],
            keyspace: default_keyspace(),
            local_dc: None,
            consistency: default_consistency(),
            request_timeout_ms: default_request_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            username: None,
            password: None,
            min_replication_factor: default_min_rf(),
            append_concurrency: default_append_concurrency(),
            journal_settle_ms: default_journal_settle_ms(),
            speculative_delay_ms: default_speculative_delay_ms(),
            max_derived_lag_ms: default_max_derived_lag_ms(),
            node_id: None,
            allow_periodic_commitlog: false,
        }
    }
}

impl fmt::Debug for ScyllaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaConfig")
            .field("nodes", &self.nodes)
            .field("keyspace", &self.keyspace)
            .field("local_dc", &self.local_dc)
            .field("consistency", &self.consistency)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("min_replication_factor", &self.min_replication_factor)
            .field("append_concurrency", &self.append_concurrency)
            .field("journal_settle_ms", &self.journal_settle_ms)
            .field("speculative_delay_ms", &self.speculative_delay_ms)
            .field("max_derived_lag_ms", &self.max_derived_lag_ms)
            .field("node_id", &self.node_id)
            .field("allow_periodic_commitlog", &self.allow_periodic_commitlog)
            .finish()
    }
}

/// Why a configuration was refused. Each message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage.{field}: {rule}")]
pub struct ConfigError {
    /// Field name.
    pub field: &'static str,
    /// The rule broken.
    pub rule: String,
}

impl From<ConfigError> for StoreError {
    fn from(e: ConfigError) -> Self {
        StoreError::Invalid(e.to_string())
    }
}

fn refuse(field: &'static str, rule: impl Into<String>) -> ConfigError {
    ConfigError { field, rule: rule.into() }
}

/// Checks a keyspace name: CQL unquoted identifier, lower case, at most 48 characters
/// (ScyllaDB's limit). Lower case only, because unquoted identifiers are folded to lower
/// case and the store quotes nothing.
pub fn validate_keyspace_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name.as_bytes()[0].is_ascii_lowercase()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(refuse(
            "keyspace",
            format!("{name:?} must be 1 to 48 characters: a lower-case letter, then lower-case letters, digits or '_'"),
        ))
    }
}

impl ScyllaConfig {
    /// Builds and validates a configuration from the fields of the gateway's
    /// `[storage]` section (`backend = "scylla"`): contact points, keyspace, local
    /// datacenter (empty = none: allowed only for a single-DC cluster), consistency in
    /// any case (`local_quorum`, `LOCAL_QUORUM`), request timeout. Every other field
    /// keeps its default.
    pub fn from_storage_section(
        nodes: Vec<String>,
        keyspace: &str,
        local_dc: &str,
        consistency: &str,
        request_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let cfg = Self {
            nodes,
            keyspace: keyspace.to_owned(),
            local_dc: (!local_dc.trim().is_empty()).then(|| local_dc.trim().to_owned()),
            consistency: consistency.parse()?,
            request_timeout_ms: u64::try_from(request_timeout.as_millis()).unwrap_or(u64::MAX),
            ..Self::default()
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The journal settle time.
    pub fn journal_settle(&self) -> Duration {
        Duration::from_millis(self.journal_settle_ms)
    }

    /// The largest lag of a partition's derived views before its appends are refused.
    pub fn max_derived_lag(&self) -> Duration {
        Duration::from_millis(self.max_derived_lag_ms)
    }

    /// The largest clock offset from the cluster this node tolerates (a quarter of the
    /// settle time).
    pub fn max_clock_skew(&self) -> Duration {
        self.journal_settle() / 4
    }

    /// Checks everything that can be checked without a cluster. Refuses consistency
    /// levels that could acknowledge a document held by fewer than a majority of replicas
    /// (reliability §1.4 / test C5).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nodes.is_empty() {
            return Err(refuse("nodes", "at least one contact point is required"));
        }
        for n in &self.nodes {
            if n.trim().is_empty() || n.contains(char::is_whitespace) {
                return Err(refuse("nodes", format!("{n:?} is not a host or host:port")));
            }
        }
        validate_keyspace_name(&self.keyspace)?;
        if let Some(dc) = &self.local_dc {
            validate_dc_name(dc).map_err(|rule| refuse("local_dc", rule))?;
        }
        if !self.consistency.is_safe_for_acks() {
            return Err(refuse(
                "consistency",
                format!(
                    "{} can acknowledge a document that fewer than a majority of replicas hold; \
                     use LOCAL_QUORUM (default), QUORUM, EACH_QUORUM or ALL",
                    self.consistency
                ),
            ));
        }
        if !(100..=120_000).contains(&self.request_timeout_ms) {
            return Err(refuse("request_timeout_ms", "must be between 100 and 120000"));
        }
        if !(100..=120_000).contains(&self.connect_timeout_ms) {
            return Err(refuse("connect_timeout_ms", "must be between 100 and 120000"));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(refuse("password", "a password needs a username"));
        }
        if !(1..=9).contains(&self.min_replication_factor) {
            return Err(refuse("min_replication_factor", "must be between 1 and 9"));
        }
        if !(1..=1024).contains(&self.append_concurrency) {
            return Err(refuse("append_concurrency", "must be between 1 and 1024"));
        }
        if self.journal_settle_ms < self.request_timeout_ms.saturating_mul(2) {
            return Err(refuse(
                "journal_settle_ms",
                format!(
                    "must be at least 2 × request_timeout_ms ({} ms): the journal followers must \
                     not pass an entry that is still being written",
                    self.request_timeout_ms.saturating_mul(2)
                ),
            ));
        }
        if self.journal_settle_ms > 600_000 {
            return Err(refuse("journal_settle_ms", "must be at most 600000 (derived views lag by about this much)"));
        }
        if self.max_derived_lag_ms < self.journal_settle_ms.saturating_mul(3) {
            return Err(refuse(
                "max_derived_lag_ms",
                format!(
                    "must be at least 3 × journal_settle_ms ({} ms): another node's persisted cursor \
                     trails by the settle time",
                    self.journal_settle_ms.saturating_mul(3)
                ),
            ));
        }
        if self.speculative_delay_ms > 0 && self.speculative_delay_ms < 10 {
            return Err(refuse("speculative_delay_ms", "must be 0 (off) or at least 10"));
        }
        if let Some(n) = &self.node_id
            && (n.is_empty() || n.len() > 128)
        {
            return Err(refuse("node_id", "must be 1 to 128 characters"));
        }
        Ok(())
    }
}

/// Checks a datacenter name, which is spliced into the replication map of the keyspace.
pub(crate) fn validate_dc_name(dc: &str) -> Result<(), String> {
    let ok = !dc.is_empty()
        && dc.len() <= 64
        && dc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok { Ok(()) } else { Err(format!("{dc:?} must be 1 to 64 letters, digits, '_', '-' or '.'")) }
}

/// How [`migrate`](super::migrate) creates the keyspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationConfig {
    /// Keyspace name.
    pub keyspace: String,
    /// Replication factor per datacenter (`NetworkTopologyStrategy`), e.g. `dc1 = 3`.
    /// Used only when the keyspace is created; an existing keyspace is left as it is
    /// (change replication with `ALTER KEYSPACE` and a repair, deliberately).
    pub replication: BTreeMap<String, u32>,
    /// Create the keyspace with `tablets = {'enabled': false}` (default true). ScyllaDB
    /// (up to 2025.x at least) does not support lightweight transactions, which the
    /// delivery leases use, in tablet keyspaces. Set false only for a server without the
    /// tablets option (ScyllaDB < 6.0), which rejects the clause.
    #[serde(default = "default_true")]
    pub disable_tablets: bool,
}

fn default_true() -> bool {
    true
}

impl MigrationConfig {
    /// A keyspace replicated `rf` times in one datacenter.
    pub fn single_dc(keyspace: impl Into<String>, dc: impl Into<String>, rf: u32) -> Self {
        Self { keyspace: keyspace.into(), replication: BTreeMap::from([(dc.into(), rf)]), disable_tablets: true }
    }

    /// Checks names and factors (they are spliced into CQL, so they must be inert).
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_keyspace_name(&self.keyspace)?;
        if self.replication.is_empty() {
            return Err(refuse("replication", "name at least one datacenter and its replication factor"));
        }
        for (dc, rf) in &self.replication {
            validate_dc_name(dc).map_err(|rule| refuse("replication", rule))?;
            if !(1..=9).contains(rf) {
                return Err(refuse(
                    "replication",
                    format!("replication factor of {dc} must be between 1 and 9, got {rf}"),
                ));
            }
        }
        Ok(())
    }

    /// The CQL replication map.
    pub fn replication_cql(&self) -> String {
        let mut out = String::from("{'class': 'NetworkTopologyStrategy'");
        for (dc, rf) in &self.replication {
            out.push_str(&format!(", '{dc}': {rf}"));
        }
        out.push('}');
        out
    }

    /// Extra keyspace options appended after `durable_writes`.
    pub fn keyspace_options_cql(&self) -> &'static str {
        if self.disable_tablets { " AND tablets = {'enabled': false}" } else { "" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_local_quorum() {
        let c = ScyllaConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.consistency, ConsistencyLevel::LocalQuorum);
        assert_eq!(c.consistency.to_driver(), Consistency::LocalQuorum);
    }

    #[test]
    fn unsafe_consistency_levels_are_refused() {
        for cl in [
            ConsistencyLevel::Any,
            ConsistencyLevel::One,
            ConsistencyLevel::LocalOne,
            ConsistencyLevel::Two,
            ConsistencyLevel::Three,
        ] {
            let c = ScyllaConfig { consistency: cl, ..ScyllaConfig::default() };
            let e = c.validate().expect_err("must refuse");
            assert_eq!(e.field, "consistency", "{cl}");
            assert!(e.rule.contains(cl.as_str()), "{e}");
            // and as a StoreError it is an invalid request, not a transient failure
            assert_eq!(StoreError::from(e).code(), "invalid");
        }
        for cl in [
            ConsistencyLevel::LocalQuorum,
            ConsistencyLevel::Quorum,
            ConsistencyLevel::EachQuorum,
            ConsistencyLevel::All,
        ] {
            let c = ScyllaConfig { consistency: cl, ..ScyllaConfig::default() };
            assert_eq!(c.validate(), Ok(()), "{cl}");
        }
    }

    #[test]
    fn consistency_parses_from_config_spelling() {
        #[derive(Deserialize)]
        struct W {
            c: ConsistencyLevel,
        }
        let w: W = toml_like("LOCAL_QUORUM");
        assert_eq!(w.c, ConsistencyLevel::LocalQuorum);
        let w: W = toml_like("EACH_QUORUM");
        assert_eq!(w.c, ConsistencyLevel::EachQuorum);
        assert_eq!(w.c.for_reads(), ConsistencyLevel::LocalQuorum);
        fn toml_like(v: &str) -> W {
            serde_json::from_str(&format!("{{\"c\":\"{v}\"}}")).expect("parse")
        }
        // the gateway config spells them in lower case
        assert_eq!(toml_like("local_quorum").c, ConsistencyLevel::LocalQuorum);
        assert!(serde_json::from_str::<W>("{\"c\":\"LOCALQUORUM\"}").is_err());
        assert_eq!("Each_Quorum".parse::<ConsistencyLevel>(), Ok(ConsistencyLevel::EachQuorum));
        assert_eq!(" one ".parse::<ConsistencyLevel>(), Ok(ConsistencyLevel::One));
        assert_eq!("serial".parse::<ConsistencyLevel>().expect_err("serial is not a write level").field, "consistency");
    }

    #[test]
    fn config_deserialises_with_defaults_and_refuses_unknown_fields() {
        let c: ScyllaConfig = serde_json::from_str(
            r#"{"nodes": ["10.0.0.1:9042", "10.0.0.2"], "keyspace": "ofd", "local_dc": "dc1", "consistency": "QUORUM"}"#,
        )
        .expect("parse");
        assert_eq!(c.consistency, ConsistencyLevel::Quorum);
        assert_eq!(c.request_timeout_ms, 3000);
        assert_eq!(c.journal_settle_ms, 10_000);
        assert_eq!(c.min_replication_factor, 3);
        assert_eq!(c.validate(), Ok(()));
        assert!(
            serde_json::from_str::<ScyllaConfig>(r#"{"nodes": ["a"], "consistancy": "ONE"}"#).is_err(),
            "a misspelt field must not silently fall back to a default"
        );
    }

    #[test]
    fn other_fields_are_checked() {
        let bad = |f: fn(&mut ScyllaConfig)| {
            let mut c = ScyllaConfig::default();
            f(&mut c);
            c.validate().expect_err("must refuse").field
        };
        assert_eq!(bad(|c| c.nodes.clear()), "nodes");
        assert_eq!(bad(|c| c.nodes = vec!["a b".into()]), "nodes");
        assert_eq!(bad(|c| c.keyspace = "Ofd".into()), "keyspace");
        assert_eq!(bad(|c| c.keyspace = "ofd; DROP".into()), "keyspace");
        assert_eq!(bad(|c| c.keyspace = "x".repeat(49)), "keyspace");
        assert_eq!(bad(|c| c.local_dc = Some("dc'1".into())), "local_dc");
        assert_eq!(bad(|c| c.request_timeout_ms = 10), "request_timeout_ms");
        assert_eq!(bad(|c| c.password = Some("p".into())), "password");
        assert_eq!(bad(|c| c.min_replication_factor = 0), "min_replication_factor");
        assert_eq!(bad(|c| c.append_concurrency = 0), "append_concurrency");
        assert_eq!(bad(|c| c.journal_settle_ms = 1000), "journal_settle_ms");
        assert_eq!(bad(|c| c.max_derived_lag_ms = 29_999), "max_derived_lag_ms");
        assert_eq!(bad(|c| c.speculative_delay_ms = 5), "speculative_delay_ms");
    }

    #[test]
    fn builds_from_the_gateway_storage_section() {
        let c = ScyllaConfig::from_storage_section(
            vec!["10.0.0.1:9042".into()],
            "ofd",
            "dc1",
            "local_quorum",
            Duration::from_secs(5),
        )
        .expect("valid");
        assert_eq!(c.local_dc.as_deref(), Some("dc1"));
        assert_eq!(c.consistency, ConsistencyLevel::LocalQuorum);
        assert_eq!(c.request_timeout_ms, 5000);
        let none = ScyllaConfig::from_storage_section(vec!["a".into()], "ofd", " ", "QUORUM", Duration::from_secs(2))
            .expect("valid");
        assert_eq!(none.local_dc, None, "empty local_dc means none");
        let e = ScyllaConfig::from_storage_section(vec!["a".into()], "ofd", "dc1", "one", Duration::from_secs(2))
            .expect_err("ONE is refused");
        assert_eq!(e.field, "consistency");
        assert!(ScyllaConfig::from_storage_section(vec![], "ofd", "", "quorum", Duration::from_secs(2)).is_err());
    }

    #[test]
    fn debug_never_prints_the_password() {
        let c = ScyllaConfig {
            username: Some("ofd".into()),
            password: Some("canary-secret".into()),
            ..ScyllaConfig::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("canary-secret"), "{s}");
        assert!(s.contains("<redacted>"), "{s}");
    }

    #[test]
    fn migration_config_builds_inert_cql() {
        let m = MigrationConfig::single_dc("ofd", "dc1", 3);
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.replication_cql(), "{'class': 'NetworkTopologyStrategy', 'dc1': 3}");
        assert_eq!(m.keyspace_options_cql(), " AND tablets = {'enabled': false}");
        let mut two = m.clone();
        two.replication.insert("dc2".into(), 2);
        assert_eq!(two.replication_cql(), "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}");
        let mut bad = m.clone();
        bad.replication = BTreeMap::from([("dc1': 1}; DROP KEYSPACE x; --".into(), 3)]);
        assert_eq!(bad.validate().expect_err("injection").field, "replication");
        let mut zero = m.clone();
        zero.replication = BTreeMap::from([("dc1".into(), 0)]);
        assert!(zero.validate().is_err());
        let mut none = m;
        none.replication.clear();
        assert!(none.validate().is_err());
    }
}
