//! The conformance suite against a real ScyllaDB cluster.
//!
//! Runs when `SCYLLA_URI` names contact points, e.g.
//! `SCYLLA_URI=127.0.0.11:9042` (a `scylla://` prefix is accepted): `scripts/test.sh`
//! starts a one-node Apache Cassandra for it with `scripts/cql-cluster.sh`. Optional:
//! `SCYLLA_LOCAL_DC` (default: the cluster's only datacenter) and `SCYLLA_RF` (default:
//! min(3, nodes in that datacenter)).
//!
//! Every `Harness::fresh()` migrates a new keyspace `ofdt_<run>_<n>`; all of them are
//! dropped at the end, also when a test fails. Without `SCYLLA_URI` each live test prints
//! `skipped: no ScyllaDB at SCYLLA_URI` to stderr and returns.
#![cfg(all(feature = "scylla", feature = "conformance"))]

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::FutureExt;
use scylla::client::session::Session;
use storage::conformance::{Harness, run_all};
use storage::scylla::{ConsistencyLevel, MigrationConfig, ScyllaConfig, ScyllaStore, connect_session, migrate};
use storage::{DeliveryStore, Store, StoreError};

/// Harnesses created in this process.
static HARNESSES: AtomicU32 = AtomicU32::new(0);

const SKIPPED: &str = "skipped: no ScyllaDB at SCYLLA_URI";

/// Writes the skip line straight to the process's stderr: the test harness captures
/// `eprintln!` of passing tests, and a skip must be visible in the default run.
fn say_skipped() {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{SKIPPED}");
}

/// Contact points from `SCYLLA_URI`, or `None` (the test is then skipped, saying so).
fn contact_points() -> Option<Vec<String>> {
    let uri = std::env::var("SCYLLA_URI").ok()?;
    let uri = uri.trim();
    let uri = uri.strip_prefix("scylla://").or_else(|| uri.strip_prefix("cql://")).unwrap_or(uri);
    let nodes: Vec<String> =
        uri.split(',').map(|n| n.trim().trim_end_matches('/').to_owned()).filter(|n| !n.is_empty()).collect();
    (!nodes.is_empty()).then_some(nodes)
}

fn config(nodes: &[String], keyspace: &str, dc: &str, rf: u32) -> ScyllaConfig {
    ScyllaConfig {
        nodes: nodes.to_vec(),
        keyspace: keyspace.to_owned(),
        local_dc: Some(dc.to_owned()),
        consistency: ConsistencyLevel::LocalQuorum,
        min_replication_factor: rf,
        ..ScyllaConfig::default()
    }
}

struct ScyllaHarness {
    nodes: Vec<String>,
    dc: String,
    rf: u32,
    run: String,
    next: AtomicU32,
    admin: Arc<Session>,
    /// (store address, keyspace) of every store handed out, and every keyspace created.
    stores: Mutex<Vec<(usize, String)>>,
}

impl ScyllaHarness {
    async fn new(nodes: Vec<String>) -> Self {
        let probe = ScyllaConfig { nodes: nodes.clone(), ..ScyllaConfig::default() };
        let admin = Arc::new(connect_session(&probe).await.expect("connect to SCYLLA_URI"));
        let state = admin.get_cluster_state();
        let mut dcs: Vec<String> = state.get_nodes_info().iter().filter_map(|n| n.datacenter.clone()).collect();
        dcs.sort();
        dcs.dedup();
        let dc = std::env::var("SCYLLA_LOCAL_DC").ok().unwrap_or_else(|| {
            assert_eq!(dcs.len(), 1, "several datacenters {dcs:?}: set SCYLLA_LOCAL_DC");
            dcs[0].clone()
        });
        let in_dc = state.get_nodes_info().iter().filter(|n| n.datacenter.as_deref() == Some(dc.as_str())).count();
        let rf = std::env::var("SCYLLA_RF")
            .ok()
            .map(|v| v.parse().expect("SCYLLA_RF is a number"))
            .unwrap_or_else(|| u32::try_from(in_dc.clamp(1, 3)).unwrap_or(1));
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        eprintln!("scylla conformance: dc {dc}, {in_dc} node(s), RF {rf}");
        Self {
            nodes,
            dc,
            rf,
            // the tests of this file run at once, each with its own harness: a per-process
            // counter keeps their keyspaces apart (a harness drops its own old ones)
            run: format!("ofdt_{millis}_{}_{}", std::process::id(), HARNESSES.fetch_add(1, Ordering::Relaxed)),
            next: AtomicU32::new(0),
            admin,
            stores: Mutex::new(Vec::new()),
        }
    }

