//! The deriver: follows the journal and maintains what is derived from the documents —
//! the time index (`documents_by_register`), the directories of FD buckets and register
//! days, the activity of each (register, FN) with the FDs received (`fn_activity`), and
//! the report aggregates of each FN (`fn_reports`, `gapped_fns`).
//!
//! Last in each round, the documents of FDs not folded yet are added to their FN's
//! report aggregates (`fold`).
//!
//! One node at a time follows a journal partition, under the lease of its group
//! (`derive-<p % 8>`, see [`DERIVE_GROUPS`]); the 8 groups are shared out evenly among the
//! live nodes (`leases`). A round reads the
//! entries after what was read (and, every quarter of the settle time, the settle window
//! behind it again, for entries that became visible late), applies them, writes the
//! activity rows it changed with the lease's fenced timestamp, and moves the persisted
//! cursor — never past entries younger than the settle time. Applying an entry twice is
//! harmless: index rows and directories are idempotent upserts, and the activity of a
//! (register, FN) folds each FD once (its `FdLedger`), so a restart or a takeover that
//! re-reads entries behind the cursor changes nothing. The lag of the derived views is
//! the round interval while this node holds the partition (a metric shows it).
//!
//! **The sweep.** A node whose clock jumped could write entries further behind than the
//! settle window, or make this follower read too far ahead. Clock offsets beyond a
//! quarter of the settle time are refused (no appends, no rounds), and every
//! [`SWEEP_EVERY`] — at once after the clock came back in bounds — the deriver re-reads
//! the last [`SWEEP_WINDOW`] behind its cursor and applies the entries whose FD is not
//! folded yet (the activity's ledger says which are): reads, no writes, when nothing was
//! missed. A metric counts what a sweep found.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::directory::dir_ttl;
use super::keys::{self, day_of};
use super::rows::{from_json, to_json, ts};
use super::state::{DERIVE, DeriveState, Entry, FnActivity, Pos};
use super::store::ScyllaStore;
use crate::error::StoreError;
use crate::metrics::{JOURNAL_ENTRIES_TOTAL, JOURNAL_LAG_SECONDS, SWEPT_TOTAL};
use crate::model::DocumentRecord;

/// Entries one round applies at most per partition.
const ROUND_LIMIT: usize = 2000;
/// Activity rows cached per partition before the clean ones are dropped.
const CACHE_MAX: usize = 100_000;
/// Persist a moved cursor at most this often (it is re-derivable; this bounds writes).
const PERSIST_EVERY: Duration = Duration::from_secs(5);
/// How often passed hour partitions are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// How often the recent past is swept (and at once after the clock came back in bounds).
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// How far behind the cursor a sweep looks.
pub(super) const SWEEP_WINDOW: Duration = Duration::from_secs(900);

/// The deriver's 64 partitions are leased in this many groups (partition `p` belongs to
/// group `p % DERIVE_GROUPS`): eight lightweight transactions per renewal instead of 64,
/// and still an even split for up to eight nodes.
pub(super) const DERIVE_GROUPS: u16 = 8;

/// The lease group of a partition.
pub(super) fn group_of(part: u16) -> u16 {
    part % DERIVE_GROUPS
}

/// The lease name of a partition's deriver (its group's).
pub(super) fn lease_name(part: u16) -> String {
    format!("{DERIVE}-{}", group_of(part))
}

impl ScyllaStore {
    /// The state of a partition this node just took: its persisted cursor.
    pub(super) async fn derive_state(&self, part: u16) -> Result<DeriveState, StoreError> {
        Ok(DeriveState::new(self.cursor(part, DERIVE).await?))
    }

