//! The conformance suite against the embedded (fjall) store, plus the embedded-only
//! behaviour the suite cannot express: poisoning after a failed sync, the directory lock,
//! backpressure of the bounded queue.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use ffd::FnNumber;
use storage::conformance::Harness;
use storage::embedded::{EmbeddedOptions, EmbeddedStore};
use storage::model::{AppendOutcome, DocumentRecord};
use storage::{DocumentStore, Durability, Health, RegisterStore, Rnm, Store, StoreError, Timestamp};

/// A temp directory and the store currently open on it.
type Slot = (tempfile::TempDir, Option<Arc<dyn Store>>);

/// Fresh temp directory per store; reopen closes and opens the same directory.
#[derive(Default)]
struct Embedded {
    dirs: Mutex<Vec<Slot>>,
}

impl Embedded {
    fn path_of(&self, store: &Arc<dyn Store>) -> Option<PathBuf> {
        let dirs = self.dirs.lock().expect("harness lock");
        dirs.iter()
            .find(|(_, s)| s.as_ref().is_some_and(|s| Arc::ptr_eq(s, store)))
            .map(|(d, _)| d.path().to_path_buf())
    }
}

#[async_trait]
impl Harness for Embedded {
    async fn fresh(&self) -> Arc<dyn Store> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open store"));
        self.dirs.lock().expect("harness lock").push((dir, Some(store.clone())));
        store
    }

    async fn reopen(&self, store: Arc<dyn Store>) -> Option<Arc<dyn Store>> {
        let path = self.path_of(&store)?;
        store.close().await.expect("close");
        {
            let mut dirs = self.dirs.lock().expect("harness lock");
            for (d, s) in dirs.iter_mut() {
                if d.path() == path {
                    *s = None;
                }
            }
        }
        drop(store);
        let reopened: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&path, EmbeddedOptions::default()).expect("reopen"));
        let mut dirs = self.dirs.lock().expect("harness lock");
        for (d, s) in dirs.iter_mut() {
            if d.path() == path {
                *s = Some(reopened.clone());
            }
        }
        Some(reopened)
    }
}

storage::conformance_suite!(Embedded::default());

fn document(fd: u32) -> DocumentRecord {
    DocumentRecord {
        ffd_version: Some(4),
        ..DocumentRecord::accepted(
            FnNumber::parse_strict("9999078900000001").expect("fn"),
            fd,
            Rnm::parse("0000000005008570").expect("rnm"),
            3,
            Timestamp(1_700_000_000_000 + i64::from(fd)),
            Bytes::from(format!("raw {fd}").into_bytes()),
            Bytes::from(format!("ack {fd}").into_bytes()),
        )
    }
}

/// The N-th sync fails: that group is not reported durable, the store is poisoned, every
/// later write fails fast with `Poisoned`, health says so; after a restart on a healthy
/// disk everything acknowledged before the failure is there.
#[tokio::test]
async fn failed_sync_poisons_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = EmbeddedOptions { fail_sync_at: Some(3), ..Default::default() };
    let s = EmbeddedStore::open(dir.path(), opts).expect("open");
    for fd in 1..=2 {
        let c = s.append_documents(vec![document(fd)], Durability::Durable).await.expect("healthy appends");
        assert_eq!(c.durability, Durability::Durable);
    }
    assert_eq!(s.health(), Health::Ok);
    let failed = s.append_documents(vec![document(3)], Durability::Durable).await;
    assert!(
        matches!(failed, Err(StoreError::Io(_))),
        "the failing sync is reported as an error, never as durable: {failed:?}"
    );
    assert!(matches!(s.health(), Health::Poisoned(r) if r.contains("injected")));
    let later = s.append_documents(vec![document(4)], Durability::Durable).await;
    assert!(matches!(later, Err(StoreError::Poisoned(_))), "{later:?}");
    let later = s.append_documents(vec![document(1)], Durability::Buffered).await;
    assert!(matches!(later, Err(StoreError::Poisoned(_))), "even duplicates: {later:?}");
    let admin = s.remove_unknown_fn(&document(1).fn_number).await;
    assert!(matches!(admin, Err(StoreError::Poisoned(_))), "{admin:?}");
    // Reads still work (the admin API can still show what is stored).
    assert!(s.get_document(&document(1).key()).await.expect("read").is_some());
    s.close().await.expect("close");
    drop(s);

    let s = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("reopen");
    assert_eq!(s.health(), Health::Ok);
    for fd in 1..=2 {
        assert_eq!(
            s.get_document(&document(fd).key()).await.expect("get"),
            Some(document(fd)),
            "acknowledged before the failure"
        );
    }
    // Document 3 reached the OS before the failed sync: its state is unknown, either
    // absent or intact. A retry is safe either way.
    let c = s.append_documents(vec![document(3)], Durability::Durable).await.expect("retry");
    assert!(matches!(c.outcomes[0], AppendOutcome::Stored | AppendOutcome::Duplicate { identical: true, .. }));
    s.close().await.expect("close");
}

