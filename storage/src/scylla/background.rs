//! The store's own background work, on a weak handle of its state (it ends when the store
//! is closed or dropped), in two tasks: the upkeep (the node heartbeat, the clock check,
//! this node's share of the deriver leases, the lag of the derived views), which nothing
//! else can delay, and the deriver rounds — at once for partitions this process appended
//! to, and every [`SWEEP`] for all the partitions it holds (other nodes append to them
//! too). Also `settle()`, which waits for the deriver.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::backpressure::LAG_EVERY;
use super::clock::CHECK_EVERY;
use super::derive::{DERIVE_GROUPS, group_of, lease_name};
use super::keys;
use super::state::{DERIVE, DeriveState};
use super::store::{Inner, ScyllaStore};
use crate::error::StoreError;
use crate::metrics::{JOURNAL_ERRORS_TOTAL, JOURNAL_PARTITIONS};
use crate::model::DELIVERY_PARTITIONS;
use futures::StreamExt;

/// Every held partition is read at least this often (other nodes' appends reach this
/// node's derived views within it; its own at once).
const SWEEP: Duration = Duration::from_millis(2500);
/// The idle wait between rounds (an append wakes the task earlier).
const IDLE: Duration = Duration::from_millis(200);
/// Heartbeat period.
const BEAT: Duration = Duration::from_secs(5);
/// Lifetime of a deriver lease; renewed at a third of it (with jitter).
const DERIVE_LEASE_TTL: Duration = Duration::from_secs(15);
/// How often the upkeep task looks at its clocks.
const KEEP_TICK: Duration = Duration::from_millis(250);
/// Partitions derived at once (their rounds wait on the cluster, not on this process).
const DERIVE_CONCURRENCY: usize = 8;

pub(super) fn spawn(weak: Weak<Inner>, wake: Arc<tokio::sync::Notify>) {
    tokio::spawn(keep(weak.clone(), wake.clone()));
    tokio::spawn(run(weak, wake));
}

/// The node's upkeep, in a task of its own so that slow deriver rounds never delay it:
/// the heartbeat, the clock check, and this node's share of the deriver leases (a renewal
/// that waited behind a long round could come after the lease expired).
async fn keep(weak: Weak<Inner>, wake: Arc<tokio::sync::Notify>) {
    let mut last_beat: Option<Instant> = None;
    let mut last_clock = Instant::now();
    let mut next_balance = Instant::now();
    // the first measurement after the deriver's first rounds
    let mut last_lag = Instant::now();
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let store = ScyllaStore::from_inner(inner);
        if store.is_closed() {
            return;
        }
        if last_beat.is_none_or(|t| t.elapsed() >= BEAT) {
            if let Err(e) = store.heartbeat().await {
                tracing::debug!(error = %e, "node heartbeat");
            }
            last_beat = Some(Instant::now());
        }
        if last_clock.elapsed() >= CHECK_EVERY {
            store.measure_clock().await;
            last_clock = Instant::now();
        }
        if last_lag.elapsed() >= LAG_EVERY {
            store.measure_derived_lag().await;
            last_lag = Instant::now();
        }
        if Instant::now() >= next_balance {
            let before = store.follow.derive_groups();
            let now = store.balance_leases(DERIVE, DERIVE_GROUPS, DERIVE_LEASE_TTL, &before).await;
            if now != before {
                store.follow.set_derive_groups(now);
                wake.notify_one();
            }
            let jitter = Duration::from_millis(keys::fnv1a(&keys::now_micros().to_le_bytes()) % 1000);
            next_balance = Instant::now() + DERIVE_LEASE_TTL / 3 - Duration::from_millis(500) + jitter;
        }
        drop(store);
        tokio::time::sleep(KEEP_TICK).await;
    }
}

/// The deriver: rounds of the partitions this node holds (their groups' leases are kept
/// by [`keep`]).
async fn run(weak: Weak<Inner>, wake: Arc<tokio::sync::Notify>) {
    let mut last_sweep: Option<Instant> = None;
    // lease groups held, and the partitions they cover
    let mut groups: Vec<u16> = Vec::new();
    let mut held: Vec<u16> = Vec::new();
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let store = ScyllaStore::from_inner(inner);
        if store.is_closed() {
            return;
        }
        let now_groups = store.follow.derive_groups();
        if now_groups != groups {
            held = (0..DELIVERY_PARTITIONS).filter(|p| now_groups.contains(&group_of(*p))).collect();
            groups = now_groups;
            metrics::gauge!(JOURNAL_PARTITIONS, "follower" => DERIVE).set(held.len() as f64);
        }
        // drops what was handed over, loads the cursors of what was taken (and retries
        // those that could not be read before); nothing to do, and no query, otherwise
        store.adopt(&held).await;
        let sweep = last_sweep.is_none_or(|t| t.elapsed() >= SWEEP);
        let mut parts: BTreeSet<u16> = store.follow.take_dirty();
        if sweep {
            parts.extend(held.iter().copied());
            last_sweep = Some(Instant::now());
        }
        // a clock out of bounds could make the followers read too far ahead: pause them
        // (appends are refused meanwhile); the sweep after it recovers looks back
        let busy = if store.clock.out_of_bounds().is_some() { false } else { store.derive_parts(&parts).await };
        drop(store);
        if !busy {
            let _ = tokio::time::timeout(IDLE, wake.notified()).await;
        }
    }
}