    /// One round of a partition. Returns the entries applied.
    pub(super) async fn derive_round(
        &self,
        part: u16,
        st: &mut DeriveState,
        reread: bool,
    ) -> Result<usize, StoreError> {
        let lease = lease_name(part);
        let settle_us = i64::try_from(self.cfg.journal_settle().as_micros()).unwrap_or(i64::MAX);
        let until = keys::now_micros();
        // entries after what was read
        let mut entries = self.read_entries(part, &st.read_to, until, ROUND_LIMIT).await?;
        let exhausted = entries.len() < ROUND_LIMIT;
        let new_read_to = match entries.last() {
            Some(e) if !exhausted => e.at.clone(),
            _ => Pos::before(until),
        };
        // the settle window behind, again
        let reread = reread || st.last_reread.elapsed() >= self.cfg.journal_settle() / 4;
        if reread {
            let from = Pos::before(st.read_to.pos.saturating_sub(settle_us)).max(st.cursor.clone());
            let late = self.read_entries(part, &from, st.read_to.pos.saturating_add(1), usize::MAX).await?;
            entries.extend(late.into_iter().filter(|e| e.at <= st.read_to && !st.seen.contains(&e.at)));
            st.last_reread = Instant::now();
        }
        // the sweep: the recent past again, behind the cursor too, for entries that a
        // clock error on some node let this follower pass; only FDs not folded yet are
        // applied (the activity's ledger says which were), so it costs reads, not writes
        if st.last_sweep.elapsed() >= SWEEP_EVERY || st.swept_at_recovery != self.clock.recoveries() {
            let from = Pos::before(st.cursor.pos.saturating_sub(i64::try_from(SWEEP_WINDOW.as_micros()).unwrap_or(0)));
            let old = self.read_entries(part, &from, st.read_to.pos.saturating_add(1), usize::MAX).await?;
            let old: Vec<Entry> = old.into_iter().filter(|e| e.at <= st.read_to && !st.seen.contains(&e.at)).collect();
            let mut missed = Vec::new();
            for e in old {
                if !self.folded(st, &e).await? {
                    missed.push(e);
                }
            }
            if !missed.is_empty() {
                tracing::warn!(
                    partition = part,
                    entries = missed.len(),
                    "the sweep found journal entries the deriver had passed"
                );
                metrics::counter!(SWEPT_TOTAL, "follower" => DERIVE).increment(missed.len() as u64);
            }
            entries.extend(missed);
            st.last_sweep = Instant::now();
            st.swept_at_recovery = self.clock.recoveries();
        }
        let applied = entries.len();
        self.apply(part, st, &entries, &lease).await?;
        for e in entries {
            st.seen.insert(e.at);
        }
        st.read_to = st.read_to.clone().max(new_read_to);
        if reread {
            // both reads ran after `until` was taken: whatever had landed below it is in
            st.surely_to = st.surely_to.max(st.read_to.pos);
        }
        // forget what the re-read will no longer look at
        let keep_from = Pos::before(st.read_to.pos.saturating_sub(settle_us.saturating_mul(2)));
        st.seen = st.seen.split_off(&keep_from);
        // the persisted cursor: everything read, but nothing younger than the settle time
        let cursor = Pos::before(st.read_to.pos.min(self.settled_before()));
        if cursor > st.cursor && st.last_persist.elapsed() >= PERSIST_EVERY {
            self.set_cursor(part, DERIVE, &cursor, &lease).await?;
            st.cursor = cursor;
            st.last_persist = Instant::now();
        }
        if st.last_prune.elapsed() >= PRUNE_EVERY {
            // hours both followers have passed go as a whole (rows also expire by TTL)
            let fns = self.cursor(part, super::state::FNS).await?;
            let from = if st.pruned_below == i32::MIN { st.cursor.hour() - 24 * 90 } else { st.pruned_below };
            st.pruned_below = self.prune(part, &st.cursor, &fns, from.max(fns.hour() - 24 * 90)).await?;
            st.last_prune = Instant::now();
        }
        let lag = (keys::now_micros() - st.read_to.pos).max(0) as f64 / 1e6;
        metrics::gauge!(JOURNAL_LAG_SECONDS, "follower" => DERIVE).set(lag);
        metrics::counter!(JOURNAL_ENTRIES_TOTAL, "follower" => DERIVE).increment(applied as u64);
        Ok(applied)
    }

    /// Whether an entry's FD was folded into its (register, FN) activity already.
    async fn folded(&self, st: &mut DeriveState, e: &Entry) -> Result<bool, StoreError> {
        let key = (e.meta.rnm.as_str().to_owned(), e.at.fn_text.clone());
        if !st.activity.contains_key(&key) {
            for (f, a) in self.read_activity_rows(&key.0).await? {
                st.activity.entry((key.0.clone(), f)).or_insert(a);
            }
        }
        Ok(st.activity.get(&key).is_some_and(|a| a.ledger.contains(e.meta.fd)))
    }

