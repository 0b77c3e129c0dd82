//! The `storage-reports` thread: folds new documents into per-FN report state and
//! persists what changed, each FN's continuity with the rows it guards, in one mutation.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ffd::FnNumber;
use tokio::sync::oneshot;

use super::{Group, Hub, key, read_continuity, read_shift, read_totals};
use crate::embedded::writer::Request;
use crate::embedded::{Engine, Ks, Shared, codec, fj, keys};
use crate::error::StoreError;
use crate::ids::Rnm;
use crate::model::{Bucket, Continuity, DocFacts, DocumentKey, DocumentRecord, FnContinuity, ShiftSummary, Totals};

/// How often changed state is persisted (and the report lag when nobody settles).
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Flush early past this many changed rows.
const FLUSH_ROWS: usize = 50_000;
/// Clean rows kept in memory before the cache is dropped.
const CACHE_ROWS: usize = 200_000;

/// A row to write: key, and value or deletion.
type Row = (Vec<u8>, Option<Vec<u8>>);

struct FnState {
    rnm: Rnm,
    cont: Continuity,
    dirty: bool,
    gapped: bool,
}

#[derive(Default)]
struct State {
    fns: HashMap<FnNumber, FnState>,
    buckets: HashMap<(FnNumber, Bucket), (Totals, bool)>,
    shifts: HashMap<(FnNumber, u32), (ShiftSummary, bool)>,
    changed: usize,
}

impl State {
    fn fn_state(&mut self, eng: &Engine, f: FnNumber, rnm: &Rnm) -> Result<&mut FnState, StoreError> {
        match self.fns.entry(f) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => {
                let (cont, rnm) = match read_continuity(eng, &f)? {
                    Some(c) => (c.continuity, c.rnm),
                    None => (Continuity::default(), rnm.clone()),
                };
                let gapped = cont.missing() > 0;
                Ok(e.insert(FnState { rnm, cont, dirty: false, gapped }))
            }
        }
    }

    /// Folds one stored document; false if its FD was folded before.
    fn fold(&mut self, eng: &Engine, doc: &DocumentRecord) -> Result<bool, StoreError> {
        let st = self.fn_state(eng, doc.fn_number, &doc.rnm)?;
        if !st.cont.record(doc.fd, doc.received_at) {
            return Ok(false);
        }
        if !st.dirty {
            st.dirty = true;
            self.changed += 1;
        }
        let facts = DocFacts::of(doc);
        let bk = (doc.fn_number, facts.bucket);
        let (t, dirty) = match self.buckets.entry(bk) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert((read_totals(eng, &doc.fn_number, facts.bucket)?.unwrap_or_default(), false)),
        };
        t.add(&facts.figures);
        if !*dirty {
            *dirty = true;
            self.changed += 1;
        }
        if let Some(s) = facts.shift() {
            let sk = (doc.fn_number, s);
            let (summary, dirty) = match self.shifts.entry(sk) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let stored = read_shift(eng, &doc.fn_number, s)?;
                    e.insert((stored.unwrap_or(ShiftSummary { shift: s, ..Default::default() }), false))
                }
            };
            summary.add(doc.fd, &facts.figures);
            if !*dirty {
                *dirty = true;
                self.changed += 1;
            }
        }
        Ok(true)
    }

    /// The changed rows.
    fn changes(&self) -> Result<Vec<Row>, StoreError> {
        let mut rows = Vec::with_capacity(self.changed + 8);
        for (f, st) in self.fns.iter().filter(|(_, s)| s.dirty) {
            let body = FnContinuity { fn_number: *f, rnm: st.rnm.clone(), continuity: st.cont.clone() };
            rows.push((key::continuity(f), Some(codec::to_json(&body)?)));
            let gapped = st.cont.missing() > 0;
            if gapped != st.gapped {
                rows.push((key::gapped(f), gapped.then(Vec::new)));
            }
        }
        for ((f, b), (t, _)) in self.buckets.iter().filter(|(_, (_, d))| *d) {
            let mut v = Vec::with_capacity(48);
            t.encode(&mut v);
            rows.push((key::bucket(f, *b), Some(v)));
        }
        for ((f, s), (summary, _)) in self.shifts.iter().filter(|(_, (_, d))| *d) {
            rows.push((key::shift(f, *s), Some(codec::to_json(summary)?)));
        }
        Ok(rows)
    }

    /// After a successful flush: everything is clean; the caches are bounded.
    fn flushed(&mut self) {
        for st in self.fns.values_mut() {
            st.dirty = false;
            st.gapped = st.cont.missing() > 0;
        }
        self.buckets.values_mut().for_each(|(_, d)| *d = false);
        self.shifts.values_mut().for_each(|(_, d)| *d = false);
        self.changed = 0;
        if self.buckets.len() + self.shifts.len() + self.fns.len() > CACHE_ROWS {
            self.buckets.clear();
            self.shifts.clear();
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
    loop {
        if scan || hub(shared).overflow.swap(false, Ordering::SeqCst) {
            let covered = hub(shared).fed.load(Ordering::SeqCst);
            match shared.engine().and_then(|eng| recover(&eng, &mut st)) {
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
            tracing::warn!(error = %e, "report aggregates: fold failed; a scan will retry");
            hub(shared).overflow.store(true, Ordering::SeqCst);
            return;
        }
    }
}

/// Writes the changed rows through the writer, in one group commit.
fn flush(st: &mut State, writer: &tokio::sync::mpsc::WeakSender<Request>) -> Result<(), StoreError> {
    if st.changed == 0 {
        return Ok(());
    }
    let rows = st.changes()?;
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

/// Folds every stored document whose FD its FN's continuity does not hold. Returns how
/// many were folded.
fn recover(eng: &Engine, st: &mut State) -> Result<u64, StoreError> {
    let docs = eng.ks(Ks::Docs);
    let mut folded = 0u64;
    let mut from: Vec<u8> = Vec::new();
    loop {
        let Some(first) = docs.range(from.clone()..).next() else { break };
        let k = first.key().map_err(fj("scan documents"))?;
        let DocumentKey { fn_number: f, .. } = keys::doc_decode_tail(&k)?;
        // the FD ranges this FN's continuity does not hold
        let missing: Vec<(u32, u32)> =
            match st.fns.get(&f).map(|s| s.cont.clone()).or(read_continuity(eng, &f)?.map(|c| c.continuity)) {
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
        for (lo, hi) in missing {
            for g in docs.range(keys::doc_parts(&f, lo).to_vec()..=keys::doc_parts(&f, hi).to_vec()) {
                let (k, v) = g.into_inner().map_err(fj("scan documents"))?;
                let doc = codec::decode_document(&keys::doc_decode_tail(&k)?, &v)?;
                if st.fold(eng, &doc)? {
                    folded += 1;
                }
            }
        }
        from = keys::doc_parts(&f, u32::MAX).to_vec();
        from.push(0);
    }
    Ok(folded)
}
