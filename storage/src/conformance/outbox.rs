//! The FNS outbox: each stored document due once in its partition, delivered or
//! rescheduled after a failure, and the backlog figures.

use std::collections::{BTreeSet, HashSet};

use super::Harness;
use super::fixtures::{all_due, append_ok, doc, fn_no, key, rnm, t};
use crate::error::StoreError;
use crate::model::{DeliveryStatus, delivery_partition};

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
