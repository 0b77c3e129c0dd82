//! The group-commit writer: one OS thread, one bounded queue, one batch and one sync per
//! group.
//!
//! The thread blocks for the first request, then drains whatever else is already queued
//! (up to `max_batch_documents` / `max_batch_requests`), so under load one sync covers
//! many documents and when idle a lone document is committed at once (no timer, no added
//! latency). For the group it:
//!
//! 1. stages every request into a [`Tx`]: an in-memory overlay over the database, so
//!    that later requests of the same group see earlier ones (a duplicate inside a batch
//!    is found; two admin writes to one register apply in order). Each request is staged
//!    in its own layer and dropped whole if it fails (a `Conflict` changes nothing);
//! 2. writes the overlay as ONE fjall batch with an explicit `PersistMode` (sync for any
//!    durable request or admin write; `Buffer` only for an all-`Buffered` group);
//! 3. only after `commit` returned, completes every waiter. A failed commit reports the
//!    error to every waiter of the group: nothing is reported durable. A failed sync
//!    poisons the store (the durable state is unknown); a journal write refused for lack
//!    of space does not (nothing was synced, recovery drops a torn tail): the store pauses
//!    intake and this thread reopens the database when space is back
//!    ([`super::lifecycle::reopen`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use fjall::PersistMode;
use tokio::sync::{mpsc, oneshot};

use super::{EmbeddedOptions, Engine, Ks, META_PENDING, Shared, codec, fj, keys, space};
use crate::error::StoreError;
use crate::ids::Rnm;
use crate::metrics as m;
use crate::model::{AppendOutcome, DocumentRecord, RegisterActivity, delivery_partition};
use crate::store::{Committed, Durability};

/// What completes a staged mutation once the group's commit is known.
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A mutation: stages writes into the group and returns its completion.
type MutateFn = Box<dyn for<'a, 'b> FnOnce(&'a mut Tx<'b>) -> Completion + Send>;

/// A request to the writer.
pub(crate) enum Request {
    /// Append documents (the hot path).
    Append { docs: Vec<DocumentRecord>, durability: Durability, reply: oneshot::Sender<Result<Committed, StoreError>> },
    /// Any other write; always synced.
    Mutate(MutateFn),
}

impl Request {
    /// Wraps a typed mutation: on success its staged layer joins the group and the result
    /// is sent after the commit; on error the layer is dropped and the error sent.
    pub(crate) fn mutate<T, F>(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        Request::Mutate(Box::new(move |tx: &mut Tx<'_>| -> Completion {
            match f(tx) {
                Ok(v) => {
                    tx.keep_layer();
                    Box::new(move |res: Result<(), StoreError>| {
                        let _ = reply.send(res.map(|()| v));
                    })
                }
                Err(e) => {
                    tx.drop_layer();
                    Box::new(move |_| {
                        let _ = reply.send(Err(e));
                    })
                }
            }
        }))
    }

    fn documents(&self) -> usize {
        match self {
            Request::Append { docs, .. } => docs.len(),
            Request::Mutate(_) => 1,
        }
    }
}

type Overlay = BTreeMap<(Ks, Vec<u8>), Option<Vec<u8>>>;

/// Staged writes of one group over the database: reads see staged values first.
pub(crate) struct Tx<'e> {
    eng: &'e Engine,
    group: Overlay,
    layer: Overlay,
    group_pending: i64,
    layer_pending: i64,
}

impl<'e> Tx<'e> {
    fn new(eng: &'e Engine) -> Self {
        Self { eng, group: BTreeMap::new(), layer: BTreeMap::new(), group_pending: 0, layer_pending: 0 }
    }

    /// Reads a key: this request's writes, then the group's, then the database.
    pub(crate) fn get(&self, ks: Ks, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let k = (ks, key.to_vec());
        if let Some(v) = self.layer.get(&k) {
            return Ok(v.clone());
        }
        if let Some(v) = self.group.get(&k) {
            return Ok(v.clone());
        }
        Ok(self.eng.ks(ks).get(key).map_err(fj("read"))?.map(|v| v.to_vec()))
    }

    /// Stages an insert.
    pub(crate) fn put(&mut self, ks: Ks, key: impl Into<Vec<u8>>, value: Vec<u8>) {
        self.layer.insert((ks, key.into()), Some(value));
    }

    /// Stages an insert straight into the group, past this request's layer: only for
    /// writes that can no longer be dropped (an append's second, infallible phase),
    /// saving the merge of the layer into the group.
    fn put_final(&mut self, ks: Ks, key: impl Into<Vec<u8>>, value: Vec<u8>) {
        self.group.insert((ks, key.into()), Some(value));
    }