impl ScyllaStore {
    /// Sets up the state of newly held partitions and drops that of the others.
    async fn adopt(&self, now: &[u16]) {
        let mut map = self.follow.derive.lock().await;
        let gone: Vec<u16> = map.keys().copied().filter(|p| !now.contains(p)).collect();
        for p in gone {
            map.remove(&p);
            self.follow.forget_derived(p);
            tracing::info!(partition = p, "deriver partition handed over");
        }
        // the cursors of the partitions taken over (or whose cursor could not be read
        // last time), read at once
        // (only those whose lease can still fence a write: one about to expire waits for
        // its renewal)
        let new: Vec<u16> =
            now.iter().copied().filter(|p| !map.contains_key(p) && self.fenced(&lease_name(*p)).is_ok()).collect();
        if new.is_empty() {
            return;
        }
        let states = futures::future::join_all(new.iter().map(|p| self.derive_state(*p))).await;
        for (p, st) in new.into_iter().zip(states) {
            match st {
                Ok(st) => {
                    map.insert(p, st);
                }
                Err(e) => tracing::warn!(partition = p, error = %e, "loading a deriver cursor"),
            }
        }
    }

    /// One deriver round of partition `p`.
    async fn derive_one(&self, p: u16, st: &mut DeriveState) -> (u16, Result<usize, StoreError>) {
        let r = self.derive_round(p, st, self.follow.take_reread(p)).await;
        if r.is_ok() {
            self.follow.set_derived_to(p, st.surely_to());
        }
        (p, r)
    }

    /// One round over `parts` (those held), [`DERIVE_CONCURRENCY`] partitions at a time
    /// (each is its own journal and its own rows); true if a round was full (more to do).
    async fn derive_parts(&self, parts: &BTreeSet<u16>) -> bool {
        let mut map = self.follow.derive.lock().await;
        let work: Vec<(u16, &mut DeriveState)> =
            map.iter_mut().filter(|(p, _)| parts.contains(p)).map(|(p, st)| (*p, st)).collect();
        let rounds: Vec<_> = work.into_iter().map(|(p, st)| self.derive_one(p, st)).collect();
        let results: Vec<(u16, Result<usize, StoreError>)> =
            futures::stream::iter(rounds).buffer_unordered(DERIVE_CONCURRENCY).collect().await;
        let mut busy = false;
        for (p, r) in results {
            match r {
                Ok(n) => busy |= n >= 1000,
                Err(e) => {
                    metrics::counter!(JOURNAL_ERRORS_TOTAL, "follower" => DERIVE).increment(1);
                    tracing::warn!(partition = p, error = %e, "deriver round failed; retried");
                    if matches!(e, StoreError::Conflict(_)) {
                        // the lease is about to expire or is lost: stop until renewed
                        map.remove(&p);
                        self.follow.forget_derived(p);
                    }
                }
            }
        }
        busy
    }

    /// Waits until the derived views include every append that returned before the call:
    /// every partition's deriver (here, or on another node through its persisted
    /// cursor) has read past this moment. Bounded: fails with `Timeout` after a minute
    /// plus the settle time.
    pub(super) async fn settle_derived(&self) -> Result<(), StoreError> {
        let target = keys::now_micros();
        let deadline = Instant::now() + Duration::from_secs(60) + self.cfg.journal_settle() * 2;
        loop {
            self.check_open()?;
            for p in 0..DELIVERY_PARTITIONS {
                self.follow.mark_dirty(p);
            }
            self.wake.notify_one();
            let here = self.follow.derived_to();
            let mut behind = Vec::new();
            for p in 0..DELIVERY_PARTITIONS {
                match here.get(&p) {
                    Some(at) if *at >= target => {}
                    Some(_) => {
                        // its next round also re-reads the settle window (an append that
                        // returned before this call may have landed behind the deriver)
                        self.follow.want_reread(p);
                        behind.push(p);
                    }
                    None => {
                        // held elsewhere: its persisted cursor (which lags by the settle time)
                        if self.cursor(p, DERIVE).await?.pos < target {
                            behind.push(p);
                        }
                    }
                }
            }
            if behind.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StoreError::Timeout(format!(
                    "derived views of journal partitions {behind:?} did not catch up (leases {:?})",
                    behind.iter().map(|p| lease_name(*p)).collect::<Vec<_>>()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