    /// The keyspace of a store handed out. The newest entry wins: the allocator reuses the
    /// address of a store dropped by an earlier test (looking up the oldest entry sent a
    /// reopened store to another test's keyspace).
    fn keyspace_of(&self, store: &Arc<dyn Store>) -> Option<String> {
        let addr = Arc::as_ptr(store).cast::<()>() as usize;
        let g = self.stores.lock().ok()?;
        g.iter().rev().find(|(a, _)| *a == addr).map(|(_, k)| k.clone())
    }

    fn remember(&self, store: &Arc<dyn Store>, keyspace: &str) {
        let addr = Arc::as_ptr(store).cast::<()>() as usize;
        if let Ok(mut g) = self.stores.lock() {
            g.push((addr, keyspace.to_owned()));
        }
    }

    async fn drop_keyspaces(&self) {
        let mut keyspaces: Vec<String> =
            self.stores.lock().map(|g| g.iter().map(|(_, k)| k.clone()).collect()).unwrap_or_default();
        keyspaces.sort();
        keyspaces.dedup();
        for ks in keyspaces {
            if let Err(e) = self.admin.query_unpaged(format!("DROP KEYSPACE IF EXISTS {ks}"), ()).await {
                eprintln!("could not drop keyspace {ks}: {e}");
            }
        }
    }

    async fn migrated_keyspace(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // The suite runs its tests one after the other and a test uses at most its own
        // store (and a reopen of it): keyspaces two tests old are dropped now, so that the
        // node's schema does not grow over the run (DDL slows down as it does).
        if n >= 2 {
            let old = format!("{}_{}", self.run, n - 2);
            let _ = self.admin.query_unpaged(format!("DROP KEYSPACE IF EXISTS {old}"), ()).await;
        }
        let ks = format!("{}_{n}", self.run);
        let report = migrate(&self.admin, &MigrationConfig::single_dc(ks.as_str(), self.dc.as_str(), self.rf))
            .await
            .expect("migrate a fresh keyspace");
        assert_eq!(report.applied, vec![1, 2], "{report:?}");
        ks
    }
}

#[async_trait]
impl Harness for ScyllaHarness {
    async fn fresh(&self) -> Arc<dyn Store> {
        let ks = self.migrated_keyspace().await;
        let store = ScyllaStore::with_session(self.admin.clone(), config(&self.nodes, &ks, &self.dc, self.rf))
            .await
            .expect("open the store on the fresh keyspace");
        let store: Arc<dyn Store> = Arc::new(store);
        self.remember(&store, &ks);
        store
    }

    /// Closes the store and connects a new session (new connections, new prepared
    /// statements) to the same keyspace.
    async fn reopen(&self, store: Arc<dyn Store>) -> Option<Arc<dyn Store>> {
        let ks = self.keyspace_of(&store)?;
        store.close().await.expect("close");
        drop(store);
        let store = ScyllaStore::connect(config(&self.nodes, &ks, &self.dc, self.rf)).await.expect("reopen");
        let store: Arc<dyn Store> = Arc::new(store);
        self.remember(&store, &ks);
        Some(store)
    }
}

