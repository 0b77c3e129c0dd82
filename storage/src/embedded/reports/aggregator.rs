//! The `storage-reports` thread: folds new documents into per-FN report state and
//! persists what changed, each FN's continuity with the rows it guards, in one mutation.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ffd::FnNumber;
use tokio::sync::oneshot;

use super::{Group, Hub, codec, key, read_continuity, read_shift, read_totals};
use crate::embedded::writer::Request;
use crate::embedded::{Engine, Ks, Shared, codec as doc_codec, fj, keys};
use crate::error::StoreError;
use crate::ids::Rnm;
use crate::metrics as m;
use crate::model::{Bucket, Continuity, DocFacts, DocumentKey, DocumentRecord, ShiftSummary, Totals};

/// How often changed state is persisted (and the report lag when nobody settles).
const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// Flush early past this many changed rows.
const FLUSH_ROWS: usize = 50_000;
/// FNs kept in memory before they are all dropped (after a flush, so all are clean); rows
/// an FN moved away from are dropped at each flush.
const CACHE_FNS: usize = 100_000;
/// Flushes an FN may go without a document before its current day and shift rows (≈ 2.7 KB
/// together) are dropped, keeping only its continuity (≈ 150 bytes with its map entry): a
/// fleet's registers mostly send a document every few minutes, so holding every FN's rows
/// would cost ≈ 3–6 KB per register — more than its idle connection. A document after that
/// reads the two rows back.
const ROWS_IDLE_FLUSHES: u8 = 12;

/// A row to write: key, and value or deletion.
type Row = (Vec<u8>, Option<Vec<u8>>);

/// A row the aggregator holds: where it belongs, its value, whether it changed since the
/// last flush.
struct Slot<K, V> {
    at: K,
    row: V,
    dirty: bool,
}

/// What the aggregator holds for one FN: its continuity, and the bucket and shift rows
/// its latest document went to (documents of an FN arrive in order, so the next one
/// almost always goes to the same two: one map lookup per document).
struct FnState {
    rnm: Rnm,
    cont: Continuity,
    dirty: bool,
    gapped: bool,
    /// Flushes since the FN's last document (saturating).
    idle: u8,
    /// Boxed: an FN whose rows were dropped costs only the pointers.
    day: Option<Box<Slot<Bucket, Totals>>>,
    shift: Option<Box<Slot<u32, ShiftSummary>>>,
}

#[derive(Default)]
struct State {
    fns: HashMap<FnNumber, FnState>,
    /// Rows an FN moved away from (an earlier day or shift, a late document's).
    buckets: HashMap<(FnNumber, Bucket), (Totals, bool)>,
    shifts: HashMap<(FnNumber, u32), (ShiftSummary, bool)>,
    changed: usize,
}

/// Marks a row changed, counting it once per flush.
fn touch(dirty: &mut bool, changed: &mut usize) {
    if !*dirty {
        *dirty = true;
        *changed += 1;
    }
}

