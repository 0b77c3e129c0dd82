//! The domain model. Every type is serde-serialisable so that the admin API, `adminctl`
//! and the backends share one vocabulary; nothing here depends on a backend.

use std::time::Duration;

use bytes::Bytes;
use ffd::FnNumber;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{IdError, Inn, Rnm, Timestamp};

// ============================================================================ registers

/// Whether a register is allowed to deliver documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterStatus {
    /// Accepted (subject to its paid period).
    Active,
    /// Suspended by an admin: documents are not acknowledged.
    Suspended,
}

/// An FN the register used before its current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FnRecord {
    /// The old FN.
    pub fn_number: FnNumber,
    /// When it became the register's FN (if known).
    pub active_from: Option<Timestamp>,
    /// When it was replaced. Documents it produced up to this moment (by their own time,
    /// tag 1012, with a day of tolerance for clock skew) are still accepted.
    pub replaced_at: Timestamp,
}

/// A cash register (KKT) under contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// Registration number, the register's identity.
    pub rnm: Rnm,
    /// KKT serial number (tag 1013), needed to verify the RNM check code.
    pub kkt_serial: String,
    /// Owner (user) INN.
    pub owner_inn: Inn,
    /// Display name (shop, till).
    pub name: String,
    /// Address of settlement.
    #[serde(default)]
    pub address: String,
    /// Group or shop, for scoping lists and alert rules.
    #[serde(default)]
    pub group: Option<String>,
    /// The current FN.
    pub fn_number: FnNumber,
    /// When the current FN became active.
    #[serde(default)]
    pub fn_since: Option<Timestamp>,
    /// Previous FNs, oldest first.
    #[serde(default)]
    pub fn_history: Vec<FnRecord>,
    /// Tariff plan name.
    #[serde(default)]
    pub tariff: Option<String>,
    /// A plan to switch to at the end of the paid period.
    #[serde(default)]
    pub next_tariff: Option<String>,
    /// End of the paid period (acceptance stops after it plus the configured grace).
    #[serde(default)]
    pub paid_until: Option<Timestamp>,
    /// Active or suspended.
    pub status: RegisterStatus,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Incremented on every change (optimistic concurrency).
    #[serde(default)]
    pub version: u64,
}

/// Why a register record is invalid. Each message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// An identifier failed its format or checksum.
    #[error(transparent)]
    Id(#[from] IdError),
    /// The FN number is not 16 digits.
    #[error("FN number: {0}")]
    Fn(#[from] ffd::fn_number::FnNumberError),
    /// A required text field is empty or too long.
    #[error("{field}: {rule}")]
    Field {
        /// Field name.
        field: &'static str,
        /// The rule broken.
        rule: String,
    },
}

impl Register {
    /// A new active register (version 1, created and updated `now`) with its identity and
    /// current FN; no name, address, group, tariff, paid period or FN history yet.
    pub fn new(rnm: Rnm, kkt_serial: String, owner_inn: Inn, fn_number: FnNumber, now: Timestamp) -> Self {
        Self {
            rnm,
            kkt_serial,
            owner_inn,
            name: String::new(),
            address: String::new(),
            group: None,
            fn_number,
            fn_since: None,
            fn_history: Vec::new(),
            tariff: None,
            next_tariff: None,
            paid_until: None,
            status: RegisterStatus::Active,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Checks everything a register record must satisfy: RNM check code against owner
    /// INN and serial, a 16-digit FN, non-empty bounded name.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.kkt_serial.trim().is_empty() || self.kkt_serial.len() > 20 {
            return Err(ValidationError::Field { field: "kkt_serial", rule: "must be 1 to 20 characters".into() });
        }
        self.rnm.verify(&self.owner_inn, &self.kkt_serial)?;
        FnNumber::parse_strict(&self.fn_number.to_string())?;
        if self.name.trim().is_empty() || self.name.len() > 256 {
            return Err(ValidationError::Field { field: "name", rule: "must be 1 to 256 characters".into() });
        }
        if self.address.len() > 256 {
            return Err(ValidationError::Field { field: "address", rule: "must be at most 256 characters".into() });
        }
        Ok(())
    }

    /// Every FN this register has used: the current one, then the history.
    pub fn all_fns(&self) -> impl Iterator<Item = &FnNumber> {
        std::iter::once(&self.fn_number).chain(self.fn_history.iter().map(|r| &r.fn_number))
    }
}

/// What ingestion learned about a register. Written by the document append path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegisterActivity {
    /// Last time any document of the register was received.
    pub last_seen: Option<Timestamp>,
    /// FN of the last received document.
    pub last_fn: Option<FnNumber>,
    /// Highest FD received from `last_fn`.
    pub last_fd: Option<u32>,
    /// Document time (1012) of the newest document.
    pub last_document_time: Option<Timestamp>,
    /// Documents stored (not counting retransmissions).
    pub documents: u64,
    /// Documents answered with code 14.
    pub flk_errors: u64,
    /// Receive times of the most recent code-14 documents (at most
    /// [`RegisterActivity::RECENT_FLK`]), for windowed alert rules.
    #[serde(default)]
    pub recent_flk: Vec<Timestamp>,
    /// The newest drive report (shift/state reports).
    pub telemetry: Option<TelemetryRecord>,
    /// Registration date, from the newest registration report seen (for FN-term rules).
    #[serde(default)]
    pub registered_at: Option<Timestamp>,
}

