//! The conformance suite: one set of behavioural tests every [`Store`] backend must pass.
//! A backend's test file provides a [`Harness`] and either instantiates every test with
//! [`conformance_suite!`] or calls [`run_all`].
//!
//! The tests use only the [`Store`] trait, so they define the contract as much as
//! `store.rs` does. Each test asks for a fresh store; data are built with fixed times
//! (around 2023-11-14) and ids, so failures are reproducible. Tests that need the
//! passage of real time (lease expiry) sleep briefly; everything else is deterministic.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use ffd::FnNumber;
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::{Inn, Rnm, Timestamp};
use crate::model::{
    AlertCondition, AlertNotification, AlertRule, AlertScope, AlertState, AlertStatus, AppendOutcome, AuditEntry,
    DELIVERY_PARTITIONS, DeliveryStatus, DocumentKey, DocumentRecord, FnRecord, JobState, Register, RegisterActivity,
    RegisterStatus, ResendJob, ResendSelector, Severity, TariffPlan, TelemetryRecord, UnknownFnSighting,
    delivery_partition,
};
use crate::store::{AlertFilter, AuditFilter, Durability, Page, PageRequest, RegisterFilter, Store};

/// How the suite obtains stores of one backend.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A store with no data in it (a fresh directory or keyspace).
    async fn fresh(&self) -> Arc<dyn Store>;
    /// Closes `store` and opens the same data again; `None` if the backend cannot.
    async fn reopen(&self, store: Arc<dyn Store>) -> Option<Arc<dyn Store>>;
}

/// Runs every test of the suite against `harness`, in sequence, panicking on the first
/// failure with the test's name.
pub async fn run_all(harness: &dyn Harness) {
    for (name, test) in tests() {
        eprintln!("conformance: {name}");
        test(harness).await;
    }
}

type TestFn = for<'a> fn(&'a dyn Harness) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

macro_rules! registry {
    ($($name:ident),* $(,)?) => {
        /// The tests, by name.
        pub fn tests() -> Vec<(&'static str, TestFn)> {
            vec![$(
                (stringify!($name), {
                    fn wrap<'a>(h: &'a dyn Harness) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
                        Box::pin($name(h))
                    }
                    wrap as TestFn
                }),
            )*]
        }
    };
}

// The one list of tests. `conformance_suite!` below repeats it (macro_rules cannot share
// a list across crates); its generated `conformance_suite_is_complete` test fails if the
// two lists ever differ.
registry!(
    append_stores_new_documents_durably,
    append_identical_duplicate_returns_first_ack,
    append_conflicting_duplicate_keeps_original,
    append_duplicates_inside_one_batch,
    append_concurrent_same_key_stores_once,
    append_buffered_reports_at_least_buffered,
    append_out_of_order_and_old_retransmissions,
    documents_by_fn_ranges_and_pages,
    documents_by_register_time_range_and_pages,
    bad_cursor_is_invalid,
    activity_folds_stored_documents_only,
    outbox_queues_each_stored_document_once,
    outbox_delivery_and_failure,
    outbox_backlog_stats,
    leases_are_exclusive_renewable_and_expire,
    registers_put_get_and_fn_index,
    registers_fn_clash_changes_nothing,
    registers_version_conflict_changes_nothing,
    registers_list_filters_and_pages,
    registers_updated_since,
    unknown_fns_aggregate_and_remove,
    tariffs_create_get_list,
    audit_newest_first_with_filters,
    alert_rules_and_states,
    alert_notifications_due_and_list,
    jobs_newest_first_with_state_filter,
    data_survives_reopen,
);

/// Instantiates every conformance test as its own `#[tokio::test]`, given an expression
/// that builds the harness (evaluated once per test).
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance_suite!(@each $harness;
            append_stores_new_documents_durably,
            append_identical_duplicate_returns_first_ack,
            append_conflicting_duplicate_keeps_original,
            append_duplicates_inside_one_batch,
            append_concurrent_same_key_stores_once,
            append_buffered_reports_at_least_buffered,
            append_out_of_order_and_old_retransmissions,
            documents_by_fn_ranges_and_pages,
            documents_by_register_time_range_and_pages,
            bad_cursor_is_invalid,
            activity_folds_stored_documents_only,
            outbox_queues_each_stored_document_once,
            outbox_delivery_and_failure,
            outbox_backlog_stats,
            leases_are_exclusive_renewable_and_expire,
            registers_put_get_and_fn_index,
            registers_fn_clash_changes_nothing,
            registers_version_conflict_changes_nothing,
            registers_list_filters_and_pages,
            registers_updated_since,
            unknown_fns_aggregate_and_remove,
            tariffs_create_get_list,
            audit_newest_first_with_filters,
            alert_rules_and_states,
            alert_notifications_due_and_list,
            jobs_newest_first_with_state_filter,
            data_survives_reopen,
        );
    };
    (@each $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $harness;
                $crate::conformance::$name(&harness).await;
            }
        )*

        #[test]
        fn conformance_suite_is_complete() {
            let here: Vec<&str> = vec![$(stringify!($name)),*];
            let all: Vec<&str> = $crate::conformance::tests().into_iter().map(|(n, _)| n).collect();
            assert_eq!(here, all, "conformance_suite! and tests() list different tests");
        }
    };
}

// ============================================================================ fixtures

/// 2023-11-14T22:13:20Z, the base of every time in the suite.
const T0: i64 = 1_700_000_000_000;

fn t(offset_ms: i64) -> Timestamp {
    Timestamp(T0 + offset_ms)
}

fn owner() -> Inn {
    Inn::parse("7702203276").expect("valid fixture INN")
}

fn other_owner() -> Inn {
    Inn::parse("7704358518").expect("valid fixture INN")
}

fn serial(n: u64) -> String {
    format!("{:012}", 100_000 + n)
}

fn rnm(n: u64) -> Rnm {
    Rnm::compose(n, &owner(), &serial(n))
}

fn fn_no(n: u64) -> FnNumber {
    FnNumber::parse_strict(&format!("{:016}", 9_999_078_900_000_000u64 + n)).expect("valid fixture FN")
}

fn register(n: u64, f: FnNumber) -> Register {
    Register {
        name: format!("Shop {n}"),
        address: format!("Moscow, street {n}"),
        fn_since: Some(t(0)),
        ..Register::new(rnm(n), serial(n), owner(), f, t(0))
    }
}

