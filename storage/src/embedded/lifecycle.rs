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

/// fjall's files that exist before its `version` marker, which it writes and syncs last
/// when it creates a database.
const CREATION_FILES: (&str, &str) = ("0.jnl", "keyspaces");

/// A database whose first creation was killed before fjall wrote its `version` marker
/// cannot be opened: fjall takes the directory for a new one and fails on the files it
/// had already made (`0.jnl` exists). Nothing can have been stored there — the store never
/// opened, so nothing was acknowledged — so those files are removed and creation starts
/// over. Only that exact leftover is touched: a directory that holds anything more
/// (another journal, a keyspace besides fjall's own metadata tree `0`) without a marker
/// is refused as damaged instead.
fn clear_interrupted_creation(path: &Path) -> Result<(), StoreError> {
    let io = |what: &str, e: std::io::Error| StoreError::Io(format!("{what} {}: {e}", path.display()));
    let (journal, keyspaces) = (path.join(CREATION_FILES.0), path.join(CREATION_FILES.1));
    if path.join("version").exists() || !(journal.exists() || keyspaces.exists()) {
        return Ok(());
    }
    let mut extra = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| io("listing", e))? {
        let name = entry.map_err(|e| io("listing", e))?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".jnl") && name != CREATION_FILES.0 {
            extra.push(name);
        }
    }
    if keyspaces.exists() {
        for entry in std::fs::read_dir(&keyspaces).map_err(|e| io("listing keyspaces of", e))? {
            let name = entry.map_err(|e| io("listing keyspaces of", e))?.file_name().to_string_lossy().into_owned();
            if name != "0" {
                extra.push(format!("keyspaces/{name}"));
            }
        }
    }
    if !extra.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "{} has no fjall version marker but holds data ({}): not opening it",
            path.display(),
            extra.join(", ")
        )));
    }
    tracing::warn!(path = %path.display(), "the store's first creation was interrupted; creating it again");
    if journal.exists() {
        std::fs::remove_file(&journal).map_err(|e| io("removing the interrupted journal of", e))?;
    }
    if keyspaces.exists() {
        std::fs::remove_dir_all(&keyspaces).map_err(|e| io("removing the interrupted keyspaces of", e))?;
    }
    Ok(())
}

/// Opens the database in `path` (journal recovery) and reads the pending-outbox counter.
/// Used at open and by the writer when it reopens after a full disk.
pub(crate) fn open_engine(path: &Path, options: &EmbeddedOptions) -> Result<(Engine, u64), StoreError> {
    clear_interrupted_creation(path)?;
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

#[cfg(test)]
mod tests {
    use super::super::{EmbeddedOptions, EmbeddedStore};
    use crate::error::StoreError;
    use crate::store::Store as _;

    /// What a kill between fjall's first files and its `version` marker leaves.
    fn interrupted_creation(dir: &std::path::Path) {
        std::fs::write(dir.join("lock"), b"").expect("lock");
        std::fs::write(dir.join("0.jnl"), b"").expect("journal");
        std::fs::create_dir_all(dir.join("keyspaces").join("0")).expect("meta tree");
    }

    #[tokio::test]
    async fn a_first_creation_killed_before_the_version_marker_is_created_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        interrupted_creation(dir.path());
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("opens after the interruption");
        assert!(dir.path().join("version").exists());
        store.close().await.expect("close");
        // and it is a normal store from then on
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("reopens");
        store.close().await.expect("close");
    }

    #[tokio::test]
    async fn a_store_that_lost_its_version_marker_is_refused_not_recreated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("create");
        store.close().await.expect("close");
        drop(store);
        std::fs::remove_file(dir.path().join("version")).expect("remove the marker");
        let before = std::fs::read_dir(dir.path().join("keyspaces")).expect("keyspaces").count();
        match EmbeddedStore::open(dir.path(), EmbeddedOptions::default()) {
            Err(StoreError::Corrupt(m)) => {
                assert!(m.contains("no fjall version marker") && m.contains("keyspaces/"), "{m}")
            }
            Err(e) => panic!("expected Corrupt, got {e:?}"),
            Ok(_) => panic!("a store without its marker must not be recreated over its data"),
        }
        let after = std::fs::read_dir(dir.path().join("keyspaces")).expect("keyspaces").count();
        assert_eq!(before, after, "nothing removed");
    }
}