impl RegisterActivity {
    /// How many code-14 receive times are kept.
    pub const RECENT_FLK: usize = 32;

    /// Folds one newly stored document into the activity (used by every backend, so that
    /// they agree).
    pub fn absorb(&mut self, doc: &DocumentRecord) {
        let newest = self.last_seen.is_none_or(|t| doc.received_at >= t);
        if newest {
            self.last_seen = Some(doc.received_at);
        }
        match self.last_fn {
            Some(f) if f == doc.fn_number && self.last_fd.is_none_or(|fd| doc.fd > fd) => {
                self.last_fd = Some(doc.fd);
            }
            Some(f) if f == doc.fn_number => {}
            _ if newest => {
                self.last_fn = Some(doc.fn_number);
                self.last_fd = Some(doc.fd);
            }
            _ => {}
        }
        if let Some(t) = doc.doc_time
            && self.last_document_time.is_none_or(|old| t > old)
        {
            self.last_document_time = Some(t);
        }
        self.documents += 1;
        if doc.response_code == 14 {
            self.flk_errors += 1;
            self.recent_flk.push(doc.received_at);
            self.recent_flk.sort_unstable();
            let excess = self.recent_flk.len().saturating_sub(Self::RECENT_FLK);
            self.recent_flk.drain(..excess);
        }
        if let Some(t) = &doc.telemetry {
            let newer = match (&self.telemetry, doc.doc_time) {
                (Some(old), Some(dt)) => old.reported_at.is_none_or(|r| dt >= r),
                _ => true,
            };
            if newer {
                let mut t = t.clone();
                t.reported_at = doc.doc_time.or(Some(doc.received_at));
                self.telemetry = Some(t);
            }
        }
        if matches!(doc.doc_type, 1 | 11)
            && let Some(t) = doc.doc_time
            && self.registered_at.is_none_or(|old| t > old)
        {
            self.registered_at = Some(t);
        }
    }
}

/// A register's report about its drive (from tags 1097/1098/1116/1050–1053/1213).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TelemetryRecord {
    /// 1097.
    pub unsent_documents: Option<u32>,
    /// 1098.
    pub first_unsent_time: Option<Timestamp>,
    /// 1116.
    pub first_unsent_fd: Option<u32>,
    /// 1050–1053 as bits 0–3.
    pub warnings: u8,
    /// 1213.
    pub key_resource_days: Option<u32>,
    /// Document time of the report.
    pub reported_at: Option<Timestamp>,
}