    /// Stages a removal.
    pub(crate) fn del(&mut self, ks: Ks, key: impl Into<Vec<u8>>) {
        self.layer.insert((ks, key.into()), None);
    }

    /// Adjusts the pending-outbox counter.
    pub(crate) fn pending_delta(&mut self, d: i64) {
        self.layer_pending += d;
    }

    /// Keys with `prefix`, database merged with staged writes, ascending.
    pub(crate) fn prefix_keys(&self, ks: Ks, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut set = std::collections::BTreeSet::new();
        for g in self.eng.ks(ks).prefix(prefix) {
            set.insert(g.key().map_err(fj("scan"))?.to_vec());
        }
        for layer in [&self.group, &self.layer] {
            for ((k_ks, k), v) in layer.range((ks, prefix.to_vec())..) {
                if *k_ks != ks || !k.starts_with(prefix) {
                    break;
                }
                match v {
                    Some(_) => set.insert(k.clone()),
                    None => set.remove(k),
                };
            }
        }
        Ok(set.into_iter().collect())
    }

    pub(crate) fn keep_layer(&mut self) {
        let layer = std::mem::take(&mut self.layer);
        self.group.extend(layer);
        self.group_pending += std::mem::take(&mut self.layer_pending);
    }

    pub(crate) fn drop_layer(&mut self) {
        self.layer.clear();
        self.layer_pending = 0;
    }
}

/// The writer thread's state.
pub(crate) struct Writer {
    eng: Arc<Engine>,
    shared: Arc<Shared>,
    opts: EmbeddedOptions,
    /// Pending outbox entries (persisted under `META_PENDING` in every batch that changes it).
    pending: u64,
    /// Syncs attempted (for the fault-injection hook).
    syncs: u64,
    /// A `Buffer` commit happened since the last sync.
    unsynced: bool,
    /// What the writer knows of committed state, to keep point reads off the hot path.
    known: Known,
}

/// Facts about COMMITTED data that only this thread can change (it is the only writer),
/// so they stay exact: updated after a successful commit, dropped on a failed one.
///
/// * `fd_max[fn]`: every stored document of `fn` has an FD at most this. FNs number their
///   documents consecutively, so a new document is nearly always above it and needs no
///   duplicate lookup; a retransmission (FD not above) is still looked up.
/// * `activity[rnm]`: the register's stored activity, saving a read and a decode per
///   document.
///
/// Both are bounded: past their caps they are cleared and refill lazily from disk.
#[derive(Default)]
struct Known {
    fd_max: HashMap<ffd::FnNumber, u32>,
    activity: HashMap<Rnm, RegisterActivity>,
}

impl Known {
    const MAX_FNS: usize = 2_000_000;
    const MAX_ACTIVITIES: usize = 500_000;

    /// The highest committed FD of `fn_number` (`None`: no document), probing the store
    /// once per FN with a reverse prefix scan.
    fn fd_max(&mut self, eng: &Engine, fn_number: &ffd::FnNumber) -> Result<Option<u32>, StoreError> {
        if let Some(m) = self.fd_max.get(fn_number) {
            return Ok(Some(*m));
        }
        let last = eng.ks(Ks::Docs).prefix(fn_number.as_bytes()).next_back();
        let max = match last {
            None => None,
            Some(g) => Some(keys::doc_decode_tail(&g.key().map_err(fj("probe last FD"))?)?.fd),
        };
        if let Some(m) = max {
            if self.fd_max.len() >= Self::MAX_FNS {
                self.fd_max.clear();
            }
            self.fd_max.insert(*fn_number, m);
        }
        Ok(max)
    }
}

/// An append waiting for the commit.
struct Waiting {
    outcomes: Vec<AppendOutcome>,
    reply: oneshot::Sender<Result<Committed, StoreError>>,
}

impl Writer {
    pub(crate) fn new(eng: Arc<Engine>, shared: Arc<Shared>, opts: EmbeddedOptions, pending: u64) -> Self {
        Self { eng, shared, opts, pending, syncs: 0, unsynced: false, known: Known::default() }
    }