/// A document whose raw and ack bytes are unique to (FN, FD) and `variant`.
fn doc(f: FnNumber, fd: u32, r: &Rnm, received_at: Timestamp, variant: u8) -> DocumentRecord {
    let mut raw = vec![0xA5, variant];
    raw.extend_from_slice(f.as_bytes());
    raw.extend_from_slice(&fd.to_be_bytes());
    raw.extend(std::iter::repeat_n(variant ^ 0x5A, 200));
    let mut ack = vec![0x5A, variant, 7];
    ack.extend_from_slice(&fd.to_be_bytes());
    ack.extend_from_slice(&received_at.0.to_be_bytes());
    DocumentRecord {
        fn_number: f,
        fd,
        rnm: r.clone(),
        doc_type: 3,
        ffd_version: Some(4),
        doc_time: Some(Timestamp(received_at.0 - 1000)),
        received_at,
        total: Some(u64::from(fd) * 100),
        fiscal_sign: Some(fd.wrapping_mul(2_654_435_761)),
        response_code: 0,
        flk_error: None,
        opaque: false,
        telemetry: None,
        raw: Bytes::from(raw),
        ack: Bytes::from(ack),
    }
}

fn key(f: FnNumber, fd: u32) -> DocumentKey {
    DocumentKey { fn_number: f, fd }
}

fn v7(ms: i64, seq: u32) -> Uuid {
    let ms = u64::try_from(ms).expect("positive fixture time");
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        ms / 1000,
        u32::try_from(ms % 1000).expect("millis fit") * 1_000_000 + seq,
    ))
}

async fn append_ok(s: &dyn Store, docs: Vec<DocumentRecord>) -> Vec<AppendOutcome> {
    let n = docs.len();
    let c = s.append_documents(docs, Durability::Durable).await.expect("durable append succeeds");
    assert_eq!(c.durability, Durability::Durable, "asked for Durable");
    assert_eq!(c.outcomes.len(), n, "one outcome per document");
    c.outcomes
}