impl State {
    /// Folds one stored document; false if its FD was folded before.
    fn fold(&mut self, eng: &Engine, doc: &DocumentRecord) -> Result<bool, StoreError> {
        let State { fns, buckets, shifts, changed } = self;
        let f = doc.fn_number;
        let st = match fns.entry(f) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let (cont, rnm) = match read_continuity(eng, &f)? {
                    Some(c) => (c.continuity, c.rnm),
                    None => (Continuity::default(), doc.rnm.clone()),
                };
                let gapped = cont.missing() > 0;
                e.insert(FnState { rnm, cont, dirty: false, gapped, idle: 0, day: None, shift: None })
            }
        };
        st.idle = 0;
        if st.cont.contains(doc.fd) {
            return Ok(false);
        }
        // load the rows first: a failed read leaves the FD unrecorded, so that the document
        // is folded whole later, never recorded without being counted
        let facts = DocFacts::of(doc);
        if st.day.as_ref().is_none_or(|d| d.at != facts.bucket) {
            if let Some(old) = st.day.take() {
                buckets.insert((f, old.at), (old.row, old.dirty));
            }
            let (row, dirty) = match buckets.remove(&(f, facts.bucket)) {
                Some(parked) => parked,
                None => (read_totals(eng, &f, facts.bucket)?.unwrap_or_default(), false),
            };
            st.day = Some(Box::new(Slot { at: facts.bucket, row, dirty }));
        }
        if let Some(s) = facts.shift()
            && st.shift.as_ref().is_none_or(|x| x.at != s)
        {
            if let Some(old) = st.shift.take() {
                shifts.insert((f, old.at), (old.row, old.dirty));
            }
            let (row, dirty) = match shifts.remove(&(f, s)) {
                Some(parked) => parked,
                None => {
                    let stored = read_shift(eng, &f, s)?;
                    (stored.unwrap_or(ShiftSummary { shift: s, ..Default::default() }), false)
                }
            };
            st.shift = Some(Box::new(Slot { at: s, row, dirty }));
        }
        if !st.cont.record(doc.fd, doc.received_at) {
            return Ok(false);
        }
        touch(&mut st.dirty, changed);
        if let Some(d) = st.day.as_mut() {
            d.row.add(&facts.figures);
            touch(&mut d.dirty, changed);
        }
        if facts.shift().is_some()
            && let Some(x) = st.shift.as_mut()
        {
            x.row.add(doc.fd, &facts.figures);
            touch(&mut x.dirty, changed);
        }
        Ok(true)
    }

    /// Drops what is held for an FN after a failed fold: its continuity and rows are read
    /// back from the store, which holds them consistently (what was folded but not yet
    /// persisted is folded again by the scan).
    fn forget(&mut self, f: &FnNumber) {
        self.fns.remove(f);
        self.buckets.retain(|(x, _), _| x != f);
        self.shifts.retain(|(x, _), _| x != f);
    }

    /// The changed rows.
    fn changes(&self) -> Vec<Row> {
        let mut rows = Vec::with_capacity(self.changed + 8);
        let totals = |t: &Totals| {
            let mut v = Vec::with_capacity(48);
            t.encode(&mut v);
            v
        };
        for (f, st) in &self.fns {
            if st.dirty {
                rows.push((key::continuity(f), Some(codec::encode_continuity(&st.rnm, &st.cont))));
                let gapped = st.cont.missing() > 0;
                if gapped != st.gapped {
                    rows.push((key::gapped(f), gapped.then(Vec::new)));
                }
            }
            if let Some(d) = st.day.as_ref().filter(|d| d.dirty) {
                rows.push((key::bucket(f, d.at), Some(totals(&d.row))));
            }
            if let Some(x) = st.shift.as_ref().filter(|x| x.dirty) {
                rows.push((key::shift(f, x.at), Some(codec::encode_shift(&x.row))));
            }
        }
        for ((f, b), (t, _)) in self.buckets.iter().filter(|(_, (_, d))| *d) {
            rows.push((key::bucket(f, *b), Some(totals(t))));
        }
        for ((f, s), (summary, _)) in self.shifts.iter().filter(|(_, (_, d))| *d) {
            rows.push((key::shift(f, *s), Some(codec::encode_shift(summary))));
        }
        rows
    }

    /// After a successful flush: everything is clean; the caches are bounded.
    fn flushed(&mut self) {
        for st in self.fns.values_mut() {
            st.dirty = false;
            st.gapped = st.cont.missing() > 0;
            if let Some(d) = st.day.as_mut() {
                d.dirty = false;
            }
            if let Some(x) = st.shift.as_mut() {
                x.dirty = false;
            }
            // persisted just now, so dropping them loses nothing
            st.idle = st.idle.saturating_add(1);
            if st.idle > ROWS_IDLE_FLUSHES {
                st.day = None;
                st.shift = None;
            }
        }
        // parked rows are persisted now: a late document reads them back
        self.buckets.clear();
        self.shifts.clear();
        self.changed = 0;
        if self.fns.len() > CACHE_FNS {
            self.fns.clear();
        }
    }
}

/// Starts the aggregator thread. `writer` reaches the writer's queue without keeping it
/// open (the store's close drops the last strong sender).
pub(crate) fn spawn(
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Group>,
    writer: tokio::sync::mpsc::WeakSender<Request>,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name("storage-reports".into())
        .spawn(move || run(&shared, &rx, &writer))
        .map_err(|e| StoreError::Io(format!("cannot start the reports thread: {e}")))
}

