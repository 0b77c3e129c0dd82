//! `DeliveryStore`: the FNS forwarder's follower of the journal, delivery states, leases.
//!
//! The forwarder of a partition (the gateway node holding `fns-partition-<p>`) asks for
//! due deliveries; this store keeps, in memory, what it has read of the partition's
//! journal: the pending entries (by position, with their attempts and next attempt), what
//! it has read up to, and a persisted cursor before which every entry is delivered.
//! Each call reads only the entries appended since the last one (plus, every quarter of
//! the settle time, the settle window behind, for entries that became visible late), so
//! an FNS outage does not turn into re-reading the whole backlog every round; at most
//! [`MAX_PENDING`] entries are held per partition, the rest wait in the journal until
//! those drain. A node that takes a partition over rebuilds this from the cursor once.
//!
//! A document has one entry normally; a retransmission's entry (`dup`) is skipped when
//! the document is already pending here or delivered (its delivery state says so).
//! `deliveries` rows are written by the forwarder only: a delivery or a failure. The
//! backlog figures each partition's follower last saw are written to `journal_backlog`,
//! so `backlog()` on any node reads 64 small rows instead of counting entries.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use scylla::value::CqlTimestamp;

use super::derive::{SWEEP_EVERY, SWEEP_WINDOW};
use super::journal::part_value;
use super::keys::{self, fd_bucket, fn_text};
use super::rows::{DeliveryRow, DeliveryRowTuple, from_ts, ts};
use super::state::{FNS, FnsState, Pending, Pos, delivery_of};
use super::store::{OpTimer, ScyllaStore};
use crate::error::StoreError;
use crate::ids::Timestamp;
use crate::metrics::{JOURNAL_ENTRIES_TOTAL, JOURNAL_LAG_SECONDS, SWEPT_TOTAL};
use crate::model::{BacklogStats, DELIVERY_PARTITIONS, Delivery, DeliveryStatus, DocumentKey, delivery_partition};
use crate::store::{DeliveryStore, NodeInfo};

/// Pending entries held in memory per partition at most.
pub(super) const MAX_PENDING: usize = 100_000;
/// Keys marked delivered before their entry was read, remembered per partition at most.
const MAX_EARLY_MARKS: usize = 100_000;
/// A partition's backlog row older than this is not trusted; the partition is followed
/// here instead.
const BACKLOG_FRESH: Duration = Duration::from_secs(60);
/// Persist the moved cursor (and the backlog row) at most this often.
const PERSIST_EVERY: Duration = Duration::from_secs(5);

impl ScyllaStore {
    /// The state of a partition, loaded from its cursor the first time.
    async fn fns_state(&self, part: u16) -> Result<Arc<tokio::sync::Mutex<FnsState>>, StoreError> {
        part_value(part)?;
        if let Some(s) = self.follow.fns_get(part) {
            return Ok(s);
        }
        let cursor = self.cursor(part, FNS).await?;
        Ok(self.follow.fns_insert(part, FnsState::new(cursor)))
    }