/// Runs `body` with a harness and a freshly migrated keyspace of its own, dropped
/// afterwards (also when `body` panics); without `SCYLLA_URI` prints `skipped` and returns.
async fn with_migrated_keyspace(body: impl AsyncFnOnce(&ScyllaHarness, String)) {
    let Some(nodes) = contact_points() else {
        say_skipped();
        return;
    };
    let harness = ScyllaHarness::new(nodes).await;
    let outcome = AssertUnwindSafe(async {
        let ks = harness.migrated_keyspace().await;
        if let Ok(mut g) = harness.stores.lock() {
            g.push((0, ks.clone())); // for the clean-up
        }
        body(&harness, ks).await;
    })
    .catch_unwind()
    .await;
    harness.drop_keyspaces().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_scylla() {
    let Some(nodes) = contact_points() else {
        say_skipped();
        return;
    };
    let harness = ScyllaHarness::new(nodes).await;
    let outcome = AssertUnwindSafe(run_all(&harness)).catch_unwind().await;
    harness.drop_keyspaces().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Migrating twice applies nothing the second time; an applied version whose recorded
/// checksum differs from the embedded text is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_is_idempotent_and_refuses_edited_versions() {
    with_migrated_keyspace(async |harness, ks| {
        let cfg = MigrationConfig::single_dc(ks.as_str(), harness.dc.as_str(), harness.rf);
        let again = migrate(&harness.admin, &cfg).await.expect("second run");
        assert!(again.applied.is_empty(), "{again:?}");
        assert_eq!(again.already_applied, vec![1, 2]);

        // a keyspace migrated by an earlier build (version 1 only) gets version 2 alone
        harness
            .admin
            .query_unpaged(format!("DELETE FROM {ks}.schema_version WHERE shard = 0 AND version = 2"), ())
            .await
            .expect("forget v2");
        let upgraded = migrate(&harness.admin, &cfg).await.expect("upgrade");
        assert_eq!((upgraded.applied.clone(), upgraded.already_applied.clone()), (vec![2], vec![1]), "{upgraded:?}");

        harness
            .admin
            .query_unpaged(
                format!("UPDATE {ks}.schema_version SET checksum = 'edited' WHERE shard = 0 AND version = 1"),
                (),
            )
            .await
            .expect("tamper");
        let e = migrate(&harness.admin, &cfg).await.expect_err("edited");
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");

        // a store refuses a keyspace replicated less than it requires
        let mut strict = config(&harness.nodes, &ks, &harness.dc, harness.rf);
        strict.min_replication_factor = harness.rf + 1;
        let e = ScyllaStore::with_session(harness.admin.clone(), strict).await.expect_err("RF too low");
        assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");

        // and a keyspace that was never migrated
        let e = ScyllaStore::with_session(
            harness.admin.clone(),
            config(&harness.nodes, "ofdt_never_created", &harness.dc, 1),
        )
        .await
        .expect_err("no keyspace");
        assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
    })
    .await;
}

/// Reliability C5, without a server: unsafe consistency levels are refused before any
/// connection is attempted (the contact point below does not exist).
#[tokio::test]
async fn unsafe_consistency_is_refused_before_connecting() {
    for cl in [ConsistencyLevel::Any, ConsistencyLevel::One, ConsistencyLevel::LocalOne] {
        let cfg = ScyllaConfig { nodes: vec!["192.0.2.1:9042".into()], consistency: cl, ..ScyllaConfig::default() };
        let started = std::time::Instant::now();
        let e = ScyllaStore::connect(cfg).await.expect_err("must refuse");
        assert!(matches!(e, StoreError::Invalid(_)), "{cl}: {e:?}");
        assert!(e.to_string().contains(cl.as_str()), "{e}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "refused by validation, not by a failed connection"
        );
    }
}

/// The FNS follower's persisted cursor never passes a journal entry that became visible
/// late (an answered entry may become visible up to half the settle time after its
/// position): the entry of B is hidden right after B's append (deleted, as if its write
/// had not reached a quorum yet), the follower reads past its position, time passes
/// beyond the settle time while deliveries of other documents are marked (which persist
/// the cursor), then the entry appears. A follower starting from the persisted cursor
/// (another node taking the partition over) must still deliver B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fns_cursor_waits_for_late_journal_entries() {
    use storage::conformance::fixtures::{append_ok, doc, fn_no, rnm, t};
    use storage::model::delivery_partition;
    with_migrated_keyspace(async |harness, ks| {
        let cfg = ScyllaConfig {
            request_timeout_ms: 3000,
            // long enough that a busy machine still reads past B's position within half
            // of it (the precondition below), counted from before B's append
            journal_settle_ms: 16_000,
            ..config(&harness.nodes, &ks, &harness.dc, harness.rf)
        };
        let settle = std::time::Duration::from_millis(cfg.journal_settle_ms);
        let s = ScyllaStore::connect(cfg.clone()).await.expect("open");
        let (f, r) = (fn_no(7), rnm(7));
        let part = delivery_partition(&f);
        let (a, b) = (doc(f, 1, &r, t(0), 0), doc(f, 2, &r, t(1), 0));
        append_ok(&s, vec![a.clone()]).await;
        let b_appended = std::time::Instant::now();
        append_ok(&s, vec![b.clone()]).await;
        // B's entry: read it, then hide it
        let rows = harness
            .admin
            .query_unpaged(
                format!("SELECT hour, pos, rnm, meta, dup, writetime(rnm) FROM {ks}.journal WHERE part = ? AND fd = ? ALLOW FILTERING"),
                (part as i16, 2i64),
            )
            .await
            .expect("read the entry")
            .into_rows_result()
            .expect("rows");
        let (hour, pos, rnm_text, meta, dup, written): (i32, i64, String, String, Option<bool>, i64) =
            rows.single_row().expect("one entry of B");
        harness
            .admin
            .query_unpaged(
                format!("DELETE FROM {ks}.journal USING TIMESTAMP ? WHERE part = ? AND hour = ? AND pos = ? AND fn = ? AND fd = ?"),
                (written + 1, part as i16, hour, pos, f.to_string(), 2i64),
            )
            .await
            .expect("hide the entry");
        // the follower reads past B's position within half the settle time of it
        let due: Vec<u32> = s.due_deliveries(part, t(10_000_000), 100).await.expect("due").iter().map(|d| d.key.fd).collect();
        assert!(
            b_appended.elapsed() < settle / 2,
            "the machine was too slow to hide the entry in time ({:?}); the test shows nothing",
            b_appended.elapsed()
        );
        assert_eq!(due, vec![1], "only A is visible");
        // beyond the settle time, A's delivery is marked (the cursor is persisted)
        tokio::time::sleep(settle + std::time::Duration::from_millis(500)).await;
        s.mark_delivered(&[a.key()], t(20_000_000)).await.expect("mark A");
        // (no row: the cursor never moved from the start of the journal)
        let cursor: Option<(i64,)> = harness
            .admin
            .query_unpaged(format!("SELECT pos FROM {ks}.journal_cursor WHERE part = ? AND kind = 'fns'"), (part as i16,))
            .await
            .expect("cursor")
            .into_rows_result()
            .expect("rows")
            .maybe_first_row()
            .expect("cursor row");
        if let Some((cursor,)) = cursor {
            assert!(cursor <= pos, "the cursor ({cursor}) passed B's entry ({pos}) that nobody has seen");
        }
        // the entry appears; a follower starting from the cursor delivers B
        harness
            .admin
            .query_unpaged(
                format!("INSERT INTO {ks}.journal (part, hour, pos, fn, fd, rnm, meta, dup) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"),
                (part as i16, hour, pos, f.to_string(), 2i64, rnm_text, meta, dup, written + 2),
            )
            .await
            .expect("the entry appears");
        s.close().await.expect("close");
        drop(s);
        let s2 = ScyllaStore::connect(cfg).await.expect("reopen");
        let due: Vec<u32> = s2.due_deliveries(part, t(10_000_000), 100).await.expect("due").iter().map(|d| d.key.fd).collect();
        assert_eq!(due, vec![2], "B is delivered after all");
        s2.close().await.expect("close");
    })
    .await;
}