fn hub(shared: &Shared) -> &Hub {
    &shared.reports
}

fn run(shared: &Shared, rx: &mpsc::Receiver<Group>, writer: &tokio::sync::mpsc::WeakSender<Request>) {
    let mut st = State::default();
    let mut scan = true; // fold what the last run left unfolded
    let mut applied = 0u64; // the last group folded (or covered by a scan)
    let mut last_flush = Instant::now();
    let mut warned = Instant::now() - Duration::from_secs(60);
    let mut caught_up = Instant::now();
    loop {
        // the lag: how long since the persisted aggregates reflected everything stored
        if *hub(shared).flushed.borrow() >= hub(shared).fed.load(Ordering::SeqCst) {
            caught_up = Instant::now();
        }
        metrics::gauge!(m::REPORT_LAG_SECONDS).set(caught_up.elapsed().as_secs_f64());
        if scan || hub(shared).overflow.swap(false, Ordering::SeqCst) {
            let covered = hub(shared).fed.load(Ordering::SeqCst);
            match shared.engine().and_then(|eng| recover(&eng, &mut st, writer, caught_up)) {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(documents = n, "report aggregates: folded stored documents found unfolded");
                    }
                    scan = false;
                    // groups handed over before the scan are in the store: covered
                    applied = applied.max(covered);
                }
                Err(e) => {
                    hub(shared).overflow.store(true, Ordering::SeqCst);
                    metrics::counter!(m::REPORT_ERRORS_TOTAL).increment(1);
                    if warned.elapsed() > Duration::from_secs(10) {
                        tracing::warn!(error = %e, "report aggregates: scan failed; retrying");
                        warned = Instant::now();
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        let closed = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((seq, group)) => {
                fold_group(shared, &mut st, &group);
                applied = applied.max(seq);
                // take whatever else is queued without waiting
                while st.changed < FLUSH_ROWS {
                    match rx.try_recv() {
                        Ok((seq, g)) => {
                            fold_group(shared, &mut st, &g);
                            applied = applied.max(seq);
                        }
                        Err(_) => break,
                    }
                }
                false
            }
            // the store was dropped without `close`: the writer is gone, nothing can be
            // persisted any more
            Err(mpsc::RecvTimeoutError::Timeout) if writer.upgrade().is_none() => return,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => true,
        };
        let due = last_flush.elapsed() >= FLUSH_EVERY
            || st.changed >= FLUSH_ROWS
            || hub(shared).flush_now.swap(false, Ordering::SeqCst)
            || closed;
        if due {
            match flush(&mut st, writer) {
                // a dropped group is not folded before the next scan: not settled yet
                Ok(()) if hub(shared).overflow.load(Ordering::SeqCst) => {}
                Ok(()) => {
                    hub(shared).flushed.send_if_modified(|f| {
                        let moved = *f < applied;
                        *f = (*f).max(applied);
                        moved
                    });
                }
                Err(e) => {
                    metrics::counter!(m::REPORT_ERRORS_TOTAL).increment(1);
                    if warned.elapsed() > Duration::from_secs(10) {
                        tracing::warn!(error = %e, "report aggregates: could not persist; kept in memory, retrying");
                        warned = Instant::now();
                    }
                }
            }
            last_flush = Instant::now();
        }
        if closed {
            return;
        }
    }
}

fn fold_group(shared: &Shared, st: &mut State, group: &[DocumentRecord]) {
    let eng = match shared.engine() {
        Ok(e) => e,
        Err(_) => {
            // reopening: the scan will find these documents
            hub(shared).overflow.store(true, Ordering::SeqCst);
            return;
        }
    };
    for d in group {
        if let Err(e) = st.fold(&eng, d) {
            tracing::warn!(error = %e, fn_number = %d.fn_number, fd = d.fd, "report aggregates: fold failed; a scan will retry");
            metrics::counter!(m::REPORT_ERRORS_TOTAL).increment(1);
            st.forget(&d.fn_number);
            hub(shared).overflow.store(true, Ordering::SeqCst);
        }
    }
}

/// Writes the changed rows through the writer, in one group commit.
fn flush(st: &mut State, writer: &tokio::sync::mpsc::WeakSender<Request>) -> Result<(), StoreError> {
    if st.changed == 0 {
        return Ok(());
    }
    let rows = st.changes();
    let tx = writer.upgrade().ok_or(StoreError::Closed)?;
    let (reply, done) = oneshot::channel();
    let req = Request::mutate(
        move |tx| {
            for (k, v) in rows {
                match v {
                    Some(v) => tx.put(Ks::Reports, k, v),
                    None => tx.del(Ks::Reports, k),
                }
            }
            Ok(())
        },
        reply,
    );
    tx.blocking_send(req).map_err(|_| StoreError::Closed)?;
    drop(tx);
    done.blocking_recv().map_err(|_| StoreError::Closed)??;
    st.flushed();
    Ok(())
}

/// Folds every stored document whose FD its FN's continuity does not hold, flushing as it
/// goes. Returns how many were folded. An FN whose rows cannot be read, or a document that
/// cannot be decoded, is logged and left for the next scan: one bad record never stops the
/// others.
fn recover(
    eng: &Engine,
    st: &mut State,
    writer: &tokio::sync::mpsc::WeakSender<Request>,
    caught_up: Instant,
) -> Result<u64, StoreError> {
    let docs = eng.ks(Ks::Docs);
    let mut folded = 0u64;
    let mut from: Vec<u8> = Vec::new();
    let mut shown = Instant::now();
    loop {
        // a long scan (the first start after an upgrade) shows in the lag as it goes
        if shown.elapsed() >= Duration::from_secs(1) {
            metrics::gauge!(m::REPORT_LAG_SECONDS).set(caught_up.elapsed().as_secs_f64());
            shown = Instant::now();
        }
        let Some(first) = docs.range(from.clone()..).next() else { break };
        let k = first.key().map_err(fj("scan documents"))?;
        let DocumentKey { fn_number: f, .. } = keys::doc_decode_tail(&k)?;
        match recover_fn(eng, st, &f) {
            Ok(n) => folded += n,
            Err(e) => {
                tracing::warn!(error = %e, fn_number = %f, "report aggregates: cannot fold this FN's documents now");
                metrics::counter!(m::REPORT_ERRORS_TOTAL).increment(1);
                st.forget(&f);
            }
        }
        if st.changed >= FLUSH_ROWS {
            // a consistent point (whole documents folded): bound memory and the mutation
            flush(st, writer)?;
        }
        from = keys::doc_parts(&f, u32::MAX).to_vec();
        from.push(0);
    }
    Ok(folded)
}

/// The scan of one FN: the FD ranges its continuity does not hold.
fn recover_fn(eng: &Engine, st: &mut State, f: &FnNumber) -> Result<u64, StoreError> {
    let docs = eng.ks(Ks::Docs);
    let cont = match st.fns.get(f) {
        Some(s) => Some(s.cont.clone()),
        None => read_continuity(eng, f)?.map(|c| c.continuity),
    };
    let missing: Vec<(u32, u32)> = match cont {
        Some(c) => {
            let (lo, hi) = (c.low.unwrap_or(0), c.high.unwrap_or(0));
            let mut m: Vec<(u32, u32)> = Vec::new();
            if lo > 0 {
                m.push((0, lo - 1));
            }
            m.extend(c.holes.iter().map(|h| (h.from, h.to)));
            if hi < u32::MAX {
                m.push((hi + 1, u32::MAX));
            }
            m
        }
        None => vec![(0, u32::MAX)],
    };
    let mut folded = 0;
    for (lo, hi) in missing {
        for g in docs.range(keys::doc_parts(f, lo).to_vec()..=keys::doc_parts(f, hi).to_vec()) {
            let (k, v) = g.into_inner().map_err(fj("scan documents"))?;
            let key = keys::doc_decode_tail(&k)?;
            let doc = match doc_codec::decode_document(&key, &v) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, fn_number = %f, fd = key.fd, "report aggregates: stored document unreadable; not folded");
                    metrics::counter!(m::REPORT_ERRORS_TOTAL).increment(1);
                    continue;
                }
            };
            if st.fold(eng, &doc)? {
                folded += 1;
            }
        }
    }
    Ok(folded)
}