    pub(crate) fn spawn(mut self, mut rx: mpsc::Receiver<Request>) -> Result<std::thread::JoinHandle<()>, StoreError> {
        std::thread::Builder::new()
            .name("storage-writer".into())
            .spawn(move || {
                // If this thread dies of a bug, nothing can be committed any more:
                // say so through health instead of leaving callers with `Closed`.
                let _guard = PanicPoison(self.shared.clone());
                let mut group = Vec::new();
                while let Some(first) = rx.blocking_recv() {
                    let mut docs = first.documents();
                    group.push(first);
                    while docs < self.opts.max_batch_documents && group.len() < self.opts.max_batch_requests {
                        match rx.try_recv() {
                            Ok(r) => {
                                docs += r.documents();
                                group.push(r);
                            }
                            Err(_) => break,
                        }
                    }
                    metrics::gauge!(m::COMMIT_QUEUE_DEPTH).set(rx.len() as f64);
                    if self.shared.space.is_full() && self.shared.space.room_to_reopen() {
                        match self.reopen() {
                            Some(w) => self = w,
                            // could not reopen: poisoned; the group's waiters see `Closed`
                            None => return,
                        }
                    }
                    self.process(std::mem::take(&mut group));
                }
            })
            .map_err(|e| StoreError::Io(format!("cannot start the writer thread: {e}")))
    }

