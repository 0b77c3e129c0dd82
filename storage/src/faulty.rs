//! A fault-injecting wrapper around any [`Store`], for tests of what the gateway does
//! when storage misbehaves: document appends can be made to stall (until released) or to
//! fail, audit appends to fail; everything else is passed through. Enabled with the `testkit` feature.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ffd::FnNumber;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::{Rnm, Timestamp};
use crate::model::{
    AlertNotification, AlertRule, AlertState, AuditEntry, BacklogStats, BucketTotals, Delivery, DocumentKey,
    DocumentRecord, FnContinuity, JobState, Register, RegisterActivity, ResendJob, ShiftSummary, TariffPlan, UnknownFn,
    UnknownFnSighting,
};
use crate::store::{
    AlertFilter, AlertStore, AuditFilter, AuditStore, Committed, DeliveryStore, DocumentStore, Durability, Health,
    JobStore, NodeInfo, Page, PageRequest, RegisterFilter, RegisterStore, ReportStore, Store, TariffStore,
};

/// The wrapper.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    stalled: watch::Sender<bool>,
    failing: AtomicBool,
    failing_audit: AtomicBool,
    appends_started: AtomicU64,
    appends_completed: AtomicU64,
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore").field("backend", &self.inner.backend()).finish_non_exhaustive()
    }
}

impl FaultyStore {
    /// Wraps `inner`; no fault is active.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            stalled: watch::channel(false).0,
            failing: AtomicBool::new(false),
            failing_audit: AtomicBool::new(false),
            appends_started: AtomicU64::new(0),
            appends_completed: AtomicU64::new(0),
        }
    }

    /// While stalled, every document append waits (before touching the inner store) until
    /// [`FaultyStore::release`].
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Ends a stall; waiting appends proceed.
    pub fn release(&self) {
        self.stalled.send_replace(false);
    }

    /// Makes appends fail with `StoreError::Io` (or stops that).
    pub fn set_failing(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    /// Makes audit appends fail with `StoreError::Io` (or stops that): an unwritable audit
    /// log, which must make admin calls fail closed.
    pub fn set_failing_audit(&self, on: bool) {
        self.failing_audit.store(on, Ordering::SeqCst);
    }

    /// Appends entered / completed so far.
    pub fn append_counts(&self) -> (u64, u64) {
        (self.appends_started.load(Ordering::SeqCst), self.appends_completed.load(Ordering::SeqCst))
    }
}

/// Implements a store trait by passing every listed method through to `inner`, plus any
/// hand-written items (the attribute must see expanded methods, so the macro emits the
/// whole impl).
macro_rules! pass_through {
    ($tr:ident { $($extra:item)* } $($name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty;)*) => {
        #[async_trait]
        impl $tr for FaultyStore {
            $($extra)*
            $(async fn $name(&self, $($arg: $ty),*) -> $ret { self.inner.$name($($arg),*).await })*
        }
    };
}

pass_through! { DocumentStore {
    async fn append_documents(&self, docs: Vec<DocumentRecord>, durability: Durability) -> Result<Committed, StoreError> {
        self.appends_started.fetch_add(1, Ordering::SeqCst);
        let mut rx = self.stalled.subscribe();
        let _ = rx.wait_for(|stalled| !*stalled).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Io("injected failure".into()));
        }
        let r = self.inner.append_documents(docs, durability).await;
        self.appends_completed.fetch_add(1, Ordering::SeqCst);
        r
    }
}
        get_document(key: &DocumentKey) -> Result<Option<DocumentRecord>, StoreError>;
        documents_by_fn(fn_number: &FnNumber, fds: RangeInclusive<u32>, page: PageRequest) -> Result<Page<DocumentRecord>, StoreError>;
        documents_by_register(rnm: &Rnm, from: Timestamp, to: Timestamp, page: PageRequest) -> Result<Page<DocumentRecord>, StoreError>;
        settle() -> Result<(), StoreError>;
}

