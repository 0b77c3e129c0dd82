//! Registers, their FN history and activity, what their drives report, unknown FNs.

use ffd::FnNumber;
use serde::{Deserialize, Serialize};

use super::document::{DocumentRecord, TelemetryRecord};
use crate::ids::{IdError, Inn, Rnm, Timestamp};

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
    /// IANA time zone of the place of settlement (e.g. `Asia/Vladivostok`), for reports:
    /// it places documents without a readable time (encrypted bodies) on a local day.
    /// `None`: the gateway's `reports.default_time_zone` (Europe/Moscow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
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
            time_zone: None,
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
        if let Some(tz) = &self.time_zone {
            let plausible = !tz.is_empty()
                && tz.len() <= 64
                && tz.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
            if !plausible {
                return Err(ValidationError::Field {
                    field: "time_zone",
                    rule: "must be an IANA time zone name such as Europe/Moscow".into(),
                });
            }
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

impl RegisterActivity {
    /// Combines the activity of two disjoint sets of documents of one register (e.g. of
    /// its FNs, folded separately): the latest of each time, the sums of the counts, the
    /// newest drive report.
    pub fn merge(&mut self, other: &RegisterActivity) {
        let other_newer = match (self.last_seen, other.last_seen) {
            (None, _) => true,
            (Some(a), Some(b)) => b > a,
            (Some(_), None) => false,
        };
        if other_newer {
            self.last_seen = other.last_seen;
            self.last_fn = other.last_fn;
            self.last_fd = other.last_fd;
        }
        if other.last_document_time > self.last_document_time {
            self.last_document_time = other.last_document_time;
        }
        self.documents += other.documents;
        self.flk_errors += other.flk_errors;
        self.recent_flk.extend_from_slice(&other.recent_flk);
        self.recent_flk.sort_unstable();
        let excess = self.recent_flk.len().saturating_sub(Self::RECENT_FLK);
        self.recent_flk.drain(..excess);
        let telemetry_newer = match (&self.telemetry, &other.telemetry) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(b)) => b.reported_at > a.reported_at,
        };
        if telemetry_newer {
            self.telemetry.clone_from(&other.telemetry);
        }
        if other.registered_at > self.registered_at {
            self.registered_at = other.registered_at;
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