/// Follows a paged listing to its end, checking page sizes; returns every item.
async fn collect_pages<T, F, Fut>(limit: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let mut out = Vec::new();
    let mut req = PageRequest::first(limit);
    for _ in 0..10_000 {
        let page = fetch(req.clone()).await.expect("page");
        assert!(page.items.len() <= limit as usize, "page of {} items exceeds limit {limit}", page.items.len());
        out.extend(page.items);
        match page.next {
            Some(c) => req.cursor = Some(c),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

async fn all_due(s: &dyn Store, now: Timestamp) -> Vec<(u16, DocumentKey)> {
    let mut out = Vec::new();
    for p in 0..DELIVERY_PARTITIONS {
        for d in s.due_deliveries(p, now, 10_000).await.expect("due") {
            assert_eq!(d.partition, p, "delivery reported in its own partition");
            assert_eq!(d.status, DeliveryStatus::Pending);
            out.push((p, d.key));
        }
    }
    out
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

// ============================================================================ documents

/// New documents are stored, reported `Stored` and `Durable`, and read back exactly.
pub async fn append_stores_new_documents_durably(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let f = fn_no(1);
    let mut d2 = doc(f, 2, &r, t(2), 0);
    d2.opaque = true;
    d2.response_code = 14;
    d2.flk_error = Some("flk.total".into());
    d2.ffd_version = None;
    d2.total = None;
    d2.telemetry = Some(TelemetryRecord {
        unsent_documents: Some(3),
        first_unsent_time: Some(t(-5000)),
        first_unsent_fd: Some(1),
        warnings: 0b0101,
        key_resource_days: Some(200),
        reported_at: None,
    });
    let docs = vec![doc(f, 1, &r, t(1), 0), d2, doc(fn_no(2), 1, &r, t(3), 0)];
    let outcomes = append_ok(&*s, docs.clone()).await;
    assert!(outcomes.iter().all(|o| *o == AppendOutcome::Stored), "{outcomes:?}");
    for d in &docs {
        let got = s.get_document(&d.key()).await.expect("get");
        assert_eq!(got.as_ref(), Some(d), "document {} read back", d.fd);
    }
    assert_eq!(s.get_document(&key(f, 99)).await.expect("get"), None);
    assert_eq!(s.health(), crate::store::Health::Ok);
}

/// A retransmission (same bytes) stores nothing and returns the ack stored first.
pub async fn append_identical_duplicate_returns_first_ack(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let f = fn_no(1);
    let first = doc(f, 7, &r, t(0), 0);
    append_ok(&*s, vec![first.clone()]).await;
    let mut again = first.clone();
    again.received_at = t(60_000);
    again.ack = Bytes::from_static(b"a freshly signed ack that must not be used");
    let o = append_ok(&*s, vec![again]).await;
    assert_eq!(o, vec![AppendOutcome::Duplicate { ack: first.ack.clone(), identical: true }]);
    assert_eq!(s.get_document(&first.key()).await.expect("get"), Some(first));
}

/// FDs arriving out of order, retransmissions of old FDs in later batches, and after a
/// reopen: each document is stored once and every retransmission returns its first ack
/// (backends may keep per-FN knowledge to skip lookups; it must never hide a duplicate
/// nor refuse a new document below the highest FD seen).
pub async fn append_out_of_order_and_old_retransmissions(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let f = fn_no(1);
    let d = |fd: u32, v: u8| doc(f, fd, &r, t(i64::from(fd)), v);
    assert_eq!(append_ok(&*s, vec![d(5, 0)]).await, vec![AppendOutcome::Stored]);
    // a lower FD that was never stored is new (an FN's backlog can arrive out of order)
    assert_eq!(append_ok(&*s, vec![d(3, 0)]).await, vec![AppendOutcome::Stored]);
    let dup = |x: &DocumentRecord| AppendOutcome::Duplicate { ack: x.ack.clone(), identical: true };
    // old FDs retransmitted in later batches, mixed with new ones in one request
    let o = append_ok(&*s, vec![d(3, 0), d(6, 0), d(5, 0), d(4, 0), d(6, 0)]).await;
    assert_eq!(o, vec![dup(&d(3, 0)), AppendOutcome::Stored, dup(&d(5, 0)), AppendOutcome::Stored, dup(&d(6, 0))]);
    let Some(s) = h.reopen(s).await else {
        return;
    };
    // after a reopen nothing known in memory may hide a stored document
    let o = append_ok(&*s, vec![d(6, 1), d(7, 0), d(1, 0)]).await;
    assert_eq!(
        o,
        vec![
            AppendOutcome::Duplicate { ack: d(6, 0).ack, identical: false },
            AppendOutcome::Stored,
            AppendOutcome::Stored
        ]
    );
    let page = s.documents_by_fn(&f, 0..=u32::MAX, PageRequest::first(100)).await.expect("list");
    let fds: Vec<u32> = page.items.iter().map(|x| x.fd).collect();
    assert_eq!(fds, vec![1, 3, 4, 5, 6, 7], "each stored exactly once");
    assert_eq!(page.items[4], d(6, 0), "the original of FD 6 is kept");
}

/// A different document under a used (FN, FD) never replaces the stored original.
pub async fn append_conflicting_duplicate_keeps_original(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let f = fn_no(1);
    let original = doc(f, 7, &r, t(0), 0);
    append_ok(&*s, vec![original.clone()]).await;
    let impostor = doc(f, 7, &r, t(5), 9);
    assert_ne!(impostor.raw, original.raw);
    let o = append_ok(&*s, vec![impostor]).await;
    assert_eq!(o, vec![AppendOutcome::Duplicate { ack: original.ack.clone(), identical: false }]);
    assert_eq!(s.get_document(&original.key()).await.expect("get"), Some(original));
}

/// Duplicates inside one batch: the first occurrence is stored, later ones are
/// duplicates of it (with its ack), and nothing is stored twice.
pub async fn append_duplicates_inside_one_batch(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let f = fn_no(1);
    let a = doc(f, 1, &r, t(0), 0);
    let b = doc(f, 2, &r, t(0), 0);
    let a_conflict = doc(f, 1, &r, t(1), 3);
    let o = append_ok(&*s, vec![a.clone(), b.clone(), a.clone(), a_conflict]).await;
    assert_eq!(o[0], AppendOutcome::Stored);
    assert_eq!(o[1], AppendOutcome::Stored);
    assert_eq!(o[2], AppendOutcome::Duplicate { ack: a.ack.clone(), identical: true });
    assert_eq!(o[3], AppendOutcome::Duplicate { ack: a.ack.clone(), identical: false });
    assert_eq!(s.get_document(&a.key()).await.expect("get"), Some(a));
    let all = s.documents_by_fn(&f, 0..=u32::MAX, PageRequest::first(100)).await.expect("by fn");
    assert_eq!(all.items.len(), 2);
    let act = s.get_activity(&r).await.expect("activity").expect("exists");
    assert_eq!(act.documents, 2, "duplicates are not counted");
    assert_eq!(all_due(&*s, t(100_000)).await.len(), 2, "one delivery each");
}

/// Many tasks racing to append the same document: exactly one stores it, every other
/// one gets the winner's ack.
pub async fn append_concurrent_same_key_stores_once(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let f = fn_no(1);
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let s = s.clone();
        let d = doc(f, 1, &r, t(i64::from(i)), i);
        tasks.push(tokio::spawn(async move {
            let c = s.append_documents(vec![d.clone()], Durability::Durable).await.expect("append");
            (d, c.outcomes)
        }));
    }
    let mut stored = Vec::new();
    let mut dup_acks = Vec::new();
    for task in tasks {
        let (d, o) = task.await.expect("task");
        match &o[..] {
            [AppendOutcome::Stored] => stored.push(d),
            [AppendOutcome::Duplicate { ack, .. }] => dup_acks.push(ack.clone()),
            other => panic!("unexpected outcomes {other:?}"),
        }
    }
    assert_eq!(stored.len(), 1, "exactly one winner");
    let winner = &stored[0];
    assert!(dup_acks.iter().all(|a| *a == winner.ack));
    assert_eq!(s.get_document(&winner.key()).await.expect("get").as_ref(), Some(winner));
    assert_eq!(all_due(&*s, t(100_000)).await.len(), 1);
}

/// `Buffered` appends store the document and report at least `Buffered`.
pub async fn append_buffered_reports_at_least_buffered(h: &dyn Harness) {
    let s = h.fresh().await;
    let d = doc(fn_no(1), 1, &rnm(1), t(0), 0);
    let c = s.append_documents(vec![d.clone()], Durability::Buffered).await.expect("append");
    assert_eq!(c.outcomes, vec![AppendOutcome::Stored]);
    assert!(c.durability >= Durability::Buffered);
    // A durable retransmission of it reports Durable.
    let c = s.append_documents(vec![d.clone()], Durability::Durable).await.expect("append");
    assert_eq!(c.durability, Durability::Durable);
    assert!(matches!(c.outcomes[0], AppendOutcome::Duplicate { identical: true, .. }));
    let empty = s.append_documents(Vec::new(), Durability::Durable).await.expect("empty append");
    assert!(empty.outcomes.is_empty());
}

/// FD ranges are inclusive and ascending, limited to the FN, and pages cover them exactly.
pub async fn documents_by_fn_ranges_and_pages(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let f = fn_no(1);
    let g = fn_no(2);
    // FDs across byte boundaries (255/256, 65535/65536) catch little-endian keys.
    let fds = [1u32, 2, 3, 255, 256, 257, 65_535, 65_536, 1_000_000];
    let mut docs: Vec<_> = fds.iter().map(|&fd| doc(f, fd, &r, t(i64::from(fd)), 0)).collect();
    docs.push(doc(g, 5, &r, t(0), 0));
    append_ok(&*s, docs).await;

    let fds_of = |p: &[DocumentRecord]| p.iter().map(|d| d.fd).collect::<Vec<_>>();
    let all = collect_pages(2, |p| s.documents_by_fn(&f, 0..=u32::MAX, p)).await;
    assert_eq!(fds_of(&all), fds.to_vec());
    assert!(all.iter().all(|d| d.fn_number == f));
    let mid = s.documents_by_fn(&f, 3..=65_535, PageRequest::first(100)).await.expect("range");
    assert_eq!(fds_of(&mid.items), vec![3, 255, 256, 257, 65_535]);
    assert_eq!(mid.next, None, "a complete page has no cursor");
    let one = s.documents_by_fn(&f, 256..=256, PageRequest::first(10)).await.expect("range");
    assert_eq!(fds_of(&one.items), vec![256]);
    let none = s.documents_by_fn(&f, 4..=254, PageRequest::first(10)).await.expect("range");
    assert!(none.items.is_empty());
    let other = s.documents_by_fn(&fn_no(3), 0..=u32::MAX, PageRequest::first(10)).await.expect("range");
    assert!(other.items.is_empty());
    let exact = collect_pages(3, |p| s.documents_by_fn(&f, 1..=257, p)).await;
    assert_eq!(fds_of(&exact), vec![1, 2, 3, 255, 256, 257]);
}

/// Register time ranges are `[from, to)`, ascending by receive time, and paged.
pub async fn documents_by_register_time_range_and_pages(h: &dyn Harness) {
    let s = h.fresh().await;
    let r1 = rnm(1);
    let r2 = rnm(2);
    let f1 = fn_no(1);
    let f2 = fn_no(2);
    // Receive times deliberately out of FD order, and spread over several days.
    let day = 86_400_000;
    let times = [5 * day, 1, 2 * day, 3, 10 * day, 4];
    let docs: Vec<_> = times.iter().enumerate().map(|(i, &ms)| doc(f1, i as u32 + 1, &r1, t(ms), 0)).collect();
    append_ok(&*s, docs).await;
    append_ok(&*s, vec![doc(f2, 1, &r2, t(2), 0)]).await;

    let times_of = |v: &[DocumentRecord]| v.iter().map(|d| d.received_at.0 - T0).collect::<Vec<_>>();
    let all = collect_pages(2, |p| s.documents_by_register(&r1, t(0), t(100 * day), p)).await;
    assert_eq!(times_of(&all), vec![1, 3, 4, 2 * day, 5 * day, 10 * day]);
    assert!(all.iter().all(|d| d.rnm == r1));
    let window = collect_pages(10, |p| s.documents_by_register(&r1, t(3), t(5 * day), p)).await;
    assert_eq!(times_of(&window), vec![3, 4, 2 * day], "from inclusive, to exclusive");
    let empty = s.documents_by_register(&r1, t(6 * day), t(7 * day), PageRequest::first(10)).await.expect("range");
    assert!(empty.items.is_empty());
    let other = s.documents_by_register(&r2, t(0), t(100 * day), PageRequest::first(10)).await.expect("range");
    assert_eq!(other.items.len(), 1);
}

/// A malformed page cursor is `Invalid`, not a panic or a silent first page.
pub async fn bad_cursor_is_invalid(h: &dyn Harness) {
    let s = h.fresh().await;
    append_ok(&*s, vec![doc(fn_no(1), 1, &rnm(1), t(0), 0)]).await;
    let req = PageRequest { limit: 10, cursor: Some("not a cursor \u{1F600}".into()) };
    let r = s.documents_by_fn(&fn_no(1), 0..=10, req.clone()).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let r = s.list_registers(&RegisterFilter::default(), req).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
}

/// Activity is folded with `RegisterActivity::absorb` over stored documents only.
pub async fn activity_folds_stored_documents_only(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let f = fn_no(1);
    assert_eq!(s.get_activity(&r).await.expect("activity"), None);
    let mut flk = doc(f, 3, &r, t(30), 0);
    flk.response_code = 14;
    let mut report = doc(f, 2, &r, t(20), 0);
    report.doc_type = 11;
    report.telemetry = Some(TelemetryRecord { unsent_documents: Some(5), ..Default::default() });
    let docs = vec![doc(f, 1, &r, t(10), 0), report, flk];
    let mut expected = RegisterActivity::default();
    for d in &docs {
        expected.absorb(d);
    }
    append_ok(&*s, docs.clone()).await;
    // Retransmissions change nothing.
    append_ok(&*s, docs.clone()).await;
    let got = s.get_activity(&r).await.expect("activity").expect("exists");
    assert_eq!(got, expected);
    assert_eq!(got.documents, 3);
    assert_eq!(got.flk_errors, 1);
    assert_eq!(got.last_fd, Some(3));

    // Across calls it keeps folding.
    let later = doc(f, 4, &r, t(40), 0);
    expected.absorb(&later);
    append_ok(&*s, vec![later]).await;
    let r2 = rnm(2);
    let many = s.get_activities(&[r.clone(), r2.clone()]).await.expect("activities");
    assert_eq!(many, vec![(r, expected)], "missing registers are absent");
}

// ============================================================================ outbox

/// Every stored document is due exactly once, in its own partition; duplicates queue
/// nothing.
pub async fn outbox_queues_each_stored_document_once(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let mut docs = Vec::new();
    for i in 0..12u64 {
        docs.push(doc(fn_no(i), 1, &r, t(i as i64), 0));
        docs.push(doc(fn_no(i), 2, &r, t(i as i64), 0));
    }
    append_ok(&*s, docs.clone()).await;
    append_ok(&*s, docs.clone()).await;
    let due = all_due(&*s, t(1_000_000)).await;
    assert_eq!(due.len(), docs.len(), "one entry per stored document");
    let keys: HashSet<_> = due.iter().map(|(_, k)| *k).collect();
    assert_eq!(keys.len(), docs.len(), "no document twice");
    for (p, k) in &due {
        assert_eq!(*p, delivery_partition(&k.fn_number));
    }
    for d in &docs {
        let del = s.get_delivery(&d.key()).await.expect("get").expect("exists");
        assert_eq!(del.status, DeliveryStatus::Pending);
        assert_eq!(del.attempts, 0);
        assert_eq!(del.partition, delivery_partition(&d.fn_number));
    }
    // Oldest first, and limited.
    let p = delivery_partition(&fn_no(0));
    let two = s.due_deliveries(p, t(1_000_000), 1).await.expect("due");
    assert_eq!(two.len(), 1);
    let full = s.due_deliveries(p, t(1_000_000), 100).await.expect("due");
    assert!(full.windows(2).all(|w| w[0].next_attempt_at <= w[1].next_attempt_at));
    assert_eq!(s.get_delivery(&key(fn_no(99), 1)).await.expect("get"), None);
}

/// Delivered documents leave the outbox; failures reschedule them.
pub async fn outbox_delivery_and_failure(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let a = doc(fn_no(1), 1, &r, t(0), 0);
    let b = doc(fn_no(2), 1, &r, t(0), 0);
    let c = doc(fn_no(3), 1, &r, t(0), 0);
    append_ok(&*s, vec![a.clone(), b.clone(), c.clone()]).await;
    let now = t(10_000);

    s.mark_delivered(&[a.key()], t(5_000)).await.expect("mark");
    let da = s.get_delivery(&a.key()).await.expect("get").expect("exists");
    assert_eq!(da.status, DeliveryStatus::Delivered);
    assert_eq!(da.delivered_at, Some(t(5_000)));
    // Idempotent.
    s.mark_delivered(&[a.key()], t(6_000)).await.expect("mark again");

    let later = t(3_600_000);
    s.record_delivery_failure(&b.key(), "HTTP 503", later).await.expect("failure");
    let db = s.get_delivery(&b.key()).await.expect("get").expect("exists");
    assert_eq!(db.status, DeliveryStatus::Pending);
    assert_eq!(db.attempts, 1);
    assert_eq!(db.next_attempt_at, later);
    assert_eq!(db.last_error.as_deref(), Some("HTTP 503"));

    let due: BTreeSet<_> = all_due(&*s, now).await.into_iter().map(|(_, k)| k).collect();
    assert_eq!(due, BTreeSet::from([c.key()]), "a delivered, b not yet due");
    let due: Vec<_> = all_due(&*s, later).await.into_iter().map(|(_, k)| k).collect();
    assert_eq!(due.len(), 2, "b due again exactly once: {due:?}");
    assert!(due.contains(&b.key()) && due.contains(&c.key()));

    // A second failure moves it again (no stale entry left behind).
    s.record_delivery_failure(&b.key(), "timeout", t(7_200_000)).await.expect("failure");
    let due: Vec<_> = all_due(&*s, t(7_200_000)).await.into_iter().map(|(_, k)| k).collect();
    assert_eq!(due.iter().filter(|k| **k == b.key()).count(), 1);
    assert_eq!(s.get_delivery(&b.key()).await.expect("get").expect("exists").attempts, 2);

    s.mark_delivered(&[b.key(), c.key()], t(8_000_000)).await.expect("mark");
    assert!(all_due(&*s, t(i64::MAX / 4)).await.is_empty());
    let r = s.record_delivery_failure(&key(fn_no(50), 1), "x", later).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

/// The backlog counts pending deliveries and knows the oldest.
pub async fn outbox_backlog_stats(h: &dyn Harness) {
    let s = h.fresh().await;
    let b = s.backlog().await.expect("backlog");
    assert_eq!((b.pending, b.oldest_queued_at), (0, None));
    let r = rnm(1);
    let docs = vec![doc(fn_no(1), 1, &r, t(300), 0), doc(fn_no(2), 1, &r, t(100), 0), doc(fn_no(3), 1, &r, t(200), 0)];
    append_ok(&*s, docs.clone()).await;
    append_ok(&*s, docs.clone()).await;
    let b = s.backlog().await.expect("backlog");
    assert_eq!((b.pending, b.oldest_queued_at), (3, Some(t(100))));
    s.mark_delivered(&[docs[1].key()], t(400)).await.expect("mark");
    let b = s.backlog().await.expect("backlog");
    assert_eq!((b.pending, b.oldest_queued_at), (2, Some(t(200))));
    s.record_delivery_failure(&docs[2].key(), "x", t(10_000)).await.expect("failure");
    let b = s.backlog().await.expect("backlog");
    assert_eq!(b.pending, 2, "a failure keeps it pending");
    assert_eq!(b.oldest_queued_at, Some(t(200)), "age is queue time, not retry time");
}

/// Leases: one holder at a time, renewable by the holder, taken over after expiry,
/// released only by the holder.
pub async fn leases_are_exclusive_renewable_and_expire(h: &dyn Harness) {
    let s = h.fresh().await;
    let long = Duration::from_secs(60);
    assert!(s.try_lease("fns-p1", "node-a", long).await.expect("lease"));
    assert!(!s.try_lease("fns-p1", "node-b", long).await.expect("lease"));
    assert!(s.try_lease("fns-p1", "node-a", long).await.expect("renew"));
    assert!(s.try_lease("fns-p2", "node-b", long).await.expect("other lease"));
    s.release_lease("fns-p1", "node-b").await.expect("not holder");
    assert!(!s.try_lease("fns-p1", "node-b", long).await.expect("still a's"));
    s.release_lease("fns-p1", "node-a").await.expect("release");
    assert!(s.try_lease("fns-p1", "node-b", long).await.expect("free now"));

    let short = Duration::from_secs(1);
    assert!(s.try_lease("short", "node-a", short).await.expect("lease"));
    assert!(!s.try_lease("short", "node-b", long).await.expect("held"));
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(s.try_lease("short", "node-b", long).await.expect("expired"));
    assert!(!s.try_lease("short", "node-a", long).await.expect("b's now"));
}

// ============================================================================ registers

/// Put, get and the FN index (current and historical FNs; dropped FNs leave the index).
pub async fn registers_put_get_and_fn_index(h: &dyn Harness) {
    let s = h.fresh().await;
    let mut a = register(1, fn_no(11));
    a.fn_history = vec![FnRecord { fn_number: fn_no(10), active_from: Some(t(-1000)), replaced_at: t(0) }];
    a.group = Some("north".into());
    let b = register(2, fn_no(20));
    s.put_registers(vec![a.clone(), b.clone()], vec![None, None]).await.expect("put");
    assert_eq!(s.get_register(&a.rnm).await.expect("get"), Some(a.clone()));
    assert_eq!(s.get_register(&rnm(3)).await.expect("get"), None);
    assert_eq!(s.register_by_fn(&fn_no(11)).await.expect("fn"), Some(a.clone()));
    assert_eq!(s.register_by_fn(&fn_no(10)).await.expect("fn"), Some(a.clone()));
    assert_eq!(s.register_by_fn(&fn_no(20)).await.expect("fn"), Some(b.clone()));
    assert_eq!(s.register_by_fn(&fn_no(99)).await.expect("fn"), None);

    // FN replacement: 11 moves to history, 12 is current, 10 is dropped.
    let mut a2 = a.clone();
    a2.fn_number = fn_no(12);
    a2.fn_history = vec![FnRecord { fn_number: fn_no(11), active_from: Some(t(0)), replaced_at: t(500) }];
    a2.version = 2;
    a2.updated_at = t(500);
    s.put_registers(vec![a2.clone()], vec![Some(1)]).await.expect("replace");
    assert_eq!(s.get_register(&a.rnm).await.expect("get"), Some(a2.clone()));
    assert_eq!(s.register_by_fn(&fn_no(12)).await.expect("fn"), Some(a2.clone()));
    assert_eq!(s.register_by_fn(&fn_no(11)).await.expect("fn"), Some(a2.clone()));
    assert_eq!(s.register_by_fn(&fn_no(10)).await.expect("fn"), None);
    // The dropped FN is free for another register now.
    let c = register(3, fn_no(10));
    s.put_registers(vec![c.clone()], Vec::new()).await.expect("put");
    assert_eq!(s.register_by_fn(&fn_no(10)).await.expect("fn"), Some(c));
}

/// An FN owned by another register is a `Conflict`, and the whole call changes nothing.
pub async fn registers_fn_clash_changes_nothing(h: &dyn Harness) {
    let s = h.fresh().await;
    let mut a = register(1, fn_no(1));
    a.fn_history = vec![FnRecord { fn_number: fn_no(5), active_from: None, replaced_at: t(0) }];
    s.put_registers(vec![a.clone()], vec![None]).await.expect("put");

    let b = register(2, fn_no(2));
    let thief = register(3, fn_no(1));
    let r = s.put_registers(vec![b.clone(), thief.clone()], vec![None, None]).await;
    assert!(is_conflict(r), "current FN of another register");
    let mut historic_thief = register(4, fn_no(4));
    historic_thief.fn_history = vec![FnRecord { fn_number: fn_no(5), active_from: None, replaced_at: t(0) }];
    let r = s.put_registers(vec![historic_thief.clone()], vec![None]).await;
    assert!(is_conflict(r), "historical FN of another register");
    let r = s.put_registers(vec![register(6, fn_no(6)), register(7, fn_no(6))], vec![]).await;
    assert!(is_conflict(r), "two registers of one call claim one FN");

    for gone in [&b.rnm, &thief.rnm, &historic_thief.rnm, &rnm(6), &rnm(7)] {
        assert_eq!(s.get_register(gone).await.expect("get"), None, "{gone}");
    }
    assert_eq!(s.register_by_fn(&fn_no(1)).await.expect("fn"), Some(a.clone()));
    assert_eq!(s.register_by_fn(&fn_no(5)).await.expect("fn"), Some(a.clone()));
    assert_eq!(s.register_by_fn(&fn_no(2)).await.expect("fn"), None);
    assert_eq!(s.register_by_fn(&fn_no(6)).await.expect("fn"), None);
    let no_filter = RegisterFilter::default();
    let all = collect_pages(100, |p| s.list_registers(&no_filter, p)).await;
    assert_eq!(all, vec![a]);
}

/// A stale expected version is a `Conflict`, and the whole call changes nothing.
pub async fn registers_version_conflict_changes_nothing(h: &dyn Harness) {
    let s = h.fresh().await;
    let a = register(1, fn_no(1));
    s.put_registers(vec![a.clone()], vec![None]).await.expect("put");
    let mut a2 = a.clone();
    a2.version = 2;
    a2.name = "renamed".into();
    a2.updated_at = t(10);
    let b = register(2, fn_no(2));
    s.put_registers(vec![a2.clone(), b.clone()], vec![Some(1), None]).await.expect("matching version");
    assert_eq!(s.get_register(&a.rnm).await.expect("get"), Some(a2.clone()));

    let mut stale = a.clone();
    stale.version = 2;
    stale.name = "lost update".into();
    let c = register(3, fn_no(3));
    let r = s.put_registers(vec![c.clone(), stale], vec![None, Some(1)]).await;
    assert!(is_conflict(r), "stale version");
    assert_eq!(s.get_register(&a.rnm).await.expect("get"), Some(a2));
    assert_eq!(s.get_register(&c.rnm).await.expect("get"), None);
    assert_eq!(s.register_by_fn(&fn_no(3)).await.expect("fn"), None);
    assert_eq!(s.get_register(&b.rnm).await.expect("get"), Some(b.clone()));

    // expected version 0 = "must not exist": a create never overwrites
    let mut dup = b.clone();
    dup.name = "second create".into();
    let r = s.put_registers(vec![dup], vec![Some(0)]).await;
    assert!(is_conflict(r), "create over an existing register");
    assert_eq!(s.get_register(&b.rnm).await.expect("get"), Some(b));
    let d = register(4, fn_no(4));
    s.put_registers(vec![d.clone()], vec![Some(0)]).await.expect("create of a new register");
    assert_eq!(s.get_register(&d.rnm).await.expect("get"), Some(d));
}

/// Listing: RNM order, every filter, pages.
pub async fn registers_list_filters_and_pages(h: &dyn Harness) {
    let s = h.fresh().await;
    let mut regs = Vec::new();
    for n in 1..=7u64 {
        let mut r = register(n, fn_no(n));
        r.status = if n % 3 == 0 { RegisterStatus::Suspended } else { RegisterStatus::Active };
        r.group = (n % 2 == 0).then(|| "even".to_owned());
        r.tariff = Some(if n <= 2 { "basic" } else { "pro" }.to_owned());
        r.paid_until = Some(t(n as i64 * 1000));
        if n == 7 {
            r.owner_inn = other_owner();
            r.rnm = Rnm::compose(n, &other_owner(), &r.kkt_serial);
        }
        regs.push(r);
    }
    s.put_registers(regs.clone(), Vec::new()).await.expect("put");
    let mut sorted = regs.clone();
    sorted.sort_by(|a, b| a.rnm.cmp(&b.rnm));

    let no_filter = RegisterFilter::default();
    let all = collect_pages(3, |p| s.list_registers(&no_filter, p)).await;
    assert_eq!(all, sorted, "all, in RNM order");

    let rnms = |f: RegisterFilter| {
        let s = s.clone();
        async move {
            let v = collect_pages(2, |p| s.list_registers(&f, p)).await;
            v.into_iter().map(|r| r.name).collect::<Vec<_>>()
        }
    };
    let names = |ns: &[u64]| {
        let mut v: Vec<_> = regs.iter().filter(|r| ns.iter().any(|n| r.name == format!("Shop {n}"))).collect();
        v.sort_by(|a, b| a.rnm.cmp(&b.rnm));
        v.into_iter().map(|r| r.name.clone()).collect::<Vec<_>>()
    };
    let f = RegisterFilter { status: Some(RegisterStatus::Suspended), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[3, 6]));
    let f = RegisterFilter { group: Some("even".into()), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[2, 4, 6]));
    let f = RegisterFilter { tariff: Some("basic".into()), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[1, 2]));
    let f = RegisterFilter { owner_inn: Some(other_owner()), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[7]));
    let f = RegisterFilter { paid_until_before: Some(t(3000)), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[1, 2]));
    let f = RegisterFilter { status: Some(RegisterStatus::Active), group: Some("even".into()), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[2, 4]));
}

