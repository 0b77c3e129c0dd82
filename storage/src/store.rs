//! The `Store` trait: everything the platform persists, behind one async interface with
//! one conformance suite and two backends (embedded fjall; ScyllaDB).
//!
//! The hot path is [`DocumentStore::append_documents`]: a batched, idempotent append that
//! says for each document whether it is new or a duplicate (with the acknowledgment stored
//! the first time), and reports the [`Durability`] it achieved. The gateway acknowledges
//! a document only when the append returned [`Durability::Durable`]. Any error — including
//! a timeout — means "unknown outcome": nothing is acknowledged, and the register's retry
//! is safe because appends are idempotent by (FN, FD).
//!
//! Appending a new document also, atomically with it, queues it for FNS delivery (the
//! outbox) and folds it into the register's activity.

use std::ops::RangeInclusive;
use std::time::Duration;

use async_trait::async_trait;
use ffd::FnNumber;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::{Inn, Rnm, Timestamp};
use crate::model::{
    AlertNotification, AlertRule, AlertState, AlertStatus, AppendOutcome, AuditEntry, BacklogStats, BucketTotals,
    Delivery, DocumentKey, DocumentRecord, FnContinuity, JobState, Register, RegisterActivity, RegisterStatus,
    ResendJob, ShiftSummary, TariffPlan, UnknownFn, UnknownFnSighting,
};

/// How durable a write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Handed to the OS: survives a process crash, not a power loss or kernel crash.
    Buffered,
    /// On stable storage: fsync'd (embedded) or acknowledged by a quorum of replicas
    /// (cluster). The only level an acknowledgment may be sent on.
    Durable,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// One outcome per appended document, in order.
    pub outcomes: Vec<AppendOutcome>,
    /// What the store guarantees for the stored documents.
    pub durability: Durability,
}

/// A page request: at most `limit` items after `cursor` (an opaque token from a previous
/// page).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PageRequest {
    /// Maximum items (backends cap it at [`PageRequest::MAX_LIMIT`]).
    pub limit: u32,
    /// Continue after this token.
    pub cursor: Option<String>,
}

impl PageRequest {
    /// Largest page any backend returns.
    pub const MAX_LIMIT: u32 = 1000;

    /// First page of `limit` items.
    pub fn first(limit: u32) -> Self {
        Self { limit, cursor: None }
    }

    /// The limit, capped, at least 1.
    pub fn effective_limit(&self) -> usize {
        self.limit.clamp(1, Self::MAX_LIMIT) as usize
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// Items.
    pub items: Vec<T>,
    /// Token for the next page; `None` at the end.
    pub next: Option<String>,
}

/// Filters for listing registers (all optional, combined with AND).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegisterFilter {
    /// Status.
    pub status: Option<RegisterStatus>,
    /// Owner INN.
    pub owner_inn: Option<Inn>,
    /// Group.
    pub group: Option<String>,
    /// Tariff plan.
    pub tariff: Option<String>,
    /// Paid period ends before this time.
    pub paid_until_before: Option<Timestamp>,
}

impl RegisterFilter {
    /// Whether a register passes the filter.
    pub fn matches(&self, r: &Register) -> bool {
        self.status.is_none_or(|s| r.status == s)
            && self.owner_inn.as_ref().is_none_or(|i| &r.owner_inn == i)
            && self.group.as_ref().is_none_or(|g| r.group.as_ref() == Some(g))
            && self.tariff.as_ref().is_none_or(|t| r.tariff.as_ref() == Some(t))
            && self.paid_until_before.is_none_or(|t| r.paid_until.is_some_and(|p| p < t))
    }
}

/// Filters for alert states.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AlertFilter {
    /// Rule name.
    pub rule: Option<String>,
    /// Status.
    pub status: Option<AlertStatus>,
    /// Register.
    pub rnm: Option<Rnm>,
}

/// Filters for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Actor.
    pub actor: Option<String>,
    /// Action prefix, e.g. `register.`.
    pub action_prefix: Option<String>,
    /// Target.
    pub target: Option<String>,
    /// At or after.
    pub since: Option<Timestamp>,
}

/// Health of a store, for readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Health {
    /// Serving.
    Ok,
    /// A durability failure (fsync error) poisoned the store: every write fails fast; the
    /// process must restart.
    Poisoned(String),
    /// Temporarily unable to write (cluster unreachable).
    Degraded(String),
}