/// Backpressure: when the derived views of a journal partition fall further behind than
/// `max_derived_lag_ms` (here nobody derives: another node holds every deriver lease and
/// does nothing), appends to it are refused as `Unavailable` with nothing written, and the
/// store reports `Degraded`; once a deriver works again and catches up, appends are
/// accepted and the derived views hold every stored document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_are_refused_while_derived_views_lag_beyond_the_bound() {
    use std::time::{Duration, Instant};
    use storage::conformance::fixtures::{append_ok, doc, fn_no, rnm, t};
    use storage::{DocumentStore, Durability, Health, PageRequest};
    with_migrated_keyspace(async |harness, ks| {
        for g in 0..8 {
            harness
                .admin
                .query_unpaged(
                    format!("INSERT INTO {ks}.leases (name, holder) VALUES (?, 'elsewhere') USING TTL 600"),
                    (format!("derive-{g}"),),
                )
                .await
                .expect("a lease for another node");
        }
        let cfg = ScyllaConfig {
            request_timeout_ms: 1000,
            journal_settle_ms: 2000,
            max_derived_lag_ms: 6000,
            ..config(&harness.nodes, &ks, &harness.dc, harness.rf)
        };
        let s = ScyllaStore::connect(cfg).await.expect("open");
        let (f, r) = (fn_no(3), rnm(3));
        let first = doc(f, 1, &r, t(1), 0);
        append_ok(&s, vec![first.clone()]).await;
        // appends go on until the lag passes the bound, then are refused
        let mut fd = 2;
        let mut timeouts = 0;
        let refused = loop {
            assert!(fd < 200, "appends were never refused while nobody derived");
            let d = doc(f, fd, &r, t(i64::from(fd)), 0);
            match s.append_documents(vec![d.clone()], Durability::Durable).await {
                Ok(_) => {
                    fd += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(StoreError::Unavailable(m)) => {
                    assert!(m.contains("derived views") && m.contains("max_derived_lag"), "{m}");
                    break d;
                }
                // the 1 s request timeout of this test, on a busy machine: an unknown
                // outcome, retransmitted as a register would (stored once either way)
                Err(StoreError::Timeout(m)) => {
                    timeouts += 1;
                    assert!(timeouts <= 20, "20 appends timed out: {m}");
                }
                Err(e) => panic!("refused with the wrong error: {e:?}"),
            }
        };
        assert_eq!(s.get_document(&refused.key()).await.expect("get"), None, "a refused document is not stored");
        match s.health() {
            Health::Degraded(m) => assert!(m.contains("derived views"), "{m}"),
            h => panic!("the store must say it is degraded: {h:?}"),
        }
        // a deriver works again: this store takes the leases and catches up
        harness.admin.query_unpaged(format!("TRUNCATE {ks}.leases"), ()).await.expect("the other node leaves");
        let started = Instant::now();
        loop {
            match s.append_documents(vec![refused.clone()], Durability::Durable).await {
                Ok(_) => break,
                Err(StoreError::Unavailable(_) | StoreError::Timeout(_))
                    if started.elapsed() < Duration::from_secs(60) =>
                {
                    tokio::time::sleep(Duration::from_millis(250)).await
                }
                Err(e) => panic!("appends were not accepted again after the deriver caught up: {e:?}"),
            }
        }
        assert!(matches!(s.health(), Health::Ok), "{:?}", s.health());
        s.settle().await.expect("settle");
        let page = s.documents_by_register(&r, t(0), t(1_000_000), PageRequest::first(1000)).await.expect("index");
        assert_eq!(page.items.len() as u32, fd, "every stored document is in the time index");
        s.close().await.expect("close");
    })
    .await;
}