/// `registers_updated_since` returns each changed register once, at or after `since`.
pub async fn registers_updated_since(h: &dyn Harness) {
    let s = h.fresh().await;
    let mut regs = Vec::new();
    for n in 1..=5u64 {
        let mut r = register(n, fn_no(n));
        r.updated_at = t(n as i64 * 10);
        regs.push(r);
    }
    s.put_registers(regs.clone(), Vec::new()).await.expect("put");
    let since = |ts: Timestamp| {
        let s = s.clone();
        async move {
            let v = collect_pages(2, |p| s.registers_updated_since(ts, p)).await;
            let mut names: Vec<_> = v.into_iter().map(|r| r.name).collect();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), n, "a register listed twice");
            names
        }
    };
    assert_eq!(since(t(30)).await, vec!["Shop 3", "Shop 4", "Shop 5"]);
    assert_eq!(since(t(51)).await, Vec::<String>::new());
    let mut r1 = regs[0].clone();
    r1.updated_at = t(100);
    r1.version = 2;
    s.put_registers(vec![r1], vec![Some(1)]).await.expect("update");
    assert_eq!(since(t(30)).await, vec!["Shop 1", "Shop 3", "Shop 4", "Shop 5"]);
    assert_eq!(since(t(60)).await, vec!["Shop 1"]);
    assert_eq!(since(t(0)).await.len(), 5);
}