    fn process(&mut self, group: Vec<Request>) {
        let eng = self.eng.clone();
        if let Err(e) = self.shared.writable() {
            // Poisoned, or the disk is full and not reopened yet: fail fast, write nothing.
            let mut scratch = Tx::new(&eng);
            for r in group {
                count_error(&e);
                match r {
                    Request::Append { reply, .. } => {
                        let _ = reply.send(Err(e.clone()));
                    }
                    Request::Mutate(f) => {
                        let complete = f(&mut scratch);
                        complete(Err(e.clone()));
                    }
                }
            }
            return;
        }
        let mut tx = Tx::new(&eng);
        let mut activities: HashMap<Rnm, RegisterActivity> = HashMap::new();
        // documents staged by earlier requests of this group (key -> raw, ack)
        let mut staged: HashMap<[u8; keys::DOC_KEY_LEN], (Bytes, Bytes)> = HashMap::new();
        let mut stored: Vec<(ffd::FnNumber, u32)> = Vec::new();
        // the new documents, moved out of their requests for the report aggregator
        let mut fresh: Vec<DocumentRecord> = Vec::new();
        let mut waiting = Vec::new();
        let mut completions: Vec<Completion> = Vec::new();
        let mut want_sync = false;
        let mut batch_docs = 0usize;

        for r in group {
            match r {
                Request::Append { docs, durability, reply } => {
                    want_sync |= durability == Durability::Durable;
                    batch_docs += docs.len();
                    match stage_append(&mut tx, &mut self.known, &mut activities, &mut staged, &docs) {
                        Ok(outcomes) => {
                            tx.keep_layer();
                            for (d, o) in docs.into_iter().zip(&outcomes) {
                                if *o == AppendOutcome::Stored {
                                    staged.insert(keys::doc(&d.key()), (d.raw.clone(), d.ack.clone()));
                                    stored.push((d.fn_number, d.fd));
                                    fresh.push(d);
                                }
                            }
                            waiting.push(Waiting { outcomes, reply });
                        }
                        Err(e) => {
                            tx.drop_layer();
                            count_error(&e);
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Request::Mutate(f) => {
                    want_sync = true;
                    completions.push(f(&mut tx));
                }
            }
        }
        for (rnm, act) in &activities {
            tx.group.insert((Ks::Activity, keys::rnm(rnm).to_vec()), Some(codec::encode_activity(act)));
        }
        let new_pending = if tx.group_pending != 0 {
            let p = (self.pending as i64 + tx.group_pending).max(0) as u64;
            tx.group.insert((Ks::Meta, META_PENDING.to_vec()), Some(p.to_be_bytes().to_vec()));
            p
        } else {
            self.pending
        };

        let result = self.commit(tx.group, want_sync);
        match result {
            Ok(synced) => {
                self.pending = new_pending;
                // the group is committed: fold it into what the writer knows
                for (fn_number, fd) in stored {
                    if let Some(m) = self.known.fd_max.get_mut(&fn_number) {
                        *m = (*m).max(fd);
                    } else {
                        if self.known.fd_max.len() >= Known::MAX_FNS {
                            self.known.fd_max.clear();
                        }
                        // stored means absent before: if it was never probed, the probe
                        // found nothing, so this FD is the highest
                        self.known.fd_max.insert(fn_number, fd);
                    }
                }
                if self.known.activity.len() + activities.len() > Known::MAX_ACTIVITIES {
                    self.known.activity.clear();
                }
                self.known.activity.extend(activities);
                let durability = if synced { Durability::Durable } else { Durability::Buffered };
                metrics::histogram!(m::COMMIT_BATCH_DOCUMENTS).record(batch_docs as f64);
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                if synced {
                    self.shared.synced_commits.fetch_add(1, Ordering::Relaxed);
                }
                self.shared.documents.fetch_add(batch_docs as u64, Ordering::Relaxed);
                // hand the new documents to the report aggregator (a non-blocking channel
                // send; the folding happens on its own thread, off the acknowledgment
                // path) before answering, so that a `settle` after the answer sees them
                self.shared.reports.feed(fresh);
                for w in waiting {
                    let _ = w.reply.send(Ok(Committed { outcomes: w.outcomes, durability }));
                }
                for c in completions {
                    c(Ok(()));
                }
            }
            Err(e) => {
                count_error(&e);
                // nothing of the group is known to be stored: forget what it touched
                self.known = Known::default();
                // ... but a refused write may still reach the journal (ENOSPC): the report
                // aggregator looks at what is stored instead of what was handed over
                if !fresh.is_empty() {
                    self.shared.reports.rescan();
                }
                for w in waiting {
                    let _ = w.reply.send(Err(e.clone()));
                }
                for c in completions {
                    c(Err(e.clone()));
                }
            }
        }
    }

    /// Writes the staged overlay as one batch; returns whether it was synced.
    ///
    /// The batch is handed to the OS first (`PersistMode::Buffer`: write(2) only) and
    /// synced by a separate `persist`, so a failure says which of the two failed. A write
    /// refused for lack of space is clean: nothing of the group was synced or answered,
    /// earlier groups were synced, and fjall's recovery drops a torn tail — the store
    /// pauses intake and reopens when space is back (`StoreError::Unavailable`). Any
    /// other write error, and every sync error (fsyncgate), leaves the durable state
    /// unknown: the store is poisoned (`StoreError::Io`).
    fn commit(&mut self, staged: Overlay, want_sync: bool) -> Result<bool, StoreError> {
        let sync = want_sync;
        let started = Instant::now();
        if staged.is_empty() {
            // Nothing to write. A durable request still needs earlier `Buffered` commits
            // (e.g. the original of a duplicate) to be on disk before it is answered.
            if sync && self.unsynced {
                self.sync_only()?;
                self.unsynced = false;
            }
            return Ok(sync);
        }
        // Room on the file system: refused before anything is written (clean).
        let bytes: usize = staged.iter().map(|((_, k), v)| k.len() + v.as_ref().map_or(0, Vec::len) + 16).sum();
        self.shared.space.reserve(u64::try_from(bytes).unwrap_or(u64::MAX))?;
        let unsafe_no_persist = sync && self.opts.unsafe_ack_without_persist;
        let write_mode = if unsafe_no_persist { None } else { Some(PersistMode::Buffer) };
        let mut batch =
            fjall::OwnedWriteBatch::with_capacity(self.eng.db().clone(), staged.len()).durability(write_mode);
        for ((ks, key), value) in staged {
            match value {
                Some(v) => batch.insert(self.eng.ks(ks), key, v),
                None => batch.remove(self.eng.ks(ks), key),
            }
        }
        if let Err(e) = batch.commit() {
            metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
            return Err(match e {
                fjall::Error::Io(io) if space::is_out_of_space(&io) => {
                    StoreError::Unavailable(self.shared.space.disk_full(&io.to_string()))
                }
                e => {
                    let reason = format!("group commit failed: {e}");
                    self.shared.poison(reason.clone());
                    StoreError::Io(reason)
                }
            });
        }
        if sync && !unsafe_no_persist {
            self.syncs += 1;
            let res = if self.opts.fail_sync_at == Some(self.syncs) {
                // The write reached the OS, the sync "fails": exactly the fsyncgate case.
                Err(format!("injected sync failure at sync #{}", self.syncs))
            } else {
                self.opts.sync_delay.wait();
                self.eng.db().persist(self.opts.sync_mode.persist_mode()).map_err(|e| format!("sync failed: {e}"))
            };
            if let Err(reason) = res {
                metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
                self.shared.poison(reason.clone());
                return Err(StoreError::Io(reason));
            }
        }
        metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        self.unsynced = !sync;
        Ok(sync)
    }

    fn sync_only(&mut self) -> Result<(), StoreError> {
        self.syncs += 1;
        let res = if self.opts.fail_sync_at == Some(self.syncs) {
            Err(StoreError::Io(format!("injected sync failure at sync #{}", self.syncs)))
        } else {
            self.eng
                .db()
                .persist(self.opts.sync_mode.persist_mode())
                .map_err(|e| StoreError::Io(format!("sync failed: {e}")))
        };
        if let Err(e) = &res {
            self.shared.poison(e.to_string());
        }
        res
    }

    /// After a journal write failed for lack of space, reopens the database
    /// ([`super::lifecycle::reopen`]); `None` when that failed (the store is poisoned).
    fn reopen(self) -> Option<Self> {
        let Writer { eng, shared, opts, pending, syncs, unsynced, .. } = self;
        let (eng, pending) = super::lifecycle::reopen(eng, &shared, &opts, pending)?;
        // the recovered journal may hold a group whose write was refused (ENOSPC after
        // fjall had buffered it): visible only now, so the aggregator's scan at the refusal
        // could not see it — scan again
        shared.reports.rescan();
        let mut w = Writer::new(eng, shared, opts, pending);
        w.syncs = syncs;
        w.unsynced = unsynced;
        Some(w)
    }
}

/// Poisons the store if the writer thread unwinds.
struct PanicPoison(Arc<Shared>);

impl Drop for PanicPoison {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poison("the group-commit writer thread panicked".into());
        }
    }
}

fn count_error(e: &StoreError) {
    metrics::counter!(m::COMMIT_ERRORS_TOTAL, "error" => e.code()).increment(1);
}

/// Stages one append request; on error nothing of it is kept (the caller drops the layer).
fn stage_append(
    tx: &mut Tx<'_>,
    known: &mut Known,
    activities: &mut HashMap<Rnm, RegisterActivity>,
    staged: &mut HashMap<[u8; keys::DOC_KEY_LEN], (Bytes, Bytes)>,
    docs: &[DocumentRecord],
) -> Result<Vec<AppendOutcome>, StoreError> {
    // Phase 1 (fallible reads): decide every outcome; load the activities to fold into.
    let mut outcomes = Vec::with_capacity(docs.len());
    let mut in_request: HashMap<[u8; keys::DOC_KEY_LEN], (Bytes, Bytes)> = HashMap::new();
    for d in docs {
        let key = keys::doc(&d.key());
        let staged_before = in_request.get(&key).or_else(|| staged.get(&key));
        let outcome = if let Some((raw, ack)) = staged_before {
            AppendOutcome::Duplicate { ack: ack.clone(), identical: *raw == d.raw }
        } else if known.fd_max(tx.eng, &d.fn_number)?.is_none_or(|max| d.fd > max) {
            // above every committed FD of this FN and not staged: new, no lookup needed
            in_request.insert(key, (d.raw.clone(), d.ack.clone()));
            AppendOutcome::Stored
        } else if let Some(v) = tx.get(Ks::Docs, &key)? {
            let (raw, ack) = codec::document_raw_ack(&d.key(), &v)?;
            AppendOutcome::Duplicate { identical: raw == d.raw, ack }
        } else {
            in_request.insert(key, (d.raw.clone(), d.ack.clone()));
            AppendOutcome::Stored
        };
        if outcome == AppendOutcome::Stored && !activities.contains_key(&d.rnm) {
            let act = match known.activity.get(&d.rnm) {
                Some(a) => a.clone(),
                None => match tx.get(Ks::Activity, &keys::rnm(&d.rnm))? {
                    Some(v) => codec::decode_activity(&v)?,
                    None => RegisterActivity::default(),
                },
            };
            activities.insert(d.rnm.clone(), act);
        }
        outcomes.push(outcome);
    }
    // Phase 2 (infallible, so written straight into the group): stage the new documents
    // with their index and outbox entries.
    for (d, o) in docs.iter().zip(&outcomes) {
        if *o != AppendOutcome::Stored {
            continue;
        }
        let key = d.key();
        let dk = keys::doc(&key);
        tx.put_final(Ks::Docs, dk, codec::encode_document(d));
        tx.put_final(Ks::DocsByRnm, keys::by_rnm(&d.rnm, d.received_at, &key), Vec::new());
        // queued for FNS: one key in the untried outbox. The delivery record, the retry
        // outbox and the age index are written only when a delivery is attempted
        // (documents.rs), saving two keys per document here.
        tx.put_final(Ks::Untried, keys::outbox(delivery_partition(&d.fn_number), d.received_at, &key), Vec::new());
        tx.group_pending += 1;
        if let Some(a) = activities.get_mut(&d.rnm) {
            a.absorb(d);
        }
    }
    Ok(outcomes)
}
