//! Backpressure from the derived views.
//!
//! Everything but the document and its journal entry is derived after the
//! acknowledgment. That work is durable (the journal), so a deriver that falls behind
//! costs no memory — but an OFD whose time index, register activity and FD gaps are
//! hours behind answers its staff and the tax service wrongly. So the lag is bounded:
//! every [`LAG_EVERY`] the upkeep task measures, for each of the 64 journal partitions,
//! how far behind its deriver is — what this node surely applied, for the partitions it
//! holds; the persisted cursor, for the others (which trails by the settle time) — and a
//! partition whose lag exceeds `max_derived_lag_ms` refuses appends (`Unavailable`, so
//! the register gets no answer and retransmits later) until its deriver catches up. The
//! store reports `Degraded` meanwhile, the largest lag is a gauge and each refusal is
//! counted (`reason="derived_lag"`). A lag that cannot be measured (the cursor could not
//! be read) keeps the last verdict.

use std::collections::BTreeMap;
use std::time::Duration;

use super::keys;
use super::state::DERIVE;
use super::store::ScyllaStore;
use crate::error::StoreError;
use crate::metrics::{APPENDS_REFUSED_TOTAL, DERIVED_LAG_SECONDS};
use crate::model::DELIVERY_PARTITIONS;

/// How often the lag of every partition is measured.
pub(super) const LAG_EVERY: Duration = Duration::from_secs(10);

impl ScyllaStore {
    /// Measures the lag of every partition's deriver and records those beyond the bound.
    pub(super) async fn measure_derived_lag(&self) {
        let now = keys::now_micros();
        let local = self.follow.derived_to();
        let remote: Vec<u16> = (0..DELIVERY_PARTITIONS).filter(|p| !local.contains_key(p)).collect();
        let cursors = futures::future::join_all(remote.iter().map(|p| self.cursor(*p, DERIVE))).await;
        let mut lags: BTreeMap<u16, i64> = local.into_iter().map(|(p, pos)| (p, now - pos)).collect();
        let mut unknown = Vec::new();
        for (p, c) in remote.into_iter().zip(cursors) {
            match c {
                Ok(c) => {
                    lags.insert(p, now - c.pos);
                }
                Err(e) => {
                    tracing::debug!(partition = p, error = %e, "reading a deriver cursor for its lag");
                    unknown.push(p);
                }
            }
        }
        let bound = i64::try_from(self.cfg.max_derived_lag().as_micros()).unwrap_or(i64::MAX);
        let worst = lags.values().copied().max().unwrap_or(0).max(0);
        metrics::gauge!(DERIVED_LAG_SECONDS).set(worst as f64 / 1e6);
        let Ok(mut lagging) = self.follow.lagging.lock() else { return };
        let before = lagging.len();
        // the partitions not measured keep their verdict
        lagging.retain(|p, _| unknown.contains(p));
        lagging.extend(lags.into_iter().filter(|(_, lag)| *lag > bound));
        if lagging.len() != before {
            if lagging.is_empty() {
                tracing::info!("derived views caught up: appends accepted again");
            } else {
                tracing::warn!(
                    partitions = ?lagging.keys().collect::<Vec<_>>(),
                    worst_s = worst / 1_000_000,
                    bound_s = bound / 1_000_000,
                    "derived views lag beyond storage.max_derived_lag: appends to these journal partitions are refused"
                );
            }
        }
    }

    /// Refuses an append to a partition whose derived views lag beyond the bound.
    pub(super) fn check_derived_lag(&self, parts: impl IntoIterator<Item = u16>) -> Result<(), StoreError> {
        let Ok(lagging) = self.follow.lagging.lock() else { return Ok(()) };
        if lagging.is_empty() {
            return Ok(());
        }
        for p in parts {
            if let Some(lag) = lagging.get(&p) {
                metrics::counter!(APPENDS_REFUSED_TOTAL, "reason" => "derived_lag").increment(1);
                return Err(StoreError::Unavailable(format!(
                    "the derived views of journal partition {p} are {} s behind (storage.max_derived_lag is {} s); \
                     appends to it are refused until they catch up",
                    lag / 1_000_000,
                    self.cfg.max_derived_lag().as_secs()
                )));
            }
        }
        Ok(())
    }

    /// Why the store is degraded by its derived views, if it is.
    pub(super) fn derived_lag_health(&self) -> Option<String> {
        let lagging = self.follow.lagging.lock().ok()?;
        let worst = lagging.values().copied().max()?;
        Some(format!(
            "the derived views of {} journal partition(s) lag up to {} s behind (storage.max_derived_lag {} s): \
             their appends are refused",
            lagging.len(),
            worst / 1_000_000,
            self.cfg.max_derived_lag().as_secs()
        ))
    }
}