/// Unknown FNs aggregate attempts and first/last sighting; removal drops them.
pub async fn unknown_fns_aggregate_and_remove(h: &dyn Harness) {
    let s = h.fresh().await;
    let sight = |n: u64, at: i64, attempts: u64, peer: &str| UnknownFnSighting {
        fn_number: fn_no(n),
        at: t(at),
        attempts,
        claimed_rnm: Some(format!("claimed-{n}")),
        claimed_inn: None,
        peer: Some(peer.to_owned()),
    };
    s.record_unknown_fns(vec![sight(2, 100, 2, "10.0.0.1:1"), sight(1, 50, 1, "10.0.0.9:9")]).await.expect("record");
    s.record_unknown_fns(vec![sight(2, 300, 3, "10.0.0.2:2"), sight(2, 10, 1, "10.0.0.3:3")]).await.expect("record");
    let all = collect_pages(1, |p| s.list_unknown_fns(p)).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].fn_number, fn_no(1), "FN order");
    let u = &all[1];
    assert_eq!(u.fn_number, fn_no(2));
    assert_eq!(u.attempts, 6);
    assert_eq!(u.first_seen, t(10));
    assert_eq!(u.last_seen, t(300));
    assert_eq!(u.last_peer.as_deref(), Some("10.0.0.2:2"));
    assert_eq!(u.claimed_rnm.as_deref(), Some("claimed-2"));
    s.remove_unknown_fn(&fn_no(2)).await.expect("remove");
    let all = collect_pages(10, |p| s.list_unknown_fns(p)).await;
    assert_eq!(all.iter().map(|u| u.fn_number).collect::<Vec<_>>(), vec![fn_no(1)]);
    s.remove_unknown_fn(&fn_no(77)).await.expect("removing an absent FN is fine");
}

