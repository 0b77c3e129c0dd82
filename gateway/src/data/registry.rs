//! The in-memory index FN → register state, read on every document.
//!
//! Loaded from storage at start, updated at once by admin changes made in this process
//! ([`Registry::apply`]), and refreshed periodically from `registers_updated_since` for
//! changes made on other nodes. A lookup is one `DashMap` read; nothing on the hot path
//! touches storage to decide acceptance.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use ffd::FnNumber;
use storage::model::{Register, RegisterStatus};
use storage::{PageRequest, RegisterFilter, Rnm, Store, Timestamp};

use crate::metrics as m;

/// What the index knows about one FN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnEntry {
    /// Register the FN belongs (or belonged) to.
    pub rnm: Rnm,
    /// Register status.
    pub status: RegisterStatus,
    /// End of the paid period.
    pub paid_until: Option<Timestamp>,
    /// Set when this FN has been replaced by another one.
    pub replaced_at: Option<Timestamp>,
    /// Register version the entry was built from (newer wins on refresh).
    pub version: u64,
}

/// Why a document is not accepted. Each is a documented answer: no acknowledgment, the
/// connection is closed, the refusal is counted by reason — and for unknown FNs the
/// attempt is recorded in the onboarding backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The FN belongs to no register.
    UnknownFn,
    /// The register is suspended.
    Suspended,
    /// The paid period plus grace has ended.
    TariffExpired,
    /// The FN was replaced and the document was made after the replacement.
    FnReplaced,
}

impl Refusal {
    /// Every refusal.
    pub const ALL: [Refusal; 4] = [Refusal::UnknownFn, Refusal::Suspended, Refusal::TariffExpired, Refusal::FnReplaced];

    /// Bounded label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownFn => "unknown_fn",
            Self::Suspended => "register_suspended",
            Self::TariffExpired => "tariff_expired",
            Self::FnReplaced => "fn_replaced",
        }
    }
}

/// Acceptance rules that come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Grace after `paid_until`.
    pub tariff_grace: Duration,
    /// Tolerance after an FN replacement.
    pub replaced_fn_tolerance: Duration,
}

/// The index.
#[derive(Debug)]
pub struct Registry {
    by_fn: DashMap<FnNumber, FnEntry>,
    rules: Rules,
    /// High-water mark of `updated_at` seen, for incremental refreshes.
    watermark: AtomicI64,
}

impl Registry {
    /// An empty index.
    pub fn new(rules: Rules) -> Self {
        Self { by_fn: DashMap::new(), rules, watermark: Default::default() }
    }

    /// Loads every register from storage.
    pub async fn load(store: &dyn Store, rules: Rules) -> Result<Self, storage::StoreError> {
        let reg = Self::new(rules);
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let p = store.list_registers(&RegisterFilter::default(), page.clone()).await?;
            for r in &p.items {
                reg.apply(r);
            }
            match p.next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
        metrics::gauge!(m::REGISTRY_FNS).set(reg.by_fn.len() as f64);
        Ok(reg)
    }

    /// Applies a register's current state to the index (admin change or refresh).
    pub fn apply(&self, r: &Register) {
        self.watermark.fetch_max(r.updated_at.millis(), Ordering::Relaxed);
        let put = |fn_number: FnNumber, replaced_at: Option<Timestamp>| {
            let entry = FnEntry {
                rnm: r.rnm.clone(),
                status: r.status,
                paid_until: r.paid_until,
                replaced_at,
                version: r.version,
            };
            match self.by_fn.entry(fn_number) {
                dashmap::Entry::Occupied(mut o) => {
                    // never let an older version of a register overwrite a newer one, but
                    // let a different register take an FN only through a newer write
                    if o.get().rnm != r.rnm || o.get().version <= r.version {
                        o.insert(entry);
                    }
                }
                dashmap::Entry::Vacant(v) => {
                    v.insert(entry);
                }
            }
        };
        put(r.fn_number, None);
        for h in &r.fn_history {
            put(h.fn_number, Some(h.replaced_at));
        }
        metrics::gauge!(m::REGISTRY_FNS).set(self.by_fn.len() as f64);
    }

    /// Picks up registers changed since the last refresh (changes made by other nodes).
    pub async fn refresh(&self, store: &dyn Store) -> Result<usize, storage::StoreError> {
        // overlap a little: clocks of nodes differ
        let since = Timestamp(self.watermark.load(Ordering::Relaxed).saturating_sub(60_000));
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        let mut n = 0;
        loop {
            let p = store.registers_updated_since(since, page.clone()).await?;
            n += p.items.len();
            for r in &p.items {
                self.apply(r);
            }
            match p.next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
        Ok(n)
    }

    /// Decides whether a document of `fn_number`, made at `doc_time` (tag 1012, if
    /// readable), is accepted now.
    pub fn check(&self, fn_number: &FnNumber, doc_time: Option<Timestamp>, now: Timestamp) -> Result<Rnm, Refusal> {
        let Some(e) = self.by_fn.get(fn_number) else {
            return Err(Refusal::UnknownFn);
        };
        if e.status == RegisterStatus::Suspended {
            return Err(Refusal::Suspended);
        }
        if let Some(paid) = e.paid_until
            && now > paid.plus(self.rules.tariff_grace)
        {
            return Err(Refusal::TariffExpired);
        }
        if let (Some(replaced), Some(t)) = (e.replaced_at, doc_time)
            && t > replaced.plus(self.rules.replaced_fn_tolerance)
        {
            return Err(Refusal::FnReplaced);
        }
        Ok(e.rnm.clone())
    }

    /// Number of FNs indexed.
    pub fn len(&self) -> usize {
        self.by_fn.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_fn.is_empty()
    }

    /// The entry of an FN.
    pub fn get(&self, fn_number: &FnNumber) -> Option<FnEntry> {
        self.by_fn.get(fn_number).map(|e| e.clone())
    }
}

/// Periodic refresh task.
pub async fn refresh_loop(
    registry: Arc<Registry>,
    store: Arc<dyn Store>,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match registry.refresh(store.as_ref()).await {
            Ok(_) => metrics::counter!(m::REGISTRY_REFRESHES, "result" => "ok").increment(1),
            Err(e) => {
                metrics::counter!(m::REGISTRY_REFRESHES, "result" => "error").increment(1);
                tracing::warn!(error = %e, "register index refresh failed; keeping the current index");
            }
        }
    }
}
