//! # Embedded backend (fjall)
//!
//! A single-node [`Store`](crate::Store) in a local directory. No server to install;
//! survives `kill -9` without losing an acknowledged document.
//!
//! ## Why it is built this way
//!
//! * **One writer thread, group commit.** Every mutation — document appends on the hot
//!   path and the rare admin writes alike — goes through one bounded queue served by one
//!   dedicated OS thread ([`writer`]). The thread drains what is queued, stages all of it
//!   into ONE fjall batch, commits it with an explicit persist mode and only then answers
//!   every waiter. One `fsync` is shared by every document in the batch, which is what
//!   makes durable acks affordable on disks where one fsync costs milliseconds. A single
//!   writer also serialises every read-modify-write (duplicate check, activity folding,
//!   version checks, outbox moves), so no locks and no lost updates.
//! * **Durability is explicit.** fjall's `WriteBatch::with_capacity` starts with *no*
//!   durability, and a batch that is never persisted can sit in an 8 KiB user-space buffer
//!   that `kill -9` loses (docs/storage-embedded.md). Every commit here names its
//!   `PersistMode`: [`SyncMode`] for anything reported [`Durability::Durable`](crate::Durability),
//!   `Buffer` only when a caller asked for `Buffered`.
//! * **Poisoning.** A failed sync leaves the on-disk state unknown (fsyncgate: a
//!   retried fsync may "succeed" with the data gone). The store then refuses every
//!   write with [`StoreError::Poisoned`], reports [`Health::Poisoned`](crate::Health) and
//!   sets the `ofd_storage_poisoned` gauge; the process is expected to exit and restart.
//! * **Free space** ([`space`]). Below `min_free_space` new documents and admin writes
//!   are refused (`Unavailable`, [`Health::Degraded`](crate::Health)) and resume by
//!   themselves when space is back. A journal *write* refused with ENOSPC is not a
//!   durability failure (the batch was never synced nor acknowledged, and fjall's
//!   recovery drops a torn tail): the writer reopens the database in-process once space
//!   is back instead of poisoning the store.
//! * **Reads** run on tokio's blocking pool (`spawn_blocking`): a long scan never stalls
//!   the async runtime that serves connections.
//!
//! Key layouts are in [`keys`], record layouts in [`codec`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::metrics as m;

pub mod codec;
mod documents;
pub mod keys;
mod lifecycle;
mod other;
mod registers;
mod reports;
mod space;
mod writer;

pub use lifecycle::{SyncDelay, SyncMode};
pub use space::MinFreeSpace;
use writer::{Request, Tx};

/// Options of the embedded store. `Default` is what production should use.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// How durable commits are synced.
    pub sync_mode: SyncMode,
    /// Most documents one group commit takes from the queue. Larger batches amortise the
    /// sync better but make the first waiter wait for more encoding work.
    pub max_batch_documents: usize,
    /// Most requests (appends or other writes) one group commit takes.
    pub max_batch_requests: usize,
    /// Capacity of the writer's queue, in requests. When it is full, callers wait: that is
    /// the backpressure the gateway turns into "stop reading from sockets".
    pub queue_capacity: usize,
    /// fjall block cache, bytes.
    pub cache_bytes: u64,
    /// Free space kept on the data directory's file system: below it new documents and
    /// admin writes are refused until space is freed ([`MinFreeSpace`]).
    pub min_free_space: MinFreeSpace,
    /// How often the monitor thread looks at the free space (the writer also looks after
    /// every sixteenth of the mark it writes).
    pub space_check_interval: Duration,
    /// Test hook: the N-th sync (1-based) fails as if `fsync` had returned EIO, after the
    /// batch was written to the OS. Used to test poisoning.
    #[doc(hidden)]
    pub fail_sync_at: Option<u64>,
    /// Test hook: while set, every durable sync takes this long first (a stalled disk).
    /// Shared by clones of the options, so a test can set and clear it while the store
    /// runs.
    #[doc(hidden)]
    pub sync_delay: SyncDelay,
    /// Negative control for the crash test ONLY: commit without persisting (fjall's
    /// `durability(None)` trap) and still report `Durable`. Never use otherwise.
    #[doc(hidden)]
    pub unsafe_ack_without_persist: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            sync_mode: SyncMode::SyncAll,
            max_batch_documents: 1024,
            max_batch_requests: 1024,
            queue_capacity: 4096,
            cache_bytes: 64 * 1024 * 1024,
            min_free_space: MinFreeSpace::default(),
            space_check_interval: Duration::from_secs(1),
            fail_sync_at: None,
            sync_delay: SyncDelay::default(),
            unsafe_ack_without_persist: false,
        }
    }
}

