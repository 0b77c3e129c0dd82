//! A load for the report aggregates of a store, built with `ffd::build` (receipts of every
//! settlement kind, shift open and close reports, an encrypted-looking document without
//! a time, retransmissions, a conflicting copy under a used FD, missing FDs), and the
//! check of every aggregate against `Recomputed` from `documents_by_fn`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use ffd::FnNumber;
use ffd::build::{self, DriveReport, Identity, Item, Receipt};
use ffd::tlv::{FfdVersion, Fvln};
use storage::Store;
use storage::conformance::fixtures::{collect_pages, doc, fn_no, rnm};
use storage::ids::{Rnm, Timestamp};
use storage::model::{Bucket, DocumentRecord, Recomputed};

/// 2023-11-14 12:00 local time (1012 is local time as Unix seconds).
pub const LOCAL_T0: u32 = 1_699_963_200;

fn identity(f: FnNumber, r: &Rnm) -> Identity {
    Identity {
        fn_number: f,
        rnm: r.as_str().to_owned(),
        user_inn: "7702203276".into(),
        kkt_serial: "000000000002".into(),
        ofd_inn: "7704211201".into(),
        user_name: "Shop".into(),
        address: "Moscow".into(),
        place: "Shop 1".into(),
        cashier: "Cashier".into(),
        ffd: FfdVersion::V1_2,
    }
}

/// The document an FN's register makes as its `fd`-th: shift 1 opens at FD 1 and closes at
/// FD 10, shift 2 opens at FD 11 the next day; receipts of the four settlement kinds in
/// between; FD 12 carries no readable time (as an encrypted body would). `variant` changes
/// the receipt's amount (a conflicting copy).
pub fn fiscal_doc(n: u64, fd: u32, received_ms: i64, variant: u64) -> DocumentRecord {
    let (f, r) = (fn_no(n), rnm(n));
    let id = identity(f, &r);
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
    let message = build::message(&id, fd, &tlv);
    let raw = Bytes::copy_from_slice(&message[ffd::session::SESSION_HEADER_LEN..]);
    let mut d = doc(f, fd, &r, Timestamp(received_ms), u8::try_from(variant % 200).unwrap_or(0));
    d.doc_type = tlv[0];
    d.raw = raw;
    d.doc_time = Some(Timestamp::from_unix_secs(i64::from(time)));
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

async fn recompute(s: &dyn Store, f: FnNumber) -> Recomputed {
    let docs = collect_pages(7, |p| s.documents_by_fn(&f, 0..=u32::MAX, p)).await;
    let mut r = Recomputed::default();
    for d in &docs {
        r.fold(d);
    }
    r
}

/// Every aggregate of the load's FNs equals the recomputation from the stored documents.
pub async fn check(s: &dyn Store, what: &str) {
    let fns = fns();
    let mut gapped_want = BTreeSet::new();
    let conts = s.continuity(&fns).await.expect("continuity");
    assert_eq!(conts.len(), fns.len(), "{what}: every FN has a continuity");
    for f in &fns {
        let want = recompute(s, *f).await;
        assert!(want.continuity.received > 0, "{what}: documents of {f}");
        let got = conts.iter().find(|c| c.fn_number == *f).expect("continuity of the FN");
        let c = &got.continuity;
        let spans = |c: &storage::model::Continuity| c.holes.iter().map(|h| (h.from, h.to)).collect::<Vec<_>>();
        assert_eq!(
            (c.low, c.high, c.received, spans(c), c.forgotten),
            (
                want.continuity.low,
                want.continuity.high,
                want.continuity.received,
                spans(&want.continuity),
                want.continuity.forgotten
            ),
            "{what}: continuity of {f}"
        );
        if want.continuity.missing() > 0 {
            gapped_want.insert(*f);
        }
        let days = want.buckets.keys().filter_map(|b| match b {
            Bucket::Day(d) => Some(*d),
            Bucket::UtcHour(_) => None,
        });
        let (lo, hi) = (days.clone().min().expect("a dated bucket"), days.max().expect("a dated bucket"));
        let got: BTreeMap<Bucket, _> = s
            .report_totals(&[*f, *f], lo..=hi)
            .await
            .expect("totals")
            .into_iter()
            .map(|b| {
                assert_eq!(b.fn_number, *f, "{what}");
                (b.bucket, b.totals)
            })
            .collect();
        assert_eq!(got, want.buckets, "{what}: totals of {f}");
        let shifts = collect_pages(1, |p| s.shifts(f, 0..=u32::MAX, p)).await;
        let want_shifts: Vec<_> = want.shifts.values().cloned().collect();
        assert_eq!(shifts, want_shifts, "{what}: shifts of {f}");
    }
    let gapped: BTreeSet<FnNumber> =
        collect_pages(1, |p| s.gapped_fns(p)).await.into_iter().map(|c| c.fn_number).collect();
    assert_eq!(gapped, gapped_want, "{what}: FNs with gaps");
    let none = s.continuity(&[fn_no(99)]).await.expect("continuity");
    assert!(none.is_empty(), "{what}: an FN with nothing received is absent");
    #[allow(clippy::reversed_empty_ranges, reason = "an empty range of days is asked on purpose")]
    let empty = 5..=4;
    assert!(s.report_totals(&fns, empty).await.expect("empty range").is_empty(), "{what}");
}
