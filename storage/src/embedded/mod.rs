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
//! * **Poisoning.** A failed commit or sync leaves the on-disk state unknown (fsyncgate:
//!   a retried fsync may "succeed" with the data gone). The store then refuses every
//!   write with [`StoreError::Poisoned`], reports [`Health::Poisoned`](crate::Health) and
//!   sets the `ofd_storage_poisoned` gauge; the process is expected to exit and restart.
//! * **Reads** run on tokio's blocking pool (`spawn_blocking`): a long scan never stalls
//!   the async runtime that serves connections.
//!
//! Key layouts are in [`keys`], record layouts in [`codec`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::metrics as m;

pub mod codec;
mod documents;
pub mod keys;
mod other;
mod registers;
mod writer;

use writer::{Request, Tx};

/// How a durable commit reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// `fdatasync` on the journal: data, and only the metadata needed to read it back.
    /// Sufficient on ext4/xfs for a pre-sized journal, but not validated here under power
    /// loss yet.
    SyncData,
    /// `fsync`: data and all metadata. The safe default until `SyncData` is validated on
    /// the deployment's file system.
    #[default]
    SyncAll,
}

impl SyncMode {
    fn persist_mode(self) -> PersistMode {
        match self {
            Self::SyncData => PersistMode::SyncData,
            Self::SyncAll => PersistMode::SyncAll,
        }
    }
}

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
    /// Test hook: the N-th sync (1-based) fails as if `fsync` had returned EIO, after the
    /// batch was written to the OS. Used to test poisoning.
    #[doc(hidden)]
    pub fail_sync_at: Option<u64>,
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
            fail_sync_at: None,
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
}

impl Ks {
    const ALL: [Ks; 19] = [
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

/// State shared by the store handle and the writer thread.
#[derive(Default)]
pub(crate) struct Shared {
    poisoned: AtomicBool,
    reason: Mutex<Option<String>>,
    /// Successful group commits.
    pub(crate) commits: AtomicU64,
    /// Of which synced.
    pub(crate) synced_commits: AtomicU64,
    /// Documents in successful group commits (stored and duplicates).
    pub(crate) documents: AtomicU64,
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
    engine: RwLock<Option<Arc<Engine>>>,
    sender: RwLock<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
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
    /// the writer thread. Blocking: call it before serving, or from `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self, StoreError> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(|e| StoreError::Io(format!("create {}: {e}", path.display())))?;
        let db = Database::builder(&path)
            .cache_size(options.cache_bytes)
            // Never persist implicitly: every write here goes through a batch whose
            // durability is set explicitly by the writer.
            .manual_journal_persist(true)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => {
                    StoreError::Unavailable(format!("{} is in use by another process", path.display()))
                }
                e => StoreError::Io(format!("open {}: {e}", path.display())),
            })?;
        let mut keyspaces = Vec::with_capacity(Ks::ALL.len());
        for k in Ks::ALL {
            keyspaces.push(db.keyspace(k.name(), || k.create_options()).map_err(fj(k.name()))?);
        }
        let engine = Arc::new(Engine { db, keyspaces });

        // Layout marker: refuse directories written by something else.
        let meta = engine.ks(Ks::Meta);
        match meta.get(META_LAYOUT).map_err(fj("read layout"))? {
            Some(v) if &*v == LAYOUT_V1 => {}
            Some(v) => {
                return Err(StoreError::Corrupt(format!(
                    "{} holds layout {:?}, expected {:?}",
                    path.display(),
                    String::from_utf8_lossy(&v),
                    String::from_utf8_lossy(LAYOUT_V1)
                )));
            }
            None => {
                let mut b = fjall::OwnedWriteBatch::with_capacity(engine.db.clone(), 1)
                    .durability(Some(options.sync_mode.persist_mode()));
                b.insert(meta, META_LAYOUT, LAYOUT_V1);
                b.commit().map_err(fj("write layout"))?;
            }
        }
        let pending = match meta.get(META_PENDING).map_err(fj("read outbox counter"))? {
            None => 0,
            Some(v) => {
                let a: [u8; 8] =
                    (*v).try_into().map_err(|_| StoreError::Corrupt("outbox counter is not 8 bytes".into()))?;
                u64::from_be_bytes(a)
            }
        };

        let shared = Arc::new(Shared::default());
        metrics::gauge!(m::POISONED).set(0.0);
        let (tx, rx) = mpsc::channel(options.queue_capacity);
        let handle = writer::Writer::new(engine.clone(), shared.clone(), options, pending).spawn(rx)?;
        Ok(Self {
            path,
            engine: RwLock::new(Some(engine)),
            sender: RwLock::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
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

    pub(crate) fn engine(&self) -> Result<Arc<Engine>, StoreError> {
        self.engine.read().map_err(|_| StoreError::Closed)?.clone().ok_or(StoreError::Closed)
    }

    fn sender(&self) -> Result<mpsc::Sender<Request>, StoreError> {
        self.shared.check()?;
        self.sender.read().map_err(|_| StoreError::Closed)?.clone().ok_or(StoreError::Closed)
    }

    /// Enqueues a request for the writer (waiting while the queue is full).
    pub(crate) async fn submit(&self, req: Request) -> Result<(), StoreError> {
        let tx = self.sender()?;
        let depth = tx.max_capacity() - tx.capacity();
        metrics::gauge!(m::COMMIT_QUEUE_DEPTH).set(depth as f64);
        tx.send(req).await.map_err(|_| StoreError::Closed)
    }

    /// Runs a mutation on the writer thread inside the next group commit; returns its
    /// result once the group is durable.
    pub(crate) async fn mutate<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.submit(Request::mutate(f, reply)).await?;
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
        match self.shared.check() {
            Ok(()) => crate::Health::Ok,
            Err(_) => crate::Health::Poisoned(self.shared.reason()),
        }
    }

    async fn close_now(&self) -> Result<(), StoreError> {
        // Dropping the last sender lets the writer drain what is queued and exit.
        drop(self.sender.write().map_err(|_| StoreError::Closed)?.take());
        let handle = self.writer.lock().map_err(|_| StoreError::Closed)?.take();
        let engine = self.engine.write().map_err(|_| StoreError::Closed)?.take();
        tokio::task::spawn_blocking(move || {
            if let Some(h) = handle
                && h.join().is_err()
            {
                tracing::error!("embedded store writer thread panicked");
            }
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