impl From<ffd::Telemetry> for TelemetryRecord {
    fn from(t: ffd::Telemetry) -> Self {
        Self {
            unsent_documents: t.unsent_documents,
            first_unsent_time: t.first_unsent_time.map(|s| Timestamp::from_unix_secs(i64::from(s))),
            first_unsent_fd: t.first_unsent_fd,
            warnings: t.warnings.0,
            key_resource_days: t.key_resource_days,
            reported_at: None,
        }
    }
}

/// An FN that tried to send documents but belongs to no register (the onboarding
/// backlog).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownFn {
    /// The FN.
    pub fn_number: FnNumber,
    /// First attempt.
    pub first_seen: Timestamp,
    /// Latest attempt.
    pub last_seen: Timestamp,
    /// Messages refused.
    pub attempts: u64,
    /// RNM the documents named (tag 1037), if any was readable.
    pub claimed_rnm: Option<String>,
    /// Owner INN the documents named (tag 1018), if any.
    pub claimed_inn: Option<String>,
    /// Address the last attempt came from.
    pub last_peer: Option<String>,
}

/// One or more refused attempts of an unknown FN, aggregated by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownFnSighting {
    /// The FN.
    pub fn_number: FnNumber,
    /// When.
    pub at: Timestamp,
    /// How many attempts this sighting stands for.
    pub attempts: u64,
    /// Tag 1037 if readable.
    pub claimed_rnm: Option<String>,
    /// Tag 1018 if readable.
    pub claimed_inn: Option<String>,
    /// Peer address.
    pub peer: Option<String>,
}

// ============================================================================ tariffs

/// A tariff plan: a paid period of a given length at a given price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffPlan {
    /// Unique name, e.g. "OFD-15".
    pub name: String,
    /// Length of the paid period, in days.
    pub period_days: u32,
    /// Price per period, in kopecks.
    pub price_kopecks: u64,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Creation time.
    pub created_at: Timestamp,
}

impl TariffPlan {
    /// The paid period.
    pub fn period(&self) -> Duration {
        Duration::from_secs(u64::from(self.period_days) * 86_400)
    }

    /// Checks name and period.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(ValidationError::Field {
                field: "name",
                rule: "must be 1 to 64 letters, digits, '-', '_' or '.'".into(),
            });
        }
        if self.period_days == 0 || self.period_days > 3660 {
            return Err(ValidationError::Field { field: "period_days", rule: "must be between 1 and 3660".into() });
        }
        Ok(())
    }
}

// ============================================================================ documents

/// Identity of a fiscal document: (FN number, FD number). Unique forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DocumentKey {
    /// FN number.
    pub fn_number: FnNumber,
    /// FD number.
    pub fd: u32,
}

/// A stored fiscal document with everything needed to answer, show and forward it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRecord {
    /// FN number.
    pub fn_number: FnNumber,
    /// FD number.
    pub fd: u32,
    /// The register it was accepted for.
    pub rnm: Rnm,
    /// Form code.
    pub doc_type: u8,
    /// Document FFD version (tag 1209 value), if plaintext.
    pub ffd_version: Option<u8>,
    /// Document time (tag 1012).
    pub doc_time: Option<Timestamp>,
    /// When the operator received it.
    pub received_at: Timestamp,
    /// Total (tag 1020), kopecks.
    pub total: Option<u64>,
    /// Printed fiscal sign (tag 1077).
    pub fiscal_sign: Option<u32>,
    /// The response code of the acknowledgment (0, 11 or 14).
    pub response_code: u8,
    /// The stable code of the format-logic error, when the code is not 0.
    pub flk_error: Option<String>,
    /// The body could not be read (encrypted): stored verbatim, acknowledged at container
    /// level.
    pub opaque: bool,
    /// Drive report carried by the document.
    pub telemetry: Option<TelemetryRecord>,
    /// The whole container as received.
    #[serde(with = "hex_bytes")]
    pub raw: Bytes,
    /// The acknowledgment container sent for it (re-sent byte for byte on retransmission).
    #[serde(with = "hex_bytes")]
    pub ack: Bytes,
}