    /// Reads what was appended since the last call (and the late window), then moves the
    /// cursor over what is delivered.
    async fn fns_refresh(&self, part: u16, st: &mut FnsState) -> Result<(), StoreError> {
        st.last_used = Instant::now();
        if let Some(m) = self.clock.out_of_bounds() {
            // a wrong clock could make this follower read too far ahead: pause
            return Err(StoreError::Unavailable(m));
        }
        let settle_us = i64::try_from(self.cfg.journal_settle().as_micros()).unwrap_or(i64::MAX);
        let until = keys::now_micros();
        let room = MAX_PENDING.saturating_sub(st.pending.len());
        // an answered entry is visible (at quorum) within half the settle time of its
        // position: a read at wall time t has seen every one positioned before t - half
        let half = settle_us / 2;
        let mut entries = Vec::new();
        let mut read_to = st.read_to.clone();
        // (from, through): every entry positioned in it has been seen once this round's
        // entries are taken in
        let mut covered: Vec<(i64, i64)> = Vec::new();
        let mut reread = false;
        if st.last_reread.elapsed() >= self.cfg.journal_settle() / 4 {
            let from = Pos::before(st.read_to.pos.saturating_sub(settle_us)).max(st.cursor.clone());
            let late = self.read_entries(part, &from, st.read_to.pos.saturating_add(1), usize::MAX).await?;
            covered.push((from.pos, st.read_to.pos.min(until.saturating_sub(half))));
            entries.extend(late.into_iter().filter(|e| e.at <= st.read_to && !st.seen.contains(&e.at)));
            reread = true;
        }
        if room > 0 {
            let fresh = self.read_entries(part, &st.read_to, until, room).await?;
            read_to = match fresh.last() {
                Some(e) if fresh.len() >= room => e.at.clone(),
                _ => Pos::before(until),
            };
            covered.push((st.read_to.pos, read_to.pos.min(until.saturating_sub(half))));
            entries.extend(fresh);
        }
        // the sweep (see `derive`): entries behind the cursor that are neither done nor
        // pending were passed because of a clock error on some node
        if st.last_sweep.elapsed() >= SWEEP_EVERY || st.swept_at_recovery != self.clock.recoveries() {
            let back = i64::try_from(SWEEP_WINDOW.as_micros()).unwrap_or(0);
            let from = Pos::before(st.cursor.pos.saturating_sub(back));
            let old = self.read_entries(part, &from, st.cursor.pos, usize::MAX).await?;
            let missed: Vec<_> = old
                .into_iter()
                .filter(|e| !e.done && !st.by_key.contains_key(&e.key()) && !st.marking.contains(&e.at))
                .collect();
            if !missed.is_empty() {
                tracing::warn!(
                    partition = part,
                    entries = missed.len(),
                    "the sweep found undelivered journal entries the forwarder had passed"
                );
                metrics::counter!(SWEPT_TOTAL, "follower" => FNS).increment(missed.len() as u64);
            }
            entries.extend(missed);
            st.last_sweep = Instant::now();
            st.swept_at_recovery = self.clock.recoveries();
        }
        let n = entries.len();
        for e in entries {
            st.seen.insert(e.at.clone());
            let key = e.key();
            if e.done {
                continue;
            }
            match st.by_key.get(&key) {
                // this very entry, read again (a round that failed half-way is repeated
                // from its start): already pending
                Some(at) if *at == e.at => continue,
                // another entry of the same document (a retransmission) is pending here:
                // this one is done, so that no sweep ever sends it again
                Some(_) => {
                    self.entry_done(part, &e.at).await?;
                    continue;
                }
                None => {}
            }
            if st.marking.contains(&e.at) {
                // delivered; its mark is being written
                continue;
            }
            let delivered = if st.early.remove(&key) {
                true
            } else if e.dup {
                // a retransmission's entry: only if the document is not delivered yet
                self.delivery_row(&key).await?.is_some_and(|d| d.delivered)
            } else {
                false
            };
            if delivered {
                self.entry_done(part, &e.at).await?;
                continue;
            }
            let queued_at = e.meta.received_at;
            st.by_key.insert(key, e.at.clone());
            st.pending.insert(
                e.at,
                Pending {
                    key,
                    queued_at,
                    next_attempt_at: e.next_attempt_at.unwrap_or(queued_at),
                    attempts: e.attempts,
                    last_error: None,
                },
            );
        }
        st.read_to = st.read_to.clone().max(read_to);
        if reread {
            st.last_reread = Instant::now();
        }
        // what has been seen without a hole extends the bound the cursor may reach
        for (from, through) in covered {
            if from <= st.safe_to {
                st.safe_to = st.safe_to.max(through);
            }
        }
        let keep_from = st.read_to.pos.saturating_sub(settle_us.saturating_mul(2));
        st.seen.retain(|p| p.pos >= keep_from);
        metrics::counter!(JOURNAL_ENTRIES_TOTAL, "follower" => FNS).increment(n as u64);
        self.fns_persist(part, st, false).await
    }