impl EmbeddedOptions {
    fn validate(&self) -> Result<(), StoreError> {
        if self.max_batch_documents == 0 || self.max_batch_requests == 0 {
            return Err(StoreError::Invalid("max_batch_documents and max_batch_requests must be at least 1".into()));
        }
        if self.queue_capacity == 0 {
            return Err(StoreError::Invalid("queue_capacity must be at least 1".into()));
        }
        if let MinFreeSpace::Share(h) | MinFreeSpace::Smaller(_, h) = self.min_free_space
            && h > MinFreeSpace::MAX_SHARE
        {
            return Err(StoreError::Invalid("min_free_space: a share of at most 50%".into()));
        }
        if self.space_check_interval.is_zero() {
            return Err(StoreError::Invalid("space_check_interval must be greater than zero".into()));
        }
        Ok(())
    }
}

impl Ks {
    /// Creation options. Documents (a few hundred bytes each, written once, kept for
    /// years) are stored with key-value separation: compactions then move only keys and
    /// pointers instead of rewriting every container again and again — the background
    /// work that competes with ingest for the CPU.
    fn create_options(self) -> KeyspaceCreateOptions {
        match self {
            Ks::Docs => KeyspaceCreateOptions::default()
                .with_kv_separation(Some(fjall::KvSeparationOptions::default().separation_threshold(128))),
            _ => KeyspaceCreateOptions::default(),
        }
    }
}

/// Keyspace identifiers (also the overlay's keyspace tag in [`writer::Tx`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Ks {
    Docs,
    DocsByRnm,
    Outbox,
    OutboxAge,
    Deliveries,
    Untried,
    Activity,
    Registers,
    FnIndex,
    RegUpdated,
    UnknownFns,
    Tariffs,
    Audit,
    Rules,
    AlertStates,
    Notifications,
    NotifDue,
    Jobs,
    Meta,
    Reports,
}

impl Ks {
    const ALL: [Ks; 20] = [
        Ks::Docs,
        Ks::DocsByRnm,
        Ks::Outbox,
        Ks::OutboxAge,
        Ks::Deliveries,
        Ks::Untried,
        Ks::Activity,
        Ks::Registers,
        Ks::FnIndex,
        Ks::RegUpdated,
        Ks::UnknownFns,
        Ks::Tariffs,
        Ks::Audit,
        Ks::Rules,
        Ks::AlertStates,
        Ks::Notifications,
        Ks::NotifDue,
        Ks::Jobs,
        Ks::Meta,
        Ks::Reports,
    ];

    fn name(self) -> &'static str {
        match self {
            Ks::Docs => "docs",
            Ks::DocsByRnm => "docs_by_rnm",
            Ks::Outbox => "outbox",
            Ks::OutboxAge => "outbox_age",
            Ks::Deliveries => "deliveries",
            Ks::Untried => "outbox_untried",
            Ks::Activity => "activity",
            Ks::Registers => "registers",
            Ks::FnIndex => "fn_index",
            Ks::RegUpdated => "reg_updated",
            Ks::UnknownFns => "unknown_fns",
            Ks::Tariffs => "tariffs",
            Ks::Audit => "audit",
            Ks::Rules => "rules",
            Ks::AlertStates => "alert_states",
            Ks::Notifications => "notifications",
            Ks::NotifDue => "notif_due",
            Ks::Jobs => "jobs",
            Ks::Meta => "meta",
            Ks::Reports => "reports",
        }
    }
}

