//! The report fold: the deriver's last step of a round (`derive`), which adds the
//! documents of the round's journal entries to their FN's report aggregates
//! (`fn_reports`, `gapped_fns`; the fold itself is `model::report`).
//!
//! An FN belongs to one journal partition, so only the holder of that partition's deriver
//! lease writes its rows. Per round and FN:
//! 1. the FN's continuity (cached, or read once) says which FDs were folded; only the
//!    entries of other FDs are looked at, and only their documents are read (the journal
//!    entry has no container), at most `append_concurrency` reads at once;
//! 2. each document is recorded in the continuity and added to its bucket row (local
//!    day, or UTC hour when undated) and its shift row; each row also records the FDs it
//!    counted and skips one it has, so a row never counts a document twice whatever mix
//!    of late or lost writes it was built from;
//! 3. the continuity row and the rows that changed are written as one single-partition
//!    unlogged batch (applied atomically within the partition) with the lease's fenced
//!    timestamp; an FN whose first hole opens gets its `gapped_fns` row before the
//!    batch, one whose last hole closes loses it after the batch.
//!
//! A failed write leaves the outcome unknown: the cached report state of the partition is
//! dropped (read again when next needed) and the round fails, so its entries are read and
//! folded again — the continuity then says which documents are in.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use scylla::serialize::row::SerializeRow;

use super::keys::{self, fd_bucket, fn_prefix};
use super::rows::{from_json, to_json};
use super::state::{Agg, AggRow, DeriveState, Entry, FdSet, FnReport, ReportCache, ShiftMeta, kind};
use super::store::{ScyllaStore, ordered, unordered};
use crate::error::StoreError;
use crate::model::{Bucket, Continuity, DocFacts, DocumentRecord, Totals};

/// FNs whose report state a partition keeps cached before the untouched ones are dropped.
const FN_CACHE_MAX: usize = 20_000;
/// Aggregate rows kept cached per FN before the untouched ones are dropped.
const ROWS_CACHE_MAX: usize = 64;

/// The row a document's figures go to.
pub(super) fn bucket_key(b: Bucket) -> (i16, i64) {
    match b {
        Bucket::Day(d) => (kind::DAY, i64::from(d)),
        Bucket::UtcHour(h) => (kind::HOUR, h),
    }
}

/// Folds one document into an FN's state; the rows it changed go to `dirty`. False if the
/// continuity had its FD already. The rows it needs must be in `rep.rows` or absent from
/// the store (an absent row starts empty).
pub(super) fn fold_doc(rep: &mut FnReport, doc: &DocumentRecord, dirty: &mut BTreeSet<(i16, i64)>) -> bool {
    if !rep.continuity.record(doc.fd, doc.received_at) {
        return false;
    }
    if rep.continuity.high == Some(doc.fd) || rep.rnm.is_empty() {
        rep.rnm = doc.rnm.as_str().to_owned();
    }
    let facts = DocFacts::of(doc);
    let key = bucket_key(facts.bucket);
    let row = rep.rows.entry(key).or_insert_with(|| AggRow::empty(key.0, key.1));
    if row.fds.insert(doc.fd) {
        if let Agg::Bucket(t) = &mut row.agg {
            t.add(&facts.figures);
        }
        dirty.insert(key);
    }
    if let Some(s) = facts.shift() {
        let key = (kind::SHIFT, i64::from(s));
        let row = rep.rows.entry(key).or_insert_with(|| AggRow::empty(key.0, key.1));
        if row.fds.insert(doc.fd) {
            if let Agg::Shift(sum) = &mut row.agg {
                sum.add(doc.fd, &facts.figures);
            }
            dirty.insert(key);
        }
    }
    true
}

/// A row's `body` (shifts), `totals` and `fds` values.
type RowValues = (Option<String>, Vec<u8>, Vec<u8>);

/// What one FN's writes of a round carry.
struct FnWrite {
    fn_text: String,
    rnm: String,
    continuity: String,
    rows: Vec<((i16, i64), RowValues)>,
    /// `Some(true)`: the FN's first hole opened; `Some(false)`: its last one closed.
    gapped: Option<bool>,
}

/// A row's values: `body` (shifts), `totals`, `fds`.
fn row_values(row: &AggRow) -> Result<RowValues, StoreError> {
    let mut totals = Vec::new();
    let body = match &row.agg {
        Agg::Bucket(t) => {
            t.encode(&mut totals);
            None
        }
        Agg::Shift(s) => {
            s.received.encode(&mut totals);
            Some(to_json(&ShiftMeta::of(s))?)
        }
    };
    Ok((body, totals, row.fds.encode()))
}