    /// Moves the persisted cursor to the first pending entry (or what was read), never
    /// past the settle time, and writes the backlog row.
    async fn fns_persist(&self, part: u16, st: &mut FnsState, force: bool) -> Result<(), StoreError> {
        let first_pending = st.first_open().unwrap_or(st.read_to.pos);
        // (a swept entry behind the cursor does not move the cursor back: it is pending
        // in memory, and the next sweep finds it again if this node stops)
        // (and never past what this state has surely seen: entries may become visible up
        // to half the settle time after their position, so a read passes them unseen;
        // only a later re-read of that window extends `safe_to` over them)
        let cursor = Pos::before(first_pending.min(st.read_to.pos).min(st.safe_to).min(self.settled_before()));
        let oldest = st.pending.values().map(|p| p.queued_at).min();
        let lag = oldest.map_or(0.0, |t| Timestamp::now().since(t).as_secs_f64());
        metrics::gauge!(JOURNAL_LAG_SECONDS, "follower" => FNS).set(lag);
        if !force && st.last_persist.elapsed() < PERSIST_EVERY {
            return Ok(());
        }
        let now = keys::monotonic_now();
        if cursor > st.cursor {
            let at = CqlTimestamp(now / 1000);
            self.write(&self.st.cur_set, (part_value(part)?, FNS, cursor.hour(), cursor.pos, at, now)).await?;
            st.cursor = cursor;
        }
        let pending = i64::try_from(st.pending.len()).unwrap_or(i64::MAX);
        self.write(&self.st.backlog_set, (part_value(part)?, pending, oldest.map(ts), CqlTimestamp(now / 1000), now))
            .await?;
        st.last_persist = Instant::now();
        Ok(())
    }

    /// The marks of one delivered document: its entry done (when it was pending here)
    /// and its delivery state.
    async fn mark_one(
        &self,
        part: u16,
        key: &DocumentKey,
        entry: Option<&(Pos, Pending)>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let f = fn_text(&key.fn_number)?;
        let queued = match entry {
            Some((pos, p)) => {
                self.entry_done(part, pos).await?;
                Some(p.queued_at)
            }
            None => self.received_at(key).await?,
        };
        let queued = queued.unwrap_or(at);
        self.write(
            &self.st.dlv_delivered,
            (ts(queued), ts(at), ts(at), f.as_str(), fd_bucket(key.fd), keys::fd_value(key.fd)),
        )
        .await
    }

    async fn entry_done(&self, part: u16, at: &Pos) -> Result<(), StoreError> {
        self.write(&self.st.jr_done, (part_value(part)?, at.hour(), at.pos, at.fn_text.as_str(), at.fd)).await
    }

    async fn delivery_row(&self, key: &DocumentKey) -> Result<Option<DeliveryRow>, StoreError> {
        let f = fn_text(&key.fn_number)?;
        let row: Option<DeliveryRowTuple> =
            self.one(&self.st.dlv_get, (f.as_str(), fd_bucket(key.fd), keys::fd_value(key.fd))).await?;
        match row {
            Some(t) => DeliveryRow::from_tuple(t, &format!("{}/{}", key.fn_number, key.fd)),
            None => Ok(None),
        }
    }

    /// The receive time of a stored document.
    async fn received_at(&self, key: &DocumentKey) -> Result<Option<Timestamp>, StoreError> {
        let f = fn_text(&key.fn_number)?;
        let row: Option<(Option<CqlTimestamp>,)> =
            self.one(&self.st.doc_received, (f.as_str(), fd_bucket(key.fd), keys::fd_value(key.fd))).await?;
        Ok(row.and_then(|(t,)| t).map(from_ts))
    }
}