/// One process per directory: a second open is refused while the first is open.
#[tokio::test]
async fn second_open_of_a_directory_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
    let second = EmbeddedStore::open(dir.path(), EmbeddedOptions::default());
    assert!(second.is_err(), "a second open must fail");
    s.close().await.expect("close");
    let after = s.append_documents(vec![document(1)], Durability::Durable).await;
    assert!(matches!(after, Err(StoreError::Closed)), "{after:?}");
    drop(s);
    EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open after close");
}

/// Many concurrent appenders through a tiny queue: all complete (callers wait instead of
/// the queue growing), every document is stored once, and batches really group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_queue_backpressure_and_grouping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = EmbeddedOptions { queue_capacity: 2, max_batch_documents: 64, ..Default::default() };
    let s = Arc::new(EmbeddedStore::open(dir.path(), opts).expect("open"));
    let mut tasks = Vec::new();
    for fd in 1..=200u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.append_documents(vec![document(fd)], Durability::Durable).await.expect("append")
        }));
    }
    for t in tasks {
        let c = t.await.expect("task");
        assert_eq!(c.outcomes, vec![AppendOutcome::Stored]);
        assert_eq!(c.durability, Durability::Durable);
    }
    let all =
        s.documents_by_fn(&document(1).fn_number, 0..=u32::MAX, storage::PageRequest::first(1000)).await.expect("list");
    assert_eq!(all.items.len(), 200);
    s.close().await.expect("close");
}

/// The report aggregator drops an FN's day and shift rows after it has gone a minute of
/// flushes without a document (keeping its continuity): a later document of that FN reads
/// them back and adds to them, never starting a row from zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_rows_dropped_for_an_idle_fn_are_read_back() {
    use storage::conformance::fixtures::{append_ok, doc, fn_no, rnm, t};
    let dir = tempfile::tempdir().expect("temp dir");
    let s: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open"));
    let (a, b) = (fn_no(901), fn_no(902));
    let (ra, rb) = (rnm(901), rnm(902));
    append_ok(s.as_ref(), (1..=3).map(|fd| doc(a, fd, &ra, t(i64::from(fd)), 0)).collect()).await;
    s.settle().await.expect("settle");
    // more flushes than the aggregator keeps an idle FN's rows for, each with a change
    for fd in 1..=20 {
        append_ok(s.as_ref(), vec![doc(b, fd, &rb, t(100 + i64::from(fd)), 0)]).await;
        s.settle().await.expect("settle");
    }
    append_ok(s.as_ref(), (4..=5).map(|fd| doc(a, fd, &ra, t(i64::from(fd)), 0)).collect()).await;
    storage::conformance::check_reports(s.as_ref(), &[a, b], "after the idle FN's rows were dropped").await;
    s.close().await.expect("close");
}