/// A stored aggregate row back.
pub(super) fn row_from(
    fn_text: &str,
    key: (i16, i64),
    body: Option<String>,
    totals: Option<Vec<u8>>,
    fds: Option<Vec<u8>>,
) -> Result<AggRow, StoreError> {
    let what = || format!("report row {}/{}/{}", fn_text.trim_end(), key.0, key.1);
    let t = totals_from(totals.as_deref(), &what())?;
    let fds = match fds {
        Some(b) => FdSet::decode(&b).ok_or_else(|| StoreError::Corrupt(format!("{}: FD set", what())))?,
        None => FdSet::default(),
    };
    let agg = if key.0 == kind::SHIFT {
        let meta: ShiftMeta = from_json(&what(), body.as_deref().unwrap_or("{}"))?;
        let shift = u32::try_from(key.1).map_err(|_| StoreError::Corrupt(format!("{}: shift number", what())))?;
        Agg::Shift(meta.into_summary(shift, t))
    } else {
        Agg::Bucket(t)
    };
    Ok(AggRow { fds, agg })
}

/// Decodes a `totals` cell (absent: empty).
pub(super) fn totals_from(b: Option<&[u8]>, what: &str) -> Result<Totals, StoreError> {
    match b {
        None => Ok(Totals::default()),
        Some(b) => match Totals::decode(b) {
            Some((t, [])) => Ok(t),
            _ => Err(StoreError::Corrupt(format!("{what}: totals"))),
        },
    }
}

impl ScyllaStore {
    /// Folds the documents of `entries` into their FNs' report aggregates (module docs).
    pub(super) async fn fold_reports(
        &self,
        st: &mut DeriveState,
        entries: &[Entry],
        lease: &str,
    ) -> Result<(), StoreError> {
        let mut touched = HashSet::new();
        let r = self.fold_round(&mut st.reports, entries, lease, &mut touched).await;
        if r.is_err() {
            // what the cache says may differ from what is stored now
            st.reports.clear();
        } else if st.reports.len() > FN_CACHE_MAX {
            st.reports.retain(|f, _| touched.contains(f));
        }
        r
    }

    async fn fold_round(
        &self,
        cache: &mut ReportCache,
        entries: &[Entry],
        lease: &str,
        touched: &mut HashSet<String>,
    ) -> Result<(), StoreError> {
        let conc = self.cfg.append_concurrency;
        // 1. the continuity of each FN of the round
        let mut by_fn: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
        for e in entries {
            by_fn.entry(e.at.fn_text.as_str()).or_default().push(e);
        }
        let missing: Vec<&str> = by_fn.keys().copied().filter(|f| !cache.contains_key(*f)).collect();
        let loaded = ordered(missing.iter().map(|f| self.read_report_state(f)).collect(), conc).await?;
        for (f, rep) in missing.into_iter().zip(loaded) {
            cache.insert(f.to_owned(), rep);
        }
        // 2. the documents of FDs not folded yet, once each
        let mut todo: Vec<&Entry> = Vec::new();
        for (f, es) in &by_fn {
            let Some(rep) = cache.get(*f) else { continue };
            let mut fds = HashSet::new();
            todo.extend(es.iter().copied().filter(|e| !rep.continuity.contains(e.meta.fd) && fds.insert(e.meta.fd)));
        }
        if todo.is_empty() {
            return Ok(());
        }
        let docs = ordered(todo.iter().map(|e| self.doc_for_fold(e)).collect(), conc).await?;
        // 3. the aggregate rows they go to, read unless cached
        let mut need: BTreeSet<(&str, i16, i64)> = BTreeSet::new();
        for (e, doc) in todo.iter().zip(&docs) {
            let f = e.at.fn_text.as_str();
            let Some(rep) = cache.get(f) else { continue };
            let facts = DocFacts::of(doc);
            let (k, b) = bucket_key(facts.bucket);
            let shift = facts.shift().map(|s| (kind::SHIFT, i64::from(s)));
            for (k, b) in [Some((k, b)), shift].into_iter().flatten() {
                if !rep.rows.contains_key(&(k, b)) {
                    need.insert((f, k, b));
                }
            }
        }
        let need: Vec<(&str, i16, i64)> = need.into_iter().collect();
        let rows = ordered(need.iter().map(|(f, k, b)| self.read_report_row(f, (*k, *b))).collect(), conc).await?;
        for ((f, k, b), row) in need.into_iter().zip(rows) {
            if let (Some(rep), Some(row)) = (cache.get_mut(f), row) {
                rep.rows.insert((k, b), row);
            }
        }
        // 4. fold, FN by FN
        let mut per_fn: BTreeMap<&str, Vec<&DocumentRecord>> = BTreeMap::new();
        for (e, doc) in todo.iter().zip(&docs) {
            per_fn.entry(e.at.fn_text.as_str()).or_default().push(doc);
        }
        let mut writes = Vec::new();
        for (f, mut docs) in per_fn {
            let Some(rep) = cache.get_mut(f) else { continue };
            // in the order they were received (the journal's order within a round is
            // that of concurrent writes; across rounds the order can still differ, which
            // `Continuity::record` gives the same holes and times for)
            docs.sort_by_key(|d| (d.received_at, d.fd));
            touched.insert(f.to_owned());
            let was_gapped = rep.continuity.missing() > 0;
            let mut dirty = BTreeSet::new();
            let mut changed = false;
            for doc in docs {
                changed |= fold_doc(rep, doc, &mut dirty);
            }
            if !changed {
                continue;
            }
            let gapped = rep.continuity.missing() > 0;
            let mut rows = Vec::with_capacity(dirty.len());
            for key in &dirty {
                if let Some(row) = rep.rows.get(key) {
                    rows.push((*key, row_values(row)?));
                }
            }
            if rep.rows.len() > ROWS_CACHE_MAX {
                rep.rows.retain(|k, _| dirty.contains(k));
            }
            writes.push(FnWrite {
                fn_text: f.to_owned(),
                rnm: rep.rnm.clone(),
                continuity: to_json(&rep.continuity)?,
                rows,
                gapped: (gapped != was_gapped).then_some(gapped),
            });
        }
        // 5. write, FN by FN
        let futs: Vec<_> = writes.iter().map(|w| self.write_fn_reports(w, lease)).collect();
        unordered(futs, conc).await?;
        Ok(())
    }

