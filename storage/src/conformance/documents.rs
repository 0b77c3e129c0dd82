//! Reading documents: by FN and FD range, by register and time range, pages and their
//! cursors, and the register activity folded from stored documents.

use super::Harness;
use super::fixtures::{T0, append_ok, collect_pages, doc, fn_no, rnm, t};
use crate::error::StoreError;
use crate::model::{DocumentRecord, RegisterActivity, TelemetryRecord};
use crate::store::{PageRequest, RegisterFilter};

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
    s.settle().await.expect("settle");

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
    s.settle().await.expect("settle");

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
    s.settle().await.expect("settle");
    let got = s.get_activity(&r).await.expect("activity").expect("exists");
    assert_eq!(got, expected);
    assert_eq!(got.documents, 3);
    assert_eq!(got.flk_errors, 1);
    assert_eq!(got.last_fd, Some(3));

    // Across calls it keeps folding.
    let later = doc(f, 4, &r, t(40), 0);
    expected.absorb(&later);
    append_ok(&*s, vec![later]).await;
    s.settle().await.expect("settle");
    let r2 = rnm(2);
    let many = s.get_activities(&[r.clone(), r2.clone()]).await.expect("activities");
    assert_eq!(many, vec![(r, expected)], "missing registers are absent");
}