    /// Applies entries: index rows and directories, then the activity rows they change.
    async fn apply(&self, part: u16, st: &mut DeriveState, entries: &[Entry], lease: &str) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let futs: Vec<_> = entries.iter().map(|e| self.index(&e.meta, &e.at.fn_text)).collect();
        super::store::unordered(futs, self.cfg.append_concurrency).await?;
        let mut dirty: HashSet<(String, String)> = HashSet::new();
        for e in entries {
            let key = (e.meta.rnm.as_str().to_owned(), e.at.fn_text.clone());
            if !st.activity.contains_key(&key) {
                let rows = self.read_activity_rows(&key.0).await?;
                for (f, a) in rows {
                    st.activity.entry((key.0.clone(), f)).or_insert(a);
                }
            }
            let a = st.activity.entry(key.clone()).or_default();
            if a.fold(&e.meta) {
                dirty.insert(key);
            }
        }
        let mut writes = Vec::with_capacity(dirty.len());
        for key in &dirty {
            let Some(a) = st.activity.get(key) else { continue };
            let body = to_json(a)?;
            let ts = self.fenced(lease)?;
            writes.push(async move { self.write(&self.st.act_put, (key.0.as_str(), key.1.as_str(), body, ts)).await });
        }
        super::store::unordered(writes, self.cfg.append_concurrency).await?;
        if st.activity.len() > CACHE_MAX {
            st.activity.retain(|k, _| dirty.contains(k));
        }
        // the report aggregates of the FNs (`fold`): each FD once, per FN one batch
        self.fold_reports(st, entries, lease).await?;
        let _ = part;
        Ok(())
    }

    /// The index row and the directory entries of one document.
    async fn index(&self, doc: &DocumentRecord, fn_text: &str) -> Result<(), StoreError> {
        let day = day_of(doc.received_at);
        let idx = self.write(
            &self.st.idx_insert,
            (doc.rnm.as_str(), day, ts(doc.received_at), fn_text, keys::fd_value(doc.fd), i16::from(doc.doc_type)),
        );
        let fn_dir = self.dir_int("fn_docs", fn_text, i64::from(keys::fd_bucket(doc.fd)), dir_ttl::fn_docs());
        let reg_dir = self.dir_int("reg_docs", doc.rnm.as_str(), i64::from(day), dir_ttl::reg_docs());
        futures::try_join!(idx, fn_dir, reg_dir)?;
        Ok(())
    }

    /// The activity rows of a register, by stored FN.
    pub(super) async fn read_activity_rows(&self, rnm: &str) -> Result<Vec<(String, FnActivity)>, StoreError> {
        let rows: Vec<(String, Option<String>)> = self.rows(&self.st.act_get, (rnm,)).await?;
        rows.into_iter()
            .map(|(f, body)| {
                let a: FnActivity =
                    from_json(&format!("activity of {rnm}/{}", f.trim_end()), body.as_deref().unwrap_or("{}"))?;
                Ok((f, a))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ffd::FnNumber;

    use super::*;
    use crate::ids::{Rnm, Timestamp};

    fn doc(fd: u32, code: u8) -> DocumentRecord {
        DocumentRecord {
            fn_number: FnNumber::parse_strict("9999078900005488").expect("fn"),
            fd,
            rnm: Rnm::parse("0000000005008570").expect("rnm"),
            doc_type: 3,
            ffd_version: None,
            doc_time: None,
            received_at: Timestamp(i64::from(fd) * 1000),
            total: None,
            fiscal_sign: None,
            response_code: code,
            flk_error: None,
            opaque: false,
            telemetry: None,
            raw: Bytes::new(),
            ack: Bytes::new(),
        }
    }

    #[test]
    fn each_fd_is_folded_once_whatever_the_order_and_the_repeats() {
        let mut a = FnActivity::default();
        for fd in [3, 1, 2, 3, 1, 5, 2, 5] {
            a.fold(&doc(fd, if fd == 2 { 14 } else { 0 }));
        }
        assert_eq!(a.activity.documents, 4);
        assert_eq!(a.activity.flk_errors, 1);
        assert_eq!(a.activity.last_fd, Some(5));
        assert_eq!(a.ledger.gaps, vec![4]);
        let json = to_json(&a).expect("json");
        assert_eq!(from_json::<FnActivity>("x", &json).expect("back"), a);
    }
}