    /// One FN's writes: its `gapped_fns` row first when a hole opened, then the batch,
    /// then the deletion of the `gapped_fns` row when the last hole closed.
    async fn write_fn_reports(&self, w: &FnWrite, lease: &str) -> Result<(), StoreError> {
        let prefix = fn_prefix(&w.fn_text);
        if w.gapped == Some(true) {
            self.dir_text("gapped_fns", "", &prefix).await?;
            self.write(&self.st.gap_put, (prefix.as_str(), w.fn_text.as_str(), self.fenced(lease)?)).await?;
        }
        let ts = self.fenced(lease)?;
        let mut stmts = vec![&self.st.rep_cont_put];
        let mut values: Vec<Box<dyn SerializeRow + Send + Sync + '_>> =
            vec![Box::new((w.fn_text.as_str(), w.rnm.as_str(), w.continuity.as_str(), ts))];
        for ((k, b), (body, totals, fds)) in &w.rows {
            stmts.push(&self.st.rep_row_put);
            values.push(Box::new((w.fn_text.as_str(), *k, *b, body.as_deref(), totals.as_slice(), fds.as_slice(), ts)));
        }
        self.partition_batch(stmts, values).await?;
        if w.gapped == Some(false) {
            self.write(&self.st.gap_delete, (self.fenced(lease)?, prefix.as_str(), w.fn_text.as_str())).await?;
        }
        Ok(())
    }

    /// The continuity row of an FN as stored (empty when there is none).
    async fn read_report_state(&self, fn_text: &str) -> Result<FnReport, StoreError> {
        let row: Option<(Option<String>, Option<String>)> = self.one(&self.st.rep_cont_get, (fn_text,)).await?;
        let Some((rnm, body)) = row else { return Ok(FnReport::default()) };
        let continuity: Continuity = match body {
            Some(b) => from_json(&format!("continuity of {}", fn_text.trim_end()), &b)?,
            None => Continuity::default(),
        };
        if !continuity.is_consistent() {
            return Err(StoreError::Corrupt(format!("continuity of {}: inconsistent holes", fn_text.trim_end())));
        }
        Ok(FnReport { continuity, rnm: rnm.unwrap_or_default(), rows: Default::default() })
    }

