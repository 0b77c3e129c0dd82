//! Opening and reopening the fjall database, and the free-space monitor thread.
//!
//! After a journal write failed for lack of space fjall refuses every further write (its
//! own poison flag; there is no way to clear it). The writer then reopens the database
//! in-process once the file system has room again ([`reopen`]): the same journal recovery
//! as a restart, without stopping the gateway.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{EmbeddedOptions, Engine, Ks, LAYOUT_V1, META_LAYOUT, META_PENDING, Shared, fj};
use crate::error::StoreError;
use fjall::Database;

/// Opens the database in `path` (journal recovery) and reads the pending-outbox counter.
/// Used at open and by the writer when it reopens after a full disk.
pub(crate) fn open_engine(path: &Path, options: &EmbeddedOptions) -> Result<(Engine, u64), StoreError> {
    let db = Database::builder(path)
        .cache_size(options.cache_bytes)
        // Never persist implicitly: every write here goes through a batch whose
        // durability is set explicitly by the writer.
        .manual_journal_persist(true)
        .open()
        .map_err(|e| match e {
            fjall::Error::Locked => StoreError::Unavailable(format!("{} is in use by another process", path.display())),
            e => StoreError::Io(format!("open {}: {e}", path.display())),
        })?;
    let mut keyspaces = Vec::with_capacity(Ks::ALL.len());
    for k in Ks::ALL {
        keyspaces.push(db.keyspace(k.name(), || k.create_options()).map_err(fj(k.name()))?);
    }
    let engine = Engine { db, keyspaces };

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
    Ok((engine, pending))
}

/// Reopens the database after a full disk (the writer calls it when the file system has
/// room again): takes it away from readers (they get `Unavailable` meanwhile), waits
/// (bounded) for the reads in progress, drops the last handle — fjall stops its workers,
/// writes out its journal buffer and releases the directory lock — and opens the
/// directory again with the same journal recovery as a restart. A torn tail of the batch
/// whose write failed is dropped by that recovery; if fjall's close wrote all of it, that
/// whole batch is there. Either way it was never acknowledged, and a retransmission gets
/// the stored answer.
///
/// Returns the new engine and pending-outbox counter; the old ones back when reads did not
/// finish in time (tried again at the next write); `None` when the open failed — then the
/// store is poisoned (the process restarts, and a restart on a full disk waits for space).
pub(crate) fn reopen(
    eng: Arc<Engine>,
    shared: &Shared,
    opts: &EmbeddedOptions,
    pending: u64,
) -> Option<(Arc<Engine>, u64)> {
    let started = Instant::now();
    drop(shared.take_engine());
    let deadline = started + Duration::from_secs(30);
    while Arc::strong_count(&eng) > 1 {
        if Instant::now() > deadline {
            tracing::warn!("reads still running after 30 s; the store reopens at the next write");
            shared.set_engine(eng.clone());
            return Some((eng, pending));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(eng);
    match open_engine(&shared.path, opts) {
        Ok((engine, pending)) => {
            let engine = Arc::new(engine);
            shared.set_engine(engine.clone());
            shared.space.reopened();
            tracing::info!(
                dir = %shared.path.display(),
                took_ms = started.elapsed().as_millis(),
                "embedded store reopened after a full disk: writes accepted again"
            );
            Some((engine, pending))
        }
        Err(e) => {
            shared.poison(format!("reopening the store after a full disk failed: {e}"));
            None
        }
    }
}

/// Starts the space monitor: looks at the free space every `interval`, and calls `wake`
/// when a full disk has room again (the writer reopens the database before its next
/// group, and would otherwise wait for a request that intake refuses).
pub(crate) fn spawn_monitor(
    shared: Arc<Shared>,
    wake: impl Fn() + Send + 'static,
    interval: Duration,
) -> Result<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>), StoreError> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("storage-space".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                let _ = shared.space.look();
                if shared.space.is_full() && shared.check().is_ok() && shared.space.room_to_reopen() {
                    wake();
                }
            }
        })
        .map_err(|e| StoreError::Io(format!("cannot start the space monitor thread: {e}")))?;
    Ok((stop, handle))
}

/// Test hook of [`EmbeddedOptions::sync_delay`]: a delay every durable sync waits first,
/// set and cleared at run time (clearing it also ends a wait in progress).
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct SyncDelay(Arc<AtomicU64>);

impl SyncDelay {
    /// Every sync from now on waits `d` first.
    pub fn set(&self, d: Duration) {
        self.0.store(u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1), Ordering::SeqCst);
    }

    /// Syncs no longer wait (a wait in progress ends within a few milliseconds).
    pub fn clear(&self) {
        self.0.store(0, Ordering::SeqCst);
    }

    /// Waits as set (on the writer thread, before a sync).
    pub(crate) fn wait(&self) {
        let started = Instant::now();
        loop {
            let ms = self.0.load(Ordering::SeqCst);
            if ms == 0 || started.elapsed() >= Duration::from_millis(ms) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

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
    pub(crate) fn persist_mode(self) -> fjall::PersistMode {
        match self {
            Self::SyncData => fjall::PersistMode::SyncData,
            Self::SyncAll => fjall::PersistMode::SyncAll,
        }
    }
}