#[async_trait]
impl DeliveryStore for ScyllaStore {
    async fn due_deliveries(&self, partition: u16, now: Timestamp, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let _t = OpTimer::start("due_deliveries");
        let state = self.fns_state(partition).await?;
        let mut st = state.lock().await;
        self.fns_refresh(partition, &mut st).await?;
        let mut due: Vec<(&Pos, &Pending)> = st.pending.iter().filter(|(_, p)| p.next_attempt_at <= now).collect();
        due.sort_by(|a, b| (a.1.next_attempt_at, a.0).cmp(&(b.1.next_attempt_at, b.0)));
        Ok(due.into_iter().take(limit as usize).map(|(_, p)| delivery_of(partition, p)).collect())
    }

    /// No journal read here for entries handed out by `due_deliveries` (the forwarder's
    /// case): the partition's lock is held only to take them out, and the marks of
    /// different documents are written concurrently.
    async fn mark_delivered(&self, keys: &[DocumentKey], at: Timestamp) -> Result<(), StoreError> {
        let _t = OpTimer::start("mark_delivered");
        let mut by_part: BTreeMap<u16, Vec<DocumentKey>> = BTreeMap::new();
        for k in keys {
            by_part.entry(delivery_partition(&k.fn_number)).or_default().push(*k);
        }
        for (part, keys) in by_part {
            let state = self.fns_state(part).await?;
            let taken: Vec<(DocumentKey, Option<(Pos, Pending)>)> = {
                let mut st = state.lock().await;
                if keys.iter().any(|k| !st.by_key.contains_key(k)) {
                    // not handed out by `due_deliveries` (yet): read what is new, so that
                    // its entry is marked done, not only remembered here
                    self.fns_refresh(part, &mut st).await?;
                }
                keys.into_iter()
                    .map(|k| {
                        let e = st.remove(&k);
                        match &e {
                            Some((pos, _)) => {
                                st.marking.insert(pos.clone());
                            }
                            None if st.early.len() < MAX_EARLY_MARKS => {
                                st.early.insert(k);
                            }
                            None => {}
                        }
                        (k, e)
                    })
                    .collect()
            };
            let results =
                futures::future::join_all(taken.iter().map(|(k, e)| self.mark_one(part, k, e.as_ref(), at))).await;
            let mut st = state.lock().await;
            let mut first_err = None;
            for ((_, e), r) in taken.into_iter().zip(results) {
                match (e, r) {
                    (Some((pos, _)), Ok(())) => {
                        st.marking.remove(&pos);
                    }
                    (Some((pos, p)), Err(err)) => {
                        st.restore(pos, p);
                        first_err.get_or_insert(err);
                    }
                    (None, Err(err)) => {
                        first_err.get_or_insert(err);
                    }
                    (None, Ok(())) => {}
                }
            }
            if let Some(e) = first_err {
                return Err(e);
            }
            self.fns_persist(part, &mut st, false).await?;
        }
        Ok(())
    }

    async fn record_delivery_failure(
        &self,
        key: &DocumentKey,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        let _t = OpTimer::start("record_delivery_failure");
        let part = delivery_partition(&key.fn_number);
        let state = self.fns_state(part).await?;
        let mut st = state.lock().await;
        if !st.by_key.contains_key(key) {
            // not handed out by `due_deliveries` (yet): read what is new, so that its
            // entry carries the rescheduling
            self.fns_refresh(part, &mut st).await?;
        }
        let now = Timestamp::now();
        let error: String = error.chars().take(1000).collect();
        let (queued_at, attempts) = match st.by_key.get(key).cloned() {
            Some(pos) => {
                let p = st.pending.get_mut(&pos).ok_or_else(|| StoreError::Io("pending entry vanished".into()))?;
                p.attempts += 1;
                p.next_attempt_at = next_attempt_at;
                p.last_error = Some(error.clone());
                let (q, a) = (p.queued_at, p.attempts);
                let attempts = i32::try_from(a).unwrap_or(i32::MAX);
                self.write(
                    &self.st.jr_retry,
                    (
                        ts(next_attempt_at),
                        attempts,
                        part_value(part)?,
                        pos.hour(),
                        pos.pos,
                        pos.fn_text.as_str(),
                        pos.fd,
                    ),
                )
                .await?;
                (q, a)
            }
            None => {
                // not pending here: the document must exist
                let Some(q) = self.received_at(key).await? else {
                    return Err(StoreError::NotFound(format!("no document {}/{}", key.fn_number, key.fd)));
                };
                let before = self.delivery_row(key).await?.map_or(0, |d| d.attempts);
                (q, before + 1)
            }
        };
        let f = fn_text(&key.fn_number)?;
        self.write(
            &self.st.dlv_failed,
            (
                ts(queued_at),
                i32::try_from(attempts).unwrap_or(i32::MAX),
                error.as_str(),
                ts(now),
                ts(next_attempt_at),
                f.as_str(),
                fd_bucket(key.fd),
                keys::fd_value(key.fd),
            ),
        )
        .await
    }