// ============================================================================ admin

/// Tariffs: create, read, list; a taken name is a `Conflict` that changes nothing.
pub async fn tariffs_create_get_list(h: &dyn Harness) {
    let s = h.fresh().await;
    let plan = |name: &str, days: u32| TariffPlan {
        name: name.to_owned(),
        period_days: days,
        price_kopecks: 150_000,
        description: "a year".into(),
        created_at: t(0),
    };
    s.create_tariff(&plan("OFD-15", 365)).await.expect("create");
    s.create_tariff(&plan("OFD-36", 1095)).await.expect("create");
    assert!(is_conflict(s.create_tariff(&plan("OFD-15", 30)).await));
    assert_eq!(s.get_tariff("OFD-15").await.expect("get"), Some(plan("OFD-15", 365)));
    assert_eq!(s.get_tariff("nope").await.expect("get"), None);
    let mut names: Vec<_> = s.list_tariffs().await.expect("list").into_iter().map(|p| p.name).collect();
    names.sort();
    assert_eq!(names, vec!["OFD-15", "OFD-36"]);
}

/// The audit log lists newest first, filtered, paged.
pub async fn audit_newest_first_with_filters(h: &dyn Harness) {
    let s = h.fresh().await;
    let entry = |i: i64, actor: &str, action: &str, target: &str| AuditEntry {
        id: v7(T0 + i * 1000, 0),
        at: t(i * 1000),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        before: None,
        after: Some(serde_json::json!({ "i": i })),
        source: Some("127.0.0.1".into()),
    };
    let entries = vec![
        entry(1, "alice", "register.create", "R1"),
        entry(2, "bob", "register.suspend", "R1"),
        entry(3, "alice", "tariff.create", "OFD-15"),
        entry(4, "alice", "register.suspend", "R2"),
        entry(5, "bob", "rule.delete", "silent"),
    ];
    for e in &entries {
        s.append_audit(e).await.expect("append");
    }
    let ids = |v: Vec<AuditEntry>| v.into_iter().map(|e| e.at.0 - T0).collect::<Vec<_>>();
    let no_filter = AuditFilter::default();
    let all = collect_pages(2, |p| s.list_audit(&no_filter, p)).await;
    assert_eq!(all[0], entries[4]);
    assert_eq!(ids(all), vec![5000, 4000, 3000, 2000, 1000]);
    let f = AuditFilter { actor: Some("alice".into()), ..Default::default() };
    assert_eq!(ids(collect_pages(1, |p| s.list_audit(&f, p)).await), vec![4000, 3000, 1000]);
    let f = AuditFilter { action_prefix: Some("register.".into()), ..Default::default() };
    assert_eq!(ids(collect_pages(5, |p| s.list_audit(&f, p)).await), vec![4000, 2000, 1000]);
    let f = AuditFilter { target: Some("R1".into()), ..Default::default() };
    assert_eq!(ids(collect_pages(5, |p| s.list_audit(&f, p)).await), vec![2000, 1000]);
    let f = AuditFilter { since: Some(t(3000)), actor: Some("bob".into()), ..Default::default() };
    assert_eq!(ids(collect_pages(5, |p| s.list_audit(&f, p)).await), vec![5000]);
}