/// Meta key: number of pending outbox entries (kept in the same batches that change it).
pub(crate) const META_PENDING: &[u8] = b"outbox_pending";
/// Meta key: layout version of this directory.
const META_LAYOUT: &[u8] = b"layout";
const LAYOUT_V1: &[u8] = b"ofd-embedded-v1";

/// The open database and its keyspaces, shared by the writer thread and readers.
pub(crate) struct Engine {
    db: Database,
    keyspaces: Vec<Keyspace>,
}

impl Engine {
    pub(crate) fn ks(&self, k: Ks) -> &Keyspace {
        // `keyspaces` is built from `Ks::ALL` in order, so the index always exists.
        &self.keyspaces[k as usize]
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }
}

/// Converts a fjall error, with context.
pub(crate) fn fj(context: &str) -> impl FnOnce(fjall::Error) -> StoreError + '_ {
    move |e| match e {
        fjall::Error::Poisoned => StoreError::Poisoned(format!("{context}: fjall refuses writes after a failed sync")),
        other => StoreError::Io(format!("{context}: {other}")),
    }
}

/// State shared by the store handle, the writer thread and the space monitor.
pub(crate) struct Shared {
    /// The data directory.
    pub(crate) path: PathBuf,
    /// The open database; `None` once closed, and for a moment while the writer reopens
    /// it after a full disk (`reopening`).
    engine: RwLock<Option<Arc<Engine>>>,
    reopening: AtomicBool,
    /// Free space: the watermark and the disk-full state.
    pub(crate) space: space::Space,
    poisoned: AtomicBool,
    reason: Mutex<Option<String>>,
    /// Successful group commits.
    pub(crate) commits: AtomicU64,
    /// Of which synced.
    pub(crate) synced_commits: AtomicU64,
    /// Documents in successful group commits (stored and duplicates).
    pub(crate) documents: AtomicU64,
    /// The hand-off of new documents to the report aggregator.
    pub(crate) reports: reports::Hub,
}

/// Counters of the group-commit writer since open (for benchmarks and diagnostics; the
/// same figures go to the metrics named in [`crate::metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Successful group commits.
    pub commits: u64,
    /// Of which were synced to stable storage.
    pub synced_commits: u64,
    /// Documents in those commits.
    pub documents: u64,
}

impl Shared {
    fn new(path: PathBuf, engine: Arc<Engine>, space: space::Space, reports: reports::Hub) -> Self {
        Self {
            path,
            engine: RwLock::new(Some(engine)),
            reopening: AtomicBool::new(false),
            space,
            poisoned: AtomicBool::new(false),
            reason: Mutex::new(None),
            commits: AtomicU64::new(0),
            synced_commits: AtomicU64::new(0),
            documents: AtomicU64::new(0),
            reports,
        }
    }

    /// The open database, for readers.
    pub(crate) fn engine(&self) -> Result<Arc<Engine>, StoreError> {
        match self.engine.read().map_err(|_| StoreError::Closed)?.clone() {
            Some(e) => Ok(e),
            None if self.reopening.load(Ordering::SeqCst) => {
                Err(StoreError::Unavailable("the store is reopening after a full disk; retry in a moment".into()))
            }
            None => Err(StoreError::Closed),
        }
    }

    /// Takes the database away from readers (the writer reopens it); readers get
    /// `Unavailable` until [`Shared::set_engine`].
    pub(crate) fn take_engine(&self) -> Option<Arc<Engine>> {
        self.reopening.store(true, Ordering::SeqCst);
        self.engine.write().ok().and_then(|mut e| e.take())
    }

    /// Gives readers a (re)opened database.
    pub(crate) fn set_engine(&self, engine: Arc<Engine>) {
        if let Ok(mut e) = self.engine.write() {
            *e = Some(engine);
        }
        self.reopening.store(false, Ordering::SeqCst);
    }

