//! The embedded store's FNS bookkeeping against a model, under random operations.
//!
//! At ingest the embedded store writes only an outbox entry per document; the delivery
//! record and the age index appear at the first attempt (docs/storage-embedded.md). This
//! checks that the state read back — every document's delivery, what is due, the
//! backlog's count and oldest queue time — equals a plain model after any mix of appends
//! (duplicates included), failures, deliveries and reopenings.

use std::collections::BTreeMap;

use proptest::prelude::*;
use storage::conformance::fixtures::{doc, fn_no, rnm, t};
use storage::embedded::{EmbeddedOptions, EmbeddedStore};
use storage::model::{DeliveryStatus, DocumentKey, delivery_partition};
use storage::{DeliveryStore, DocumentStore, Durability, Store, Timestamp};

#[derive(Debug, Clone)]
enum Op {
    /// Append document (fn, fd) received at a time.
    Append { f: u64, fd: u32, at: i64 },
    /// A failed attempt of the n-th known document, retried at `retry` (ms).
    Fail { n: usize, retry: i64 },
    /// A successful attempt of the n-th known document.
    Deliver { n: usize },
    /// Close and open the store again.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u64..8, 1u32..6, 0i64..10_000).prop_map(|(f, fd, at)| Op::Append { f, fd, at }),
        2 => (0usize..64, 0i64..20_000).prop_map(|(n, retry)| Op::Fail { n, retry }),
        2 => (0usize..64).prop_map(|n| Op::Deliver { n }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct Model {
    status: DeliveryStatus,
    queued_at: Timestamp,
    attempts: u32,
    next_attempt_at: Timestamp,
}

fn run(ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let open = || EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
        let mut s = open();
        let mut model: BTreeMap<DocumentKey, Model> = BTreeMap::new();
        let r = rnm(1);
        for op in ops {
            match op {
                Op::Append { f, fd, at } => {
                    let d = doc(fn_no(f), fd, &r, t(at), 0);
                    s.append_documents(vec![d.clone()], Durability::Durable).await.expect("append");
                    model.entry(d.key()).or_insert(Model {
                        status: DeliveryStatus::Pending,
                        queued_at: t(at),
                        attempts: 0,
                        next_attempt_at: t(at),
                    });
                }
                Op::Fail { n, retry } => {
                    let Some((k, m)) = model.iter_mut().nth(n % 64) else { continue };
                    s.record_delivery_failure(k, "HTTP 503", t(retry)).await.expect("failure");
                    if m.status == DeliveryStatus::Pending {
                        m.attempts += 1;
                        m.next_attempt_at = t(retry);
                    }
                }
                Op::Deliver { n } => {
                    let Some((k, m)) = model.iter_mut().nth(n % 64) else { continue };
                    s.mark_delivered(&[*k], t(50_000)).await.expect("mark");
                    if m.status == DeliveryStatus::Pending {
                        m.attempts += 1;
                        m.status = DeliveryStatus::Delivered;
                    }
                }
                Op::Reopen => {
                    s.close().await.expect("close");
                    drop(s);
                    s = open();
                }
            }
            // every document's delivery state
            for (k, m) in &model {
                let d = s.get_delivery(k).await.expect("get").expect("a stored document has a delivery state");
                let got = Model {
                    status: d.status,
                    queued_at: d.queued_at,
                    attempts: d.attempts,
                    next_attempt_at: d.next_attempt_at,
                };
                assert_eq!(got, *m, "delivery of {}/{}", k.fn_number, k.fd);
            }
            // what is due, per partition
            let mut due = Vec::new();
            for p in 0..storage::model::DELIVERY_PARTITIONS {
                for d in s.due_deliveries(p, t(i64::MAX / 4), 10_000).await.expect("due") {
                    assert_eq!(d.partition, delivery_partition(&d.key.fn_number));
                    due.push(d.key);
                }
            }
            due.sort();
            let pending: Vec<_> =
                model.iter().filter(|(_, m)| m.status == DeliveryStatus::Pending).map(|(k, _)| *k).collect();
            assert_eq!(due, pending, "due = pending, each once");
            // the backlog
            let b = s.backlog().await.expect("backlog");
            let oldest = model.values().filter(|m| m.status == DeliveryStatus::Pending).map(|m| m.queued_at).min();
            assert_eq!((b.pending, b.oldest_queued_at), (pending.len() as u64, oldest));
        }
        s.close().await.expect("close");
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn delivery_state_due_list_and_backlog_match_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}

/// The case the backlog's oldest-age rule is about: a retried document at the head of its
/// partition's outbox (its retry time earlier than a later, never-attempted document's
/// queue time) while an older never-attempted document sits in another partition.
#[test]
fn the_oldest_queue_time_sees_past_a_retried_head() {
    let a = fn_no(1);
    let b = (2..200).map(fn_no).find(|f| delivery_partition(f) == delivery_partition(&a)).expect("same partition");
    let c = (2..200).map(fn_no).find(|f| delivery_partition(f) != delivery_partition(&a)).expect("other partition");
    run(vec![
        Op::Append { f: 1, fd: 1, at: 100 },
        Op::Fail { n: 0, retry: 150 },
        Op::Append { f: fn_index(b), fd: 1, at: 200 },
        Op::Append { f: fn_index(c), fd: 1, at: 120 },
        Op::Deliver { n: 2 },
        Op::Reopen,
    ]);
}

fn fn_index(f: ffd::FnNumber) -> u64 {
    (2..200).find(|n| fn_no(*n) == f).expect("an index of the fixtures")
}

/// A retried document behind a never-attempted one in the same partition: only the age
/// index knows that the retried one is the oldest.
#[test]
fn the_oldest_queue_time_sees_a_retried_document_behind_the_head() {
    run(vec![
        Op::Append { f: 1, fd: 1, at: 100 },
        Op::Fail { n: 0, retry: 5_000 },
        Op::Append { f: 1, fd: 2, at: 200 },
        Op::Reopen,
        Op::Deliver { n: 1 },
    ]);
}

/// A retry scheduled before the queue time of a never-attempted document of the same
/// partition (found by the property test against a first design that read the oldest
/// queue time off the head of each partition's single outbox).
#[test]
fn the_oldest_queue_time_sees_an_untried_document_behind_an_early_retry() {
    run(vec![
        Op::Append { f: 6, fd: 4, at: 451 },
        Op::Append { f: 6, fd: 2, at: 2_200 },
        Op::Fail { n: 0, retry: 359 },
        Op::Append { f: 0, fd: 1, at: 452 },
        Op::Reopen,
    ]);
}