impl DocumentRecord {
    /// Its key.
    pub fn key(&self) -> DocumentKey {
        DocumentKey { fn_number: self.fn_number, fd: self.fd }
    }
}

/// What happened to one document of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Newly stored (and queued for FNS delivery).
    Stored,
    /// Already stored: nothing was written. `ack` is the acknowledgment sent the first
    /// time; `identical` tells whether the container bytes were the same (a register
    /// retransmitting) or not (a conflicting document with a reused number: the original
    /// is kept, never overwritten).
    Duplicate {
        /// The stored acknowledgment.
        ack: Bytes,
        /// Same container bytes as stored.
        identical: bool,
    },
}

// ============================================================================ FNS delivery

/// Documents are spread over this many delivery partitions (by FN), so that a cluster can
/// lease partitions to nodes and a dead node's partitions are taken over.
pub const DELIVERY_PARTITIONS: u16 = 64;

/// The delivery partition of an FN.
pub fn delivery_partition(fn_number: &FnNumber) -> u16 {
    ffd::crc::crc16(fn_number.as_bytes()) % DELIVERY_PARTITIONS
}

/// Delivery state of one document to the tax service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Queued, not yet delivered.
    Pending,
    /// Delivered (the receiver answered 2xx).
    Delivered,
}

/// One entry of the outbox / delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The document.
    pub key: DocumentKey,
    /// Partition.
    pub partition: u16,
    /// Status.
    pub status: DeliveryStatus,
    /// When it was queued (document received).
    pub queued_at: Timestamp,
    /// Attempts made.
    pub attempts: u32,
    /// Not before this time (exponential backoff).
    pub next_attempt_at: Timestamp,
    /// Last attempt.
    pub last_attempt_at: Option<Timestamp>,
    /// Last error.
    pub last_error: Option<String>,
    /// Delivered at.
    pub delivered_at: Option<Timestamp>,
}

/// Size of the undelivered backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BacklogStats {
    /// Pending deliveries.
    pub pending: u64,
    /// Queue time of the oldest pending delivery.
    pub oldest_queued_at: Option<Timestamp>,
}

// ============================================================================ resend jobs

/// Which documents a resend job selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResendSelector {
    /// One register.
    pub rnm: Option<Rnm>,
    /// One FN.
    pub fn_number: Option<FnNumber>,
    /// Every register of an owner.
    pub owner_inn: Option<Inn>,
    /// Received at or after.
    pub from: Timestamp,
    /// Received before.
    pub to: Timestamp,
    /// Form codes (empty = all).
    #[serde(default)]
    pub types: Vec<u8>,
}

/// Lifecycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Created, not started.
    Pending,
    /// Being worked on.
    Running,
    /// Every selected document was handled.
    Completed,
    /// Stopped by an admin.
    Cancelled,
    /// Stopped by an error it could not get past.
    Failed,
}

impl JobState {
    /// Completed, cancelled or failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Failed)
    }
}

/// A persisted, resumable job that delivers selected documents to the FNS again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResendJob {
    /// Id (time-ordered).
    pub id: Uuid,
    /// Selection.
    pub selector: ResendSelector,
    /// State.
    pub state: JobState,
    /// Who created it.
    pub created_by: String,
    /// Created.
    pub created_at: Timestamp,
    /// Last progress.
    pub updated_at: Timestamp,
    /// Finished.
    pub finished_at: Option<Timestamp>,
    /// Documents selected so far (final once selection is complete).
    pub selected: u64,
    /// Selection finished (so `selected` is the total).
    pub selection_complete: bool,
    /// Delivered again.
    pub delivered: u64,
    /// Failed for good.
    pub failed: u64,
    /// Where to resume (opaque to everyone but the job runner).
    pub cursor: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

// ============================================================================ alerts