/// Fiscal documents.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Appends documents idempotently by (FN, FD). For each: stored (and queued for
    /// delivery, and folded into its register's activity) or duplicate (nothing written;
    /// the stored ack returned). With `Durability::Durable` the call returns only once
    /// every stored document is on stable storage.
    async fn append_documents(
        &self,
        docs: Vec<DocumentRecord>,
        durability: Durability,
    ) -> Result<Committed, StoreError>;

    /// One document.
    async fn get_document(&self, key: &DocumentKey) -> Result<Option<DocumentRecord>, StoreError>;

    /// Documents of one FN with FD in `fds`, ascending by FD.
    async fn documents_by_fn(
        &self,
        fn_number: &FnNumber,
        fds: RangeInclusive<u32>,
        page: PageRequest,
    ) -> Result<Page<DocumentRecord>, StoreError>;

    /// Documents of one register received in `[from, to)`, ascending by receive time.
    async fn documents_by_register(
        &self,
        rnm: &Rnm,
        from: Timestamp,
        to: Timestamp,
        page: PageRequest,
    ) -> Result<Page<DocumentRecord>, StoreError>;

    /// Waits until the views derived from the documents — the time index behind
    /// [`documents_by_register`](Self::documents_by_register), register activity — reflect
    /// every append that returned before the call. A backend that derives them after the
    /// acknowledgment (the cluster backend follows its journal) catches up here; one that
    /// writes them with the document returns at once. Views lag by at most a few seconds
    /// anyway; this is for tests and for tools that need a read-your-writes view.
    async fn settle(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Registers, their activity and the onboarding backlog.
#[async_trait]
pub trait RegisterStore: Send + Sync {
    /// Creates or replaces registers (bumping `version` and `updated_at` is the caller's
    /// job) and maintains the FN → register index for the current FN and the FN history.
    /// `expected_versions[i]` (when given) must match the stored version or the whole call
    /// fails with `Conflict` and changes nothing; `Some(0)` means "must not exist yet"
    /// (a create that must not overwrite a concurrent one — stored versions start at 1). An FN may belong to one register only:
    /// a clash is a `Conflict`.
    async fn put_registers(
        &self,
        registers: Vec<Register>,
        expected_versions: Vec<Option<u64>>,
    ) -> Result<(), StoreError>;

    /// One register.
    async fn get_register(&self, rnm: &Rnm) -> Result<Option<Register>, StoreError>;

    /// The register an FN (current or historical) belongs to.
    async fn register_by_fn(&self, fn_number: &FnNumber) -> Result<Option<Register>, StoreError>;

    /// Registers in RNM order, filtered.
    async fn list_registers(&self, filter: &RegisterFilter, page: PageRequest) -> Result<Page<Register>, StoreError>;

    /// Registers changed at or after `since` (for other nodes' caches).
    async fn registers_updated_since(&self, since: Timestamp, page: PageRequest) -> Result<Page<Register>, StoreError>;

    /// What ingestion recorded about a register.
    async fn get_activity(&self, rnm: &Rnm) -> Result<Option<RegisterActivity>, StoreError>;

    /// Activity of many registers at once (missing ones are absent from the result).
    async fn get_activities(&self, rnms: &[Rnm]) -> Result<Vec<(Rnm, RegisterActivity)>, StoreError>;

    /// Records refused attempts of unknown FNs (aggregated).
    async fn record_unknown_fns(&self, sightings: Vec<UnknownFnSighting>) -> Result<(), StoreError>;

    /// The onboarding backlog, most recent first is not required: FN order.
    async fn list_unknown_fns(&self, page: PageRequest) -> Result<Page<UnknownFn>, StoreError>;

    /// Drops an FN from the backlog (it was onboarded).
    async fn remove_unknown_fn(&self, fn_number: &FnNumber) -> Result<(), StoreError>;
}

/// Tariff plans.
#[async_trait]
pub trait TariffStore: Send + Sync {
    /// Creates a plan; `Conflict` if the name exists.
    async fn create_tariff(&self, plan: &TariffPlan) -> Result<(), StoreError>;
    /// One plan.
    async fn get_tariff(&self, name: &str) -> Result<Option<TariffPlan>, StoreError>;
    /// All plans (there are few).
    async fn list_tariffs(&self) -> Result<Vec<TariffPlan>, StoreError>;
}

/// The audit log of admin actions.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends durably (an admin call is refused if its audit record cannot be written).
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_audit(&self, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditEntry>, StoreError>;
}

/// Alert rules, alert states and webhook notifications.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Creates or replaces a rule.
    async fn put_rule(&self, rule: &AlertRule) -> Result<(), StoreError>;
    /// One rule.
    async fn get_rule(&self, name: &str) -> Result<Option<AlertRule>, StoreError>;
    /// All rules.
    async fn list_rules(&self) -> Result<Vec<AlertRule>, StoreError>;
    /// Deletes a rule and its states; `NotFound` if absent.
    async fn delete_rule(&self, name: &str) -> Result<(), StoreError>;
    /// Writes alert states.
    async fn put_alert_states(&self, states: Vec<AlertState>) -> Result<(), StoreError>;
    /// Alert states, filtered, ordered by (rule, register).
    async fn list_alert_states(&self, filter: &AlertFilter, page: PageRequest) -> Result<Page<AlertState>, StoreError>;
    /// Creates or updates notifications.
    async fn put_notifications(&self, notes: Vec<AlertNotification>) -> Result<(), StoreError>;
    /// Notifications not yet delivered nor abandoned whose next attempt is due.
    async fn due_notifications(&self, now: Timestamp, limit: u32) -> Result<Vec<AlertNotification>, StoreError>;
    /// Recent notifications, newest first.
    async fn list_notifications(&self, page: PageRequest) -> Result<Page<AlertNotification>, StoreError>;
}