mod reports_load;

/// Reports (issue 21): a load with retransmissions, a conflicting copy under a used FD,
/// missing FDs, shift open and close reports and an undated document, appended in
/// concurrent batches; after `settle()` every aggregate equals the recomputation from the
/// stored documents. A hole filled later leaves the gapped list; a reopened store (new
/// session) answers the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_fold_each_stored_document_once() {
    use storage::conformance::fixtures::{append_ok, fn_no};
    use storage::{DocumentStore, ReportStore};
    with_migrated_keyspace(async |harness, ks| {
        let cfg = config(&harness.nodes, &ks, &harness.dc, harness.rf);
        let s = ScyllaStore::connect(cfg.clone()).await.expect("open");
        let t0 = i64::from(reports_load::LOCAL_T0) * 1000;
        let batches = reports_load::load(t0);
        futures::future::join_all(batches.into_iter().map(|b| append_ok(&s, b))).await;
        s.settle().await.expect("settle");
        reports_load::check(&s, "after the load").await;
        // FN 2's hole is filled: it leaves the list of gapped FNs
        append_ok(&s, vec![reports_load::late(t0)]).await;
        s.settle().await.expect("settle");
        reports_load::check(&s, "after the hole of FN 2 was filled").await;
        let gapped: Vec<_> = s.gapped_fns(storage::PageRequest::first(10)).await.expect("gapped").items;
        assert_eq!(gapped.iter().map(|c| c.fn_number).collect::<Vec<_>>(), vec![fn_no(1)]);
        assert_eq!(gapped[0].continuity.missing(), 1);
        s.close().await.expect("close");
        drop(s);
        let s = ScyllaStore::connect(cfg).await.expect("reopen");
        s.settle().await.expect("settle");
        reports_load::check(&s, "reopened").await;
        s.close().await.expect("close");
    })
    .await;
}

