//! Appending documents: stored once and durably, a retransmission answered with the ack
//! stored first, conflicting duplicates never replace the original, out of order and
//! concurrent appends.

use bytes::Bytes;

use super::Harness;
use super::fixtures::{all_due, append_ok, doc, fn_no, key, rnm, t};
use crate::model::{AppendOutcome, DocumentRecord, TelemetryRecord};
use crate::store::{Durability, PageRequest};

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
    s.settle().await.expect("settle");
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
    s.settle().await.expect("settle");
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