    /// Poisoned, or waiting to reopen after a full disk: the writer refuses the group.
    pub(crate) fn writable(&self) -> Result<(), StoreError> {
        self.check()?;
        if self.space.is_full() {
            return Err(StoreError::Unavailable(self.space.degraded().unwrap_or_else(|| "disk full".into())));
        }
        Ok(())
    }

    pub(crate) fn poison(&self, reason: String) {
        tracing::error!(%reason, "embedded store poisoned: refusing all writes until restart");
        if let Ok(mut r) = self.reason.lock()
            && r.is_none()
        {
            *r = Some(reason);
        }
        self.poisoned.store(true, Ordering::SeqCst);
        metrics::gauge!(m::POISONED).set(1.0);
    }

    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::SeqCst) { Err(StoreError::Poisoned(self.reason())) } else { Ok(()) }
    }

    fn reason(&self) -> String {
        self.reason.lock().ok().and_then(|r| r.clone()).unwrap_or_else(|| "durability failure".into())
    }
}

/// The embedded store. Cheap to share behind an `Arc`; open one per data directory
/// (fjall locks the directory: a second open fails).
pub struct EmbeddedStore {
    path: PathBuf,
    sender: RwLock<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The report aggregator (`reports`): stopped before the writer, which commits its
    /// last flush.
    aggregator: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The space monitor: dropping the sender stops it.
    monitor: Mutex<Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    shared: Arc<Shared>,
    leases: Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `path`, recovering the journal, and starts
    /// the writer thread and the space monitor. Blocking: call it before serving, or from
    /// `spawn_blocking`.
    ///
    /// A directory on a file system below `min_free_space` opens (reads work; recovery
    /// writes nothing but a truncation of a torn journal tail): the store reports
    /// `Degraded` and refuses intake until space is freed.
    pub fn open(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self, StoreError> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(|e| StoreError::Io(format!("create {}: {e}", path.display())))?;
        let space = space::Space::new(&path, options.min_free_space)?;
        let (engine, pending) = lifecycle::open_engine(&path, &options)?;
        let engine = Arc::new(engine);

        let (hub, fed) = reports::Hub::new();
        let shared = Arc::new(Shared::new(path.clone(), engine.clone(), space, hub));
        metrics::gauge!(m::POISONED).set(0.0);
        let (tx, rx) = mpsc::channel(options.queue_capacity);
        let wake = tx.downgrade();
        let wake = move || {
            // an empty write: the writer reopens the database first, then commits nothing
            if let Some(tx) = wake.upgrade() {
                let (reply, _) = oneshot::channel::<Result<(), StoreError>>();
                let _ = tx.try_send(Request::mutate(|_tx| Ok(()), reply));
            }
        };
        let monitor = lifecycle::spawn_monitor(shared.clone(), wake, options.space_check_interval)?;
        let handle = writer::Writer::new(engine, shared.clone(), options, pending).spawn(rx)?;
        let aggregator = reports::spawn(shared.clone(), fed, tx.downgrade())?;
        Ok(Self {
            path,
            sender: RwLock::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            aggregator: Mutex::new(Some(aggregator)),
            monitor: Mutex::new(Some(monitor)),
            shared,
            leases: Mutex::new(Default::default()),
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Group-commit counters since open.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            commits: self.shared.commits.load(Ordering::Relaxed),
            synced_commits: self.shared.synced_commits.load(Ordering::Relaxed),
            documents: self.shared.documents.load(Ordering::Relaxed),
        }
    }

    /// Disk space used by the database, bytes.
    pub fn disk_space(&self) -> Result<u64, StoreError> {
        self.engine()?.db.disk_space().map_err(fj("disk space"))
    }

    /// Requests waiting in the writer's queue now (at most `queue_capacity`).
    pub fn queue_depth(&self) -> usize {
        self.sender.read().ok().and_then(|s| s.as_ref().map(|tx| tx.max_capacity() - tx.capacity())).unwrap_or(0)
    }

    /// Whether intake is paused for lack of disk space (below `min_free_space`, or after a
    /// journal write failed with ENOSPC until the store reopened).
    pub fn intake_paused(&self) -> bool {
        self.shared.space.paused()
    }

    pub(crate) fn engine(&self) -> Result<Arc<Engine>, StoreError> {
        self.shared.engine()
    }

    fn sender(&self) -> Result<mpsc::Sender<Request>, StoreError> {
        self.shared.check()?;
        self.sender.read().map_err(|_| StoreError::Closed)?.clone().ok_or(StoreError::Closed)
    }

    /// Enqueues new intake for the writer (waiting while the queue is full): documents and
    /// admin writes, refused while free space is short.
    pub(crate) async fn submit(&self, req: Request) -> Result<(), StoreError> {
        if let Err(e) = self.shared.space.admit() {
            if matches!(req, Request::Append { .. }) {
                metrics::counter!(m::APPENDS_REFUSED_TOTAL, "reason" => "disk_space").increment(1);
            }
            return Err(e);
        }
        self.enqueue(req).await
    }

    async fn enqueue(&self, req: Request) -> Result<(), StoreError> {
        let tx = self.sender()?;
        let depth = tx.max_capacity() - tx.capacity();
        metrics::gauge!(m::COMMIT_QUEUE_DEPTH).set(depth as f64);
        tx.send(req).await.map_err(|_| StoreError::Closed)
    }

    /// Runs a mutation on the writer thread inside the next group commit; returns its
    /// result once the group is durable. Refused while free space is short.
    pub(crate) async fn mutate<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.submit(Request::mutate(f, reply)).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Like [`EmbeddedStore::mutate`], for delivery bookkeeping (marking documents
    /// delivered, rescheduling a failed delivery): small writes that shrink or keep the
    /// outbox, so they go on below `min_free_space` (the writer still refuses any group
    /// that would eat into the last half of the mark).
    pub(crate) async fn mutate_upkeep<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.enqueue(Request::mutate(f, reply)).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a read on the blocking pool.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, StoreError> + Send + 'static,
    {
        let eng = self.engine()?;
        tokio::task::spawn_blocking(move || f(&eng))
            .await
            .map_err(|e| StoreError::Io(format!("read task failed: {e}")))?
    }

    fn health_now(&self) -> crate::Health {
        if self.shared.check().is_err() {
            return crate::Health::Poisoned(self.shared.reason());
        }
        match self.shared.space.degraded() {
            Some(reason) => crate::Health::Degraded(reason),
            None => crate::Health::Ok,
        }
    }

    async fn close_now(&self) -> Result<(), StoreError> {
        // The aggregator persists what it folded (through the writer) and exits first.
        self.shared.reports.close();
        let aggregator = self.aggregator.lock().map_err(|_| StoreError::Closed)?.take();
        if let Some(h) = aggregator {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        // Dropping the last sender lets the writer drain what is queued and exit.
        drop(self.sender.write().map_err(|_| StoreError::Closed)?.take());
        let handle = self.writer.lock().map_err(|_| StoreError::Closed)?.take();
        let monitor = self.monitor.lock().map_err(|_| StoreError::Closed)?.take();
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            if let Some((stop, h)) = monitor {
                drop(stop);
                let _ = h.join();
            }
            if let Some(h) = handle
                && h.join().is_err()
            {
                tracing::error!("embedded store writer thread panicked");
            }
            // after the writer: it may have reopened the database meanwhile
            let engine = shared.engine.write().ok().and_then(|mut e| e.take());
            if let Some(engine) = engine {
                // Readers still running hold clones; wait (bounded) so that the
                // directory lock is released when close returns.
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while Arc::strong_count(&engine) > 1 && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                drop(engine);
            }
        })
        .await
        .map_err(|e| StoreError::Io(format!("close task failed: {e}")))
    }
}

#[async_trait::async_trait]
impl crate::store::Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn health(&self) -> crate::Health {
        self.health_now()
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.close_now().await
    }
}