    async fn get_delivery(&self, key: &DocumentKey) -> Result<Option<Delivery>, StoreError> {
        let _t = OpTimer::start("get_delivery");
        let partition = delivery_partition(&key.fn_number);
        if let Some(d) = self.delivery_row(key).await? {
            return Ok(Some(Delivery {
                key: *key,
                partition,
                status: if d.delivered { DeliveryStatus::Delivered } else { DeliveryStatus::Pending },
                queued_at: d.queued_at,
                attempts: d.attempts,
                next_attempt_at: d.next_attempt_at,
                last_attempt_at: d.last_attempt_at,
                last_error: d.last_error,
                delivered_at: d.delivered_at,
            }));
        }
        // no attempt yet: pending since it was received, if it exists
        Ok(self.received_at(key).await?.map(|q| Delivery {
            key: *key,
            partition,
            status: DeliveryStatus::Pending,
            queued_at: q,
            attempts: 0,
            next_attempt_at: q,
            last_attempt_at: None,
            last_error: None,
            delivered_at: None,
        }))
    }

    /// The partitions this node follows count from memory; the others from the backlog
    /// rows their followers wrote (when fresh), else this node follows them too.
    async fn backlog(&self) -> Result<BacklogStats, StoreError> {
        let _t = OpTimer::start("backlog");
        let rows: Vec<(i16, Option<i64>, Option<CqlTimestamp>, Option<CqlTimestamp>)> =
            self.all_rows(&self.st.backlog_all, ()).await?;
        let now = Timestamp::now();
        let fresh: HashMap<u16, (u64, Option<Timestamp>)> = rows
            .into_iter()
            .filter(|(_, _, _, at)| at.is_some_and(|a| now.since(from_ts(a)) < BACKLOG_FRESH))
            .filter_map(|(p, n, oldest, _)| {
                Some((u16::try_from(p).ok()?, (u64::try_from(n.unwrap_or(0)).unwrap_or(0), oldest.map(from_ts))))
            })
            .collect();
        let mut total = BacklogStats::default();
        let mut add = |s: BacklogStats| {
            total.pending += s.pending;
            total.oldest_queued_at = match (total.oldest_queued_at, s.oldest_queued_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        };
        for p in 0..DELIVERY_PARTITIONS {
            let local = self.follow.fns_get(p);
            let used_here = match &local {
                Some(s) => s.lock().await.last_used.elapsed() < BACKLOG_FRESH,
                None => false,
            };
            if !used_here && let Some((n, oldest)) = fresh.get(&p) {
                add(BacklogStats { pending: *n, oldest_queued_at: *oldest });
                continue;
            }
            let state = self.fns_state(p).await?;
            let mut st = state.lock().await;
            self.fns_refresh(p, &mut st).await?;
            add(st.stats());
        }
        Ok(total)
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.lease(name, holder, ttl).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.unlease(name, holder).await
    }

    async fn cluster_nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        self.live_nodes().await
    }

    fn announce_signer(&self, fingerprint: &str) {
        self.announce_fingerprint(fingerprint);
    }

    fn forget_partition(&self, partition: u16) {
        self.follow.fns_remove(partition);
    }
}