fn rule(name: &str) -> AlertRule {
    AlertRule {
        name: name.to_owned(),
        condition: AlertCondition::Silent { for_secs: 86_400 },
        scope: AlertScope::All,
        severity: Severity::Warning,
        enabled: true,
        webhook: Some("http://127.0.0.1:9/hook".into()),
        created_at: t(0),
        updated_at: t(0),
    }
}

fn state(rule: &str, n: u64, status: AlertStatus) -> AlertState {
    AlertState {
        rule: rule.to_owned(),
        rnm: rnm(n),
        status,
        since: t(0),
        resolved_at: None,
        last_evaluated: t(10),
        clear_streak: 0,
        detail: format!("register {n}"),
        severity: Severity::Warning,
    }
}

/// Rules: put/get/list/replace/delete (with their states); states filtered and ordered
/// by (rule, register).
pub async fn alert_rules_and_states(h: &dyn Harness) {
    let s = h.fresh().await;
    s.put_rule(&rule("silent")).await.expect("put");
    s.put_rule(&rule("silent-2")).await.expect("put");
    let mut changed = rule("silent");
    changed.enabled = false;
    s.put_rule(&changed).await.expect("replace");
    assert_eq!(s.get_rule("silent").await.expect("get"), Some(changed));
    assert_eq!(s.get_rule("none").await.expect("get"), None);
    assert_eq!(s.list_rules().await.expect("list").len(), 2);

    let mut rnm_order = [1u64, 2, 3];
    rnm_order.sort_by_key(|n| rnm(*n));
    s.put_alert_states(vec![
        state("silent", 3, AlertStatus::Firing),
        state("silent-2", 1, AlertStatus::Firing),
        state("silent", 1, AlertStatus::Resolved),
        state("silent", 2, AlertStatus::Firing),
    ])
    .await
    .expect("states");
    // Overwrite one state.
    s.put_alert_states(vec![state("silent", 2, AlertStatus::Resolved)]).await.expect("states");
    let list = |f: AlertFilter| {
        let s = s.clone();
        async move {
            collect_pages(1, |p| s.list_alert_states(&f, p))
                .await
                .into_iter()
                .map(|st| (st.rule, st.rnm, st.status))
                .collect::<Vec<_>>()
        }
    };
    let all = list(AlertFilter::default()).await;
    let mut expected: Vec<_> = rnm_order
        .iter()
        .map(|n| {
            let st = if *n == 3 { AlertStatus::Firing } else { AlertStatus::Resolved };
            ("silent".to_owned(), rnm(*n), st)
        })
        .collect();
    expected.push(("silent-2".to_owned(), rnm(1), AlertStatus::Firing));
    assert_eq!(all, expected, "ordered by (rule, register)");
    let f = AlertFilter { rule: Some("silent".into()), status: Some(AlertStatus::Firing), rnm: None };
    assert_eq!(list(f).await, vec![("silent".to_owned(), rnm(3), AlertStatus::Firing)]);
    let f = AlertFilter { rnm: Some(rnm(1)), ..Default::default() };
    assert_eq!(list(f).await.len(), 2);

    s.delete_rule("silent").await.expect("delete");
    assert_eq!(s.get_rule("silent").await.expect("get"), None);
    assert_eq!(
        list(AlertFilter::default()).await,
        vec![("silent-2".to_owned(), rnm(1), AlertStatus::Firing)],
        "the rule's states went with it"
    );
    let r = s.delete_rule("silent").await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

fn note(i: i64, next_at: i64) -> AlertNotification {
    AlertNotification {
        id: v7(T0 + i * 1000, 0),
        rule: "silent".into(),
        rnm: rnm(1),
        status: AlertStatus::Firing,
        webhook: "http://127.0.0.1:9/hook".into(),
        payload: serde_json::json!({ "n": i }),
        created_at: t(i * 1000),
        attempts: 0,
        next_attempt_at: t(next_at),
        delivered_at: None,
        abandoned: false,
        last_error: None,
    }
}

/// Notifications: due = pending and next attempt passed, oldest first; delivered or
/// abandoned are never due; listing is newest first.
pub async fn alert_notifications_due_and_list(h: &dyn Harness) {
    let s = h.fresh().await;
    let n1 = note(1, 1_000);
    let n2 = note(2, 20_000);
    let mut n3 = note(3, 0);
    n3.delivered_at = Some(t(500));
    let mut n4 = note(4, 0);
    n4.abandoned = true;
    s.put_notifications(vec![n2.clone(), n1.clone(), n3.clone(), n4.clone()]).await.expect("put");
    let due = |at: i64| {
        let s = s.clone();
        async move { s.due_notifications(t(at), 100).await.expect("due").into_iter().map(|n| n.id).collect::<Vec<_>>() }
    };
    assert_eq!(due(5_000).await, vec![n1.id]);
    assert_eq!(due(30_000).await, vec![n1.id, n2.id], "oldest first");
    assert_eq!(s.due_notifications(t(30_000), 1).await.expect("due").len(), 1);

    // A retry moves n1 later; delivery of n2 removes it.
    let mut n1b = n1.clone();
    n1b.attempts = 1;
    n1b.next_attempt_at = t(40_000);
    let mut n2b = n2.clone();
    n2b.delivered_at = Some(t(25_000));
    s.put_notifications(vec![n1b.clone(), n2b.clone()]).await.expect("update");
    assert_eq!(due(30_000).await, Vec::<Uuid>::new());
    assert_eq!(due(40_000).await, vec![n1.id]);

    let all = collect_pages(3, |p| s.list_notifications(p)).await;
    assert_eq!(all, vec![n4, n3, n2b, n1b], "newest first, latest versions");
}

fn job(i: i64, state: JobState) -> ResendJob {
    ResendJob {
        id: v7(T0 + i * 1000, 0),
        selector: ResendSelector {
            rnm: Some(rnm(1)),
            fn_number: None,
            owner_inn: None,
            from: t(0),
            to: t(1000),
            types: vec![1, 3],
        },
        state,
        created_by: "alice".into(),
        created_at: t(i * 1000),
        updated_at: t(i * 1000),
        finished_at: None,
        selected: 0,
        selection_complete: false,
        delivered: 0,
        failed: 0,
        cursor: None,
        error: None,
    }
}

/// Jobs: put/get/update, newest first, filtered by state.
pub async fn jobs_newest_first_with_state_filter(h: &dyn Harness) {
    let s = h.fresh().await;
    let j1 = job(1, JobState::Pending);
    let j2 = job(2, JobState::Running);
    let j3 = job(3, JobState::Completed);
    for j in [&j2, &j1, &j3] {
        s.put_job(j).await.expect("put");
    }
    assert_eq!(s.get_job(&j2.id).await.expect("get"), Some(j2.clone()));
    assert_eq!(s.get_job(&Uuid::nil()).await.expect("get"), None);
    let ids = |v: Vec<ResendJob>| v.into_iter().map(|j| j.id).collect::<Vec<_>>();
    let all = collect_pages(2, |p| s.list_jobs(&[], p)).await;
    assert_eq!(ids(all), vec![j3.id, j2.id, j1.id]);
    let active = collect_pages(1, |p| s.list_jobs(&[JobState::Running, JobState::Pending], p)).await;
    assert_eq!(ids(active), vec![j2.id, j1.id]);
    let mut j1done = j1.clone();
    j1done.state = JobState::Completed;
    j1done.delivered = 42;
    j1done.cursor = Some("opaque".into());
    s.put_job(&j1done).await.expect("update");
    assert_eq!(s.get_job(&j1.id).await.expect("get"), Some(j1done));
    let done = collect_pages(5, |p| s.list_jobs(&[JobState::Completed], p)).await;
    assert_eq!(ids(done), vec![j3.id, j1.id]);
}

// ============================================================================ persistence

/// Everything written is there after a close and reopen (skipped, with a message, for
/// backends that cannot reopen).
pub async fn data_survives_reopen(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let reg = register(1, fn_no(1));
    s.put_registers(vec![reg.clone()], vec![None]).await.expect("put");
    let docs: Vec<_> = (1..=50).map(|fd| doc(fn_no(1), fd, &r, t(i64::from(fd)), 0)).collect();
    append_ok(&*s, docs.clone()).await;
    s.mark_delivered(&[docs[0].key()], t(100)).await.expect("mark");
    s.create_tariff(&TariffPlan {
        name: "OFD-15".into(),
        period_days: 365,
        price_kopecks: 1,
        description: String::new(),
        created_at: t(0),
    })
    .await
    .expect("tariff");
    s.put_rule(&rule("silent")).await.expect("rule");
    let j = job(1, JobState::Running);
    s.put_job(&j).await.expect("job");
    let activity = s.get_activity(&r).await.expect("activity");

    let Some(s) = h.reopen(s).await else {
        eprintln!("conformance: data_survives_reopen skipped: the backend cannot reopen");
        return;
    };
    for d in &docs {
        assert_eq!(s.get_document(&d.key()).await.expect("get").as_ref(), Some(d));
    }
    let o = append_ok(&*s, vec![docs[5].clone()]).await;
    assert_eq!(o, vec![AppendOutcome::Duplicate { ack: docs[5].ack.clone(), identical: true }]);
    assert_eq!(s.get_register(&reg.rnm).await.expect("get"), Some(reg.clone()));
    assert_eq!(s.register_by_fn(&fn_no(1)).await.expect("fn"), Some(reg));
    assert_eq!(s.get_activity(&r).await.expect("activity"), activity);
    assert_eq!(all_due(&*s, t(1_000_000)).await.len(), 49);
    let b = s.backlog().await.expect("backlog");
    assert_eq!((b.pending, b.oldest_queued_at), (49, Some(t(2))));
    assert!(s.get_tariff("OFD-15").await.expect("tariff").is_some());
    assert!(s.get_rule("silent").await.expect("rule").is_some());
    assert_eq!(s.get_job(&j.id).await.expect("job"), Some(j));
    // And it keeps working.
    let more = doc(fn_no(1), 51, &r, t(51), 0);
    assert_eq!(append_ok(&*s, vec![more]).await, vec![AppendOutcome::Stored]);
}