/// FNS delivery: the outbox, delivery states and the leases that share the work.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Pending deliveries of a partition whose next attempt is due, oldest first.
    async fn due_deliveries(&self, partition: u16, now: Timestamp, limit: u32) -> Result<Vec<Delivery>, StoreError>;
    /// Marks documents delivered (removing them from the outbox).
    async fn mark_delivered(&self, keys: &[DocumentKey], at: Timestamp) -> Result<(), StoreError>;
    /// Records a failed attempt and when to try again.
    async fn record_delivery_failure(
        &self,
        key: &DocumentKey,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Delivery state of one document.
    async fn get_delivery(&self, key: &DocumentKey) -> Result<Option<Delivery>, StoreError>;
    /// Backlog size and age.
    async fn backlog(&self) -> Result<BacklogStats, StoreError>;
    /// Takes or renews a named lease for `ttl`; true if `holder` holds it afterwards.
    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Gives a lease up (if held by `holder`).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// The gateway nodes sharing this store right now (each announces itself while it
    /// runs), so that leased work is split evenly among them. A store of one node (the
    /// embedded one) returns an empty list: no one else shares it.
    async fn cluster_nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        Ok(Vec::new())
    }

    /// Sets what this node announces about its acknowledgment signer (a fingerprint of
    /// its key): nodes sharing a store must sign with the same key.
    fn announce_signer(&self, _fingerprint: &str) {}

    /// Drops what this process remembers of a delivery partition's queue: the caller has
    /// just taken its lease, or lost it. Another node delivered from it meanwhile, so the
    /// next `due_deliveries` must start again from what the store says (a stale memory
    /// would send delivered documents again). Stores that keep nothing ignore it.
    fn forget_partition(&self, _partition: u16) {}
}

/// A gateway node sharing a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its name (`node_id`).
    pub node: String,
    /// A fingerprint of its acknowledgment signer's key (empty: not announced yet).
    pub signer_fingerprint: String,
}

/// Resend jobs.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Creates or updates a job.
    async fn put_job(&self, job: &ResendJob) -> Result<(), StoreError>;
    /// One job.
    async fn get_job(&self, id: &Uuid) -> Result<Option<ResendJob>, StoreError>;
    /// Jobs, newest first, optionally only in some states.
    async fn list_jobs(&self, states: &[JobState], page: PageRequest) -> Result<Page<ResendJob>, StoreError>;
}

/// Revenue reports, shifts and FD continuity: aggregates derived from the stored documents
/// off the acknowledgment path (`model::report` has the fold). They lag the appends by at
/// most a few seconds; [`DocumentStore::settle`] waits until they reflect every append
/// that returned before it.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// The totals of these FNs: every day bucket in `days` (local days since the epoch),
    /// and every undated hour bucket from the day before `days` to the day after (the
    /// caller places hours on local days with the register's time zone). Ordered by FN
    /// as given, then bucket.
    async fn report_totals(&self, fns: &[FnNumber], days: RangeInclusive<i32>)
    -> Result<Vec<BucketTotals>, StoreError>;

    /// The shifts of one FN with numbers in `shifts`, ascending, at most a page.
    async fn shifts(
        &self,
        fn_number: &FnNumber,
        shifts: RangeInclusive<u32>,
        page: PageRequest,
    ) -> Result<Page<ShiftSummary>, StoreError>;

    /// What was received of these FNs (FNs with nothing received are absent).
    async fn continuity(&self, fns: &[FnNumber]) -> Result<Vec<FnContinuity>, StoreError>;

    /// Every FN with FDs missing between its lowest and highest received, in FN order.
    async fn gapped_fns(&self, page: PageRequest) -> Result<Page<FnContinuity>, StoreError>;
}

/// Everything.
#[async_trait]
pub trait Store:
    DocumentStore + RegisterStore + TariffStore + AuditStore + AlertStore + DeliveryStore + JobStore + ReportStore
{
    /// Backend name for logs and metrics ("embedded", "scylla").
    fn backend(&self) -> &'static str;
    /// Current health.
    fn health(&self) -> Health;
    /// Flushes and stops background work (idempotent).
    async fn close(&self) -> Result<(), StoreError>;
}
