//! A load for the report aggregates of a store, built with `ffd::build` (receipts of every
//! settlement kind, shift open and close reports, an encrypted-looking document without
//! a time, retransmissions, a conflicting copy under a used FD, missing FDs), and the
//! check of every aggregate against `Recomputed` from `documents_by_fn`.

use ffd::FnNumber;
use ffd::build::{self, DriveReport, Item, Receipt};
use ffd::tlv::Fvln;
use storage::Store;
use storage::conformance::check_reports;
use storage::conformance::fixtures::{fiscal_identity, fiscal_record, fn_no, rnm};
use storage::ids::Timestamp;
use storage::model::{Bucket, DocumentRecord};

/// 2023-11-14 12:00 local time (1012 is local time as Unix seconds).
pub const LOCAL_T0: u32 = 1_699_963_200;

/// The document an FN's register makes as its `fd`-th: shift 1 opens at FD 1 and closes at
/// FD 10, shift 2 opens at FD 11 the next day; receipts of the four settlement kinds in
/// between; FD 12 carries no readable time (as an encrypted body would). `variant` changes
/// the receipt's amount (a conflicting copy).
pub fn fiscal_doc(n: u64, fd: u32, received_ms: i64, variant: u64) -> DocumentRecord {
    let (f, r) = (fn_no(n), rnm(n));
    let id = fiscal_identity(f, &r);
    let day = if fd >= 11 { 86_400 } else { 0 };
    let time = LOCAL_T0 + day + fd * 60;
    let shift = if fd >= 11 { 2 } else { 1 };
    let tlv = match fd {
        1 | 11 => build::open_shift(&id, fd, time, shift),
        10 => build::close_shift(
            &id,
            fd,
            time,
            &DriveReport {
                shift,
                documents_in_shift: 10,
                receipts_in_shift: 8,
                unsent_documents: 0,
                first_unsent_time: 0,
                first_unsent_fd: 0,
                warnings: 0,
                key_resource_days: 300,
            },
        ),
        _ => {
            let item = Item {
                name: "Milk".into(),
                price: 10_000 + u64::from(fd) * 100 + variant,
                quantity: Fvln { scale: 0, mantissa: 1 },
                vat: 1,
                subject: 1,
                method: 4,
            };
            let receipt = Receipt {
                operation: u8::try_from(1 + fd % 4).unwrap_or(1),
                items: vec![item],
                cash: 5_000,
                shift,
                number: fd,
                taxation: 1,
            };
            build::receipt(&id, fd, time, &receipt)
        }
    };
    // the amount of a receipt differs with `variant`: a conflicting copy
    let mut d = fiscal_record(&id, &r, fd, &tlv, time, Timestamp(received_ms));
    if fd == 12 {
        // stored verbatim, figures unreadable: bucketed by the hour received
        d.opaque = true;
        d.doc_time = None;
    }
    d
}

/// The whole load, in append batches: FN 1 has FDs 1–14 but 7 (missing) with FD 3 sent
/// twice and a conflicting copy of FD 4; FN 2 has 1, 2, 4 (3 missing until `late`);
/// FN 3 has 1–12 in reverse order. Times are received times in ms around `t0_ms`.
pub fn load(t0_ms: i64) -> Vec<Vec<DocumentRecord>> {
    let at = |i: i64| t0_ms + i * 1000;
    let mut batches = Vec::new();
    let one: Vec<u32> = (1..=14).filter(|fd| *fd != 7).collect();
    batches.push(one[..6].iter().map(|fd| fiscal_doc(1, *fd, at(i64::from(*fd)), 0)).collect());
    batches.push(vec![fiscal_doc(1, 3, at(100), 0), fiscal_doc(1, 4, at(101), 7)]);
    batches.push(one[6..].iter().map(|fd| fiscal_doc(1, *fd, at(i64::from(*fd)), 0)).collect());
    batches.push([1u32, 2, 4].iter().map(|fd| fiscal_doc(2, *fd, at(i64::from(*fd)), 0)).collect());
    batches.push((1..=12u32).rev().map(|fd| fiscal_doc(3, fd, at(i64::from(fd)), 0)).collect());
    batches.push(vec![fiscal_doc(3, 5, at(200), 0), fiscal_doc(2, 1, at(201), 0)]);
    batches
}

/// The document that fills FN 2's hole.
pub fn late(t0_ms: i64) -> DocumentRecord {
    fiscal_doc(2, 3, t0_ms + 300_000, 0)
}

/// FNs of the load.
pub fn fns() -> Vec<FnNumber> {
    (1..=3).map(fn_no).collect()
}

/// Every aggregate of the load's FNs equals the recomputation from the stored documents
/// (the conformance suite's comparison), and the edge cases of the reads hold.
pub async fn check(s: &dyn Store, what: &str) {
    let fns = fns();
    check_reports(s, &fns, what).await;
    // an FN asked twice is answered once; an FN with nothing received is absent
    let days = Bucket::day_of_local(i64::from(LOCAL_T0)) - 2..=Bucket::day_of_local(i64::from(LOCAL_T0)) + 2;
    let once = s.report_totals(&fns[..1], days.clone()).await.expect("totals");
    let twice = s.report_totals(&[fns[0], fns[0]], days).await.expect("totals");
    assert!(!once.is_empty(), "{what}: the first FN has totals");
    assert_eq!(once, twice, "{what}: an FN asked twice");
    let none = s.continuity(&[fn_no(99)]).await.expect("continuity");
    assert!(none.is_empty(), "{what}: an FN with nothing received is absent");
    #[allow(clippy::reversed_empty_ranges, reason = "an empty range of days is asked on purpose")]
    let empty = 5..=4;
    assert!(s.report_totals(&fns, empty).await.expect("empty range").is_empty(), "{what}");
}