/// What an alert rule watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertCondition {
    /// No document received for longer than `for_secs`.
    Silent {
        /// Silence threshold, seconds.
        for_secs: u64,
    },
    /// FN end of life within `within_days`: key resource (1213) or registration date plus
    /// the FN term.
    FnEndOfLife {
        /// Days.
        within_days: u32,
        /// FN term in days, for the registration-date estimate (e.g. 456 or 1110).
        fn_term_days: u32,
    },
    /// Paid period ends within `within_days` (or has ended).
    PaidPeriodEnding {
        /// Days.
        within_days: u32,
    },
    /// The register reports untransmitted documents: count (1097) above `count_above`,
    /// or the first of them (1098) older than `older_than_secs`.
    UnsentBacklog {
        /// Count threshold.
        count_above: Option<u32>,
        /// Age threshold, seconds.
        older_than_secs: Option<u64>,
    },
    /// FN warning flags raised (mask over bits 0–3 = tags 1050–1053; 0 = any).
    FnWarnings {
        /// Mask.
        mask: u8,
    },
    /// More than `above` documents answered with code 14 within `window_secs`.
    FlkErrors {
        /// Count threshold.
        above: u32,
        /// Window, seconds.
        window_secs: u64,
    },
}

/// Which registers a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum AlertScope {
    /// Every register.
    All,
    /// Registers of one owner.
    OwnerInn(Inn),
    /// Registers of one group.
    Group(String),
    /// Listed registers.
    Registers(Vec<Rnm>),
}

/// Severity of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// Needs attention (yellow).
    Warning,
    /// Needs action now (red).
    Critical,
}

impl Severity {
    /// Bounded label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRule {
    /// Unique name (also the metric label `rule`: rules are few).
    pub name: String,
    /// Condition.
    pub condition: AlertCondition,
    /// Scope.
    pub scope: AlertScope,
    /// Severity.
    pub severity: Severity,
    /// Evaluated only when enabled.
    pub enabled: bool,
    /// Webhook URL notified on firing and resolving.
    pub webhook: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// State of one (rule, register) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Condition holds.
    Firing,
    /// Condition no longer holds.
    Resolved,
}

/// Alert state per (rule, register).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// Rule name.
    pub rule: String,
    /// Register.
    pub rnm: Rnm,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Firing since.
    pub since: Timestamp,
    /// Resolved at.
    pub resolved_at: Option<Timestamp>,
    /// Last evaluation.
    pub last_evaluated: Timestamp,
    /// Consecutive evaluations in which the condition was absent while firing (a resolve
    /// needs several, so one missed evaluation does not flap).
    pub clear_streak: u32,
    /// Human-readable reason of the last firing.
    pub detail: String,
    /// Severity copied from the rule at firing time.
    pub severity: Severity,
}

/// A webhook notification and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertNotification {
    /// Id (time-ordered).
    pub id: Uuid,
    /// Rule.
    pub rule: String,
    /// Register.
    pub rnm: Rnm,
    /// The transition notified.
    pub status: AlertStatus,
    /// Target URL.
    pub webhook: String,
    /// JSON payload.
    pub payload: serde_json::Value,
    /// Created.
    pub created_at: Timestamp,
    /// Attempts so far.
    pub attempts: u32,
    /// Next attempt not before.
    pub next_attempt_at: Timestamp,
    /// Delivered at (2xx from the webhook).
    pub delivered_at: Option<Timestamp>,
    /// Gave up after too many attempts.
    pub abandoned: bool,
    /// Last error.
    pub last_error: Option<String>,
}

// ============================================================================ audit

/// One admin action, recorded before the response is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Id (time-ordered).
    pub id: Uuid,
    /// When.
    pub at: Timestamp,
    /// Who (token name).
    pub actor: String,
    /// What, e.g. `register.suspend`.
    pub action: String,
    /// On what, e.g. an RNM.
    pub target: String,
    /// State before.
    pub before: Option<serde_json::Value>,
    /// State after.
    pub after: Option<serde_json::Value>,
    /// From where (peer address).
    pub source: Option<String>,
}

/// Hex (de)serialisation of byte fields.
pub mod hex_bytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as a lowercase hex string.
    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    /// Parses a hex string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(s.as_bytes()).map(Bytes::from).map_err(serde::de::Error::custom)
    }
}