pass_through! { RegisterStore {}
        put_registers(registers: Vec<Register>, expected_versions: Vec<Option<u64>>) -> Result<(), StoreError>;
        get_register(rnm: &Rnm) -> Result<Option<Register>, StoreError>;
        register_by_fn(fn_number: &FnNumber) -> Result<Option<Register>, StoreError>;
        list_registers(filter: &RegisterFilter, page: PageRequest) -> Result<Page<Register>, StoreError>;
        registers_updated_since(since: Timestamp, page: PageRequest) -> Result<Page<Register>, StoreError>;
        get_activity(rnm: &Rnm) -> Result<Option<RegisterActivity>, StoreError>;
        get_activities(rnms: &[Rnm]) -> Result<Vec<(Rnm, RegisterActivity)>, StoreError>;
        record_unknown_fns(sightings: Vec<UnknownFnSighting>) -> Result<(), StoreError>;
        list_unknown_fns(page: PageRequest) -> Result<Page<UnknownFn>, StoreError>;
        remove_unknown_fn(fn_number: &FnNumber) -> Result<(), StoreError>;
}

pass_through! { TariffStore {}
        create_tariff(plan: &TariffPlan) -> Result<(), StoreError>;
        get_tariff(name: &str) -> Result<Option<TariffPlan>, StoreError>;
        list_tariffs() -> Result<Vec<TariffPlan>, StoreError>;
}

pass_through! { AuditStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        if self.failing_audit.load(Ordering::SeqCst) {
            return Err(StoreError::Io("injected audit failure".into()));
        }
        self.inner.append_audit(entry).await
    }
}
    list_audit(filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditEntry>, StoreError>;
}

pass_through! { AlertStore {}
        put_rule(rule: &AlertRule) -> Result<(), StoreError>;
        get_rule(name: &str) -> Result<Option<AlertRule>, StoreError>;
        list_rules() -> Result<Vec<AlertRule>, StoreError>;
        delete_rule(name: &str) -> Result<(), StoreError>;
        put_alert_states(states: Vec<AlertState>) -> Result<(), StoreError>;
        list_alert_states(filter: &AlertFilter, page: PageRequest) -> Result<Page<AlertState>, StoreError>;
        put_notifications(notes: Vec<AlertNotification>) -> Result<(), StoreError>;
        due_notifications(now: Timestamp, limit: u32) -> Result<Vec<AlertNotification>, StoreError>;
        list_notifications(page: PageRequest) -> Result<Page<AlertNotification>, StoreError>;
}

pass_through! { DeliveryStore {
    fn announce_signer(&self, fingerprint: &str) {
        self.inner.announce_signer(fingerprint);
    }
}
        due_deliveries(partition: u16, now: Timestamp, limit: u32) -> Result<Vec<Delivery>, StoreError>;
        mark_delivered(keys: &[DocumentKey], at: Timestamp) -> Result<(), StoreError>;
        record_delivery_failure(key: &DocumentKey, error: &str, next_attempt_at: Timestamp) -> Result<(), StoreError>;
        get_delivery(key: &DocumentKey) -> Result<Option<Delivery>, StoreError>;
        backlog() -> Result<BacklogStats, StoreError>;
        try_lease(name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;
        release_lease(name: &str, holder: &str) -> Result<(), StoreError>;
        cluster_nodes() -> Result<Vec<NodeInfo>, StoreError>;
}

pass_through! { JobStore {}
        put_job(job: &ResendJob) -> Result<(), StoreError>;
        get_job(id: &Uuid) -> Result<Option<ResendJob>, StoreError>;
        list_jobs(states: &[JobState], page: PageRequest) -> Result<Page<ResendJob>, StoreError>;
}

pass_through! { ReportStore {}
        report_totals(fns: &[FnNumber], days: RangeInclusive<i32>) -> Result<Vec<BucketTotals>, StoreError>;
        shifts(fn_number: &FnNumber, shifts: RangeInclusive<u32>, page: PageRequest) -> Result<Page<ShiftSummary>, StoreError>;
        continuity(fns: &[FnNumber]) -> Result<Vec<FnContinuity>, StoreError>;
        gapped_fns(page: PageRequest) -> Result<Page<FnContinuity>, StoreError>;
}

#[async_trait]
impl Store for FaultyStore {
    fn backend(&self) -> &'static str {
        "faulty"
    }
    fn health(&self) -> Health {
        self.inner.health()
    }
    async fn close(&self) -> Result<(), StoreError> {
        self.release();
        self.inner.close().await
    }
}
