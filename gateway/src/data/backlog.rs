//! The onboarding backlog: FNs that tried to deliver documents but belong to no register.
//! Attempts are aggregated in memory (bounded) and flushed to storage periodically, so a
//! storm of unknown registers costs one map update per attempt, not a write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use ffd::FnNumber;
use storage::model::UnknownFnSighting;
use storage::{Store, Timestamp};

/// Distinct FNs held between flushes at most; further new FNs are dropped (and counted in
/// the log) until the next flush.
const MAX_PENDING: usize = 100_000;

/// Aggregated sightings.
#[derive(Debug, Default)]
pub struct Backlog {
    pending: DashMap<FnNumber, UnknownFnSighting>,
}

impl Backlog {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one refused attempt.
    pub fn record(&self, fn_number: FnNumber, at: Timestamp, claimed_rnm: Option<String>, peer: Option<SocketAddr>) {
        if let Some(mut s) = self.pending.get_mut(&fn_number) {
            s.attempts += 1;
            s.at = at;
            if claimed_rnm.is_some() {
                s.claimed_rnm = claimed_rnm;
            }
            s.peer = peer.map(|p| p.to_string());
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            tracing::warn!("onboarding backlog buffer full; an unknown FN attempt was not recorded");
            return;
        }
        self.pending.insert(
            fn_number,
            UnknownFnSighting {
                fn_number,
                at,
                attempts: 1,
                claimed_rnm,
                claimed_inn: None,
                peer: peer.map(|p| p.to_string()),
            },
        );
    }

    /// Takes everything pending.
    pub fn drain(&self) -> Vec<UnknownFnSighting> {
        let keys: Vec<FnNumber> = self.pending.iter().map(|e| *e.key()).collect();
        keys.into_iter().filter_map(|k| self.pending.remove(&k).map(|(_, v)| v)).collect()
    }

    /// Writes pending sightings to storage (put back on failure).
    pub async fn flush(&self, store: &dyn Store) {
        let batch = self.drain();
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.record_unknown_fns(batch.clone()).await {
            if matches!(e, storage::StoreError::Unavailable(_)) {
                // the store refuses writes for a reason it reports (readiness, one log
                // line per change): not worth a line every flush
                tracing::debug!(error = %e, "could not record unknown FNs; will retry");
            } else {
                tracing::warn!(error = %e, "could not record unknown FNs; will retry");
            }
            for s in batch {
                self.pending.entry(s.fn_number).or_insert(s);
            }
        }
    }
}

/// Periodic flush, and a last one at shutdown.
pub async fn flush_loop(
    backlog: Arc<Backlog>,
    store: Arc<dyn Store>,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                backlog.flush(store.as_ref()).await;
                return;
            }
            _ = tick.tick() => backlog.flush(store.as_ref()).await,
        }
    }
}