/// A takeover that replays the whole journal, after writes were lost: the first store folds
/// the load and closes; then the deriver cursors are deleted (the next holder reads every
/// entry again) and so are FN 1's continuity row (as if its batch had been lost while
/// its aggregate rows stayed) and its gapped-list row. Another node takes the
/// partitions over: every document is counted once, the continuity is rebuilt, and the
/// aggregates equal the recomputation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_count_nothing_twice_when_a_takeover_replays_the_journal() {
    use storage::DocumentStore;
    use storage::conformance::fixtures::append_ok;
    with_migrated_keyspace(async |harness, ks| {
        let cfg = config(&harness.nodes, &ks, &harness.dc, harness.rf);
        let first =
            ScyllaStore::connect(ScyllaConfig { node_id: Some("node-a".into()), ..cfg.clone() }).await.expect("open");
        let t0 = i64::from(reports_load::LOCAL_T0) * 1000;
        for b in reports_load::load(t0) {
            append_ok(&first, b).await;
        }
        first.settle().await.expect("settle");
        reports_load::check(&first, "first node").await;
        first.close().await.expect("close");
        drop(first);
        let q = |cql: String| {
            let admin = harness.admin.clone();
            async move { admin.query_unpaged(cql, ()).await.expect("tamper") }
        };
        q(format!(
            "DELETE FROM {ks}.journal_cursor WHERE part IN ({})",
            (0..64).map(|p| p.to_string()).collect::<Vec<_>>().join(",")
        ))
        .await;
        let f1 = storage::conformance::fixtures::fn_no(1).to_string();
        q(format!("DELETE FROM {ks}.fn_reports WHERE fn = '{f1}' AND kind = 0 AND bucket = 0")).await;
        q(format!("DELETE FROM {ks}.gapped_fns WHERE prefix = '{}' AND fn = '{f1}'", &f1[..8])).await;
        let second = ScyllaStore::connect(ScyllaConfig { node_id: Some("node-b".into()), ..cfg }).await.expect("open");
        second.settle().await.expect("settle");
        reports_load::check(&second, "after the replay").await;
        second.close().await.expect("close");
    })
    .await;
}