    /// One aggregate row as stored (`None`: absent).
    async fn read_report_row(&self, fn_text: &str, key: (i16, i64)) -> Result<Option<AggRow>, StoreError> {
        type Row = (Option<String>, Option<Vec<u8>>, Option<Vec<u8>>);
        let row: Option<Row> = self.one(&self.st.rep_row_get, (fn_text, key.0, key.1)).await?;
        row.map(|(body, totals, fds)| row_from(fn_text, key, body, totals, fds)).transpose()
    }

    /// The stored document of an entry: the entry's record with the stored container. A
    /// document that cannot be read (never expected: the entry is written after it) is
    /// folded from the entry alone, as unreadable, and logged.
    async fn doc_for_fold(&self, e: &Entry) -> Result<DocumentRecord, StoreError> {
        let fd = e.meta.fd;
        let row: Option<(Option<Vec<u8>>, Option<bool>)> =
            self.one(&self.st.doc_raw, (e.at.fn_text.as_str(), fd_bucket(fd), keys::fd_value(fd))).await?;
        let mut doc = e.meta.clone();
        match row {
            Some((Some(raw), opaque)) => {
                doc.raw = raw.into();
                doc.opaque = opaque.unwrap_or(doc.opaque);
            }
            _ => tracing::warn!(
                fn_number = %e.at.fn_text.trim_end(),
                fd,
                "the document of a journal entry is not readable; counted as unreadable in reports"
            ),
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ffd::FnNumber;

    use super::*;
    use crate::ids::{Rnm, Timestamp};
    use crate::model::Recomputed;

    fn doc(fd: u32, time: Option<i64>, received_s: i64) -> DocumentRecord {
        DocumentRecord {
            fn_number: FnNumber::parse_strict("9999078900005488").expect("fn"),
            fd,
            rnm: Rnm::parse("0000000005008570").expect("rnm"),
            doc_type: 3,
            ffd_version: None,
            doc_time: time.map(Timestamp::from_unix_secs),
            received_at: Timestamp::from_unix_secs(received_s),
            total: None,
            fiscal_sign: None,
            response_code: 0,
            flk_error: None,
            opaque: time.is_none(),
            telemetry: None,
            raw: Bytes::new(),
            ack: Bytes::new(),
        }
    }

    /// The state a deriver would hold after folding `docs` in rounds of `round`, each
    /// round's rows written and read back in their stored form.
    fn fold_all(docs: &[DocumentRecord], round: usize) -> FnReport {
        let mut rep = FnReport::default();
        for chunk in docs.chunks(round) {
            let mut dirty = BTreeSet::new();
            for d in chunk {
                fold_doc(&mut rep, d, &mut dirty);
            }
            for key in dirty {
                let (body, totals, fds) = row_values(&rep.rows[&key]).expect("values");
                let back = row_from("f", key, body, Some(totals), Some(fds)).expect("row");
                assert_eq!(back, rep.rows[&key]);
            }
        }
        rep
    }

    #[test]
    fn folding_matches_the_recomputation_whatever_the_repeats() {
        let mut docs = Vec::new();
        for fd in [1u32, 2, 5, 3, 9, 8] {
            docs.push(doc(fd, (fd % 3 != 0).then_some(86_400 * i64::from(fd % 2)), 1_000 + i64::from(fd)));
        }
        let mut again = docs.clone();
        again.extend(docs.iter().rev().cloned());
        let rep = fold_all(&again, 4);
        let mut want = Recomputed::default();
        for d in &docs {
            want.fold(d);
        }
        assert_eq!(rep.continuity.received, want.continuity.received);
        assert_eq!(rep.continuity.missing(), 3);
        for (b, t) in &want.buckets {
            match &rep.rows[&bucket_key(*b)].agg {
                Agg::Bucket(got) => assert_eq!(got, t, "{b:?}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(rep.rows.len(), want.buckets.len() + want.shifts.len());
    }

    #[test]
    fn a_row_that_has_an_fd_does_not_count_it_again() {
        // a late write left a row knowing FD 7 while the continuity does not
        let mut rep = FnReport::default();
        let d = doc(7, Some(86_400), 10);
        let mut dirty = BTreeSet::new();
        assert!(fold_doc(&mut rep, &d, &mut dirty));
        let row = rep.rows.clone();
        let mut fresh = FnReport { rows: row, ..FnReport::default() };
        let mut dirty = BTreeSet::new();
        assert!(fold_doc(&mut fresh, &d, &mut dirty), "the continuity records it");
        assert!(dirty.is_empty(), "no row changes");
        assert_eq!(fresh.rows, rep.rows);
        assert_eq!(fresh.continuity.received, 1);
    }
}
