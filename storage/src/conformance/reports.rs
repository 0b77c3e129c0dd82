//! Reports: every aggregate a backend derives (totals by bucket, shifts, FD continuity,
//! the fleet-wide list of FNs with holes) equals a recomputation from the documents it
//! stores — after random loads with retransmissions, conflicting copies, holes filled
//! late and a reopen — and a small hand-computed set.

use ffd::FnNumber;
use ffd::build::{self, Correction, Identity, Item, Receipt, ReceiptExtras};
use ffd::tlv::{Fvln, TlvWriter};

use super::Harness;
use super::fixtures::{T0, append_ok, collect_pages, fiscal_identity, fiscal_record, fn_no, rnm};
use crate::ids::{Rnm, Timestamp};
use crate::model::{Bucket, Continuity, DocumentRecord, Recomputed, ShiftSummary};
use crate::store::Store;

/// Local day of the fixtures' epoch (2023-11-14).
fn day0() -> i32 {
    Bucket::day_of_local(T0 / 1000)
}

fn item(price: u64, vat: u8) -> Item {
    Item { name: "item".into(), price, quantity: Fvln { scale: 0, mantissa: 1 }, vat, subject: 1, method: 4 }
}

fn receipt(operation: u8, shift: u32, items: Vec<Item>, cash: u64) -> Receipt {
    Receipt { operation, items, cash, shift, number: 1, taxation: 1 }
}

fn close_shift(
    shift: u32,
    documents: u32,
    receipts: u32,
    sales: Option<(u32, u64)>,
) -> impl Fn(&Identity, u32, u32) -> Vec<u8> {
    move |id, fd, time| {
        let mut w = TlvWriter::new();
        w.begin(5);
        w.raw(1041, id.fn_number.as_bytes()).padded(1037, &id.rnm, 20).u32(1040, fd).time(1012, time);
        w.u32(1038, shift).u32(1111, documents).u32(1118, receipts);
        if let Some((n, total)) = sales {
            w.begin(1194).begin(1129).u32(1135, n).vln(1201, total).end().end();
        }
        w.end();
        w.finish()
    }
}

/// A tiny deterministic generator (splitmix64), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One random document of `fd` (of a random form), at a local time around the epoch.
fn random_doc(rng: &mut Rng, id: &Identity, r: &Rnm, fd: u32, variant: u64) -> DocumentRecord {
    let time = u32::try_from(T0 / 1000 + i64::from(fd) * 1800).expect("time fits") + (variant % 7) as u32;
    let at = Timestamp(T0 + i64::from(fd) * 1_000 + variant as i64);
    let shift = 1 + fd / 10;
    let items: Vec<Item> =
        (0..1 + rng.below(3)).map(|_| item(100 + rng.below(100_000), 1 + rng.below(12) as u8)).collect();
    let total: u64 = items.iter().map(Item::sum).sum();
    let cash = rng.below(total + 1);
    let op = 1 + rng.below(4) as u8;
    let tlv = match rng.below(12) {
        0 => build::open_shift(id, fd, time, shift),
        1 => close_shift(shift, 10, rng.below(10) as u32, Some((rng.below(5) as u32, rng.below(9_999))))(id, fd, time),
        2 => {
            let x = ReceiptExtras {
                correction: Some(Correction { kind: 0, date: time, order: String::new() }),
                ..ReceiptExtras::default()
            };
            build::receipt_with(id, fd, time, &receipt(op, shift, items, cash), &x)
        }
        3 => {
            // an encrypted body: stored verbatim, no readable time
            let mut d =
                fiscal_record(id, r, fd, &build::receipt(id, fd, time, &receipt(op, shift, items, cash)), time, at);
            d.opaque = true;
            d.doc_time = None;
            return d;
        }
        _ => build::receipt(id, fd, time, &receipt(op, shift, items, cash)),
    };
    fiscal_record(id, r, fd, &tlv, time, at)
}

/// Continuity without the hole times (they depend on the order documents arrived in):
/// low, high, received, holes.
type Shape = (Option<u32>, Option<u32>, u64, Vec<(u32, u32)>);

fn shape(c: &Continuity) -> Shape {
    (c.low, c.high, c.received, c.holes.iter().map(|h| (h.from, h.to)).collect())
}

/// Compares every aggregate of `fns` (totals of the days around the fixtures' epoch, or around
/// the documents' own days when they are elsewhere; shifts,
/// continuity, the FNs with holes among them) with a recomputation from the stored
/// documents, after `settle`. Shared with backend-specific report tests.
pub async fn check_reports(s: &dyn Store, fns: &[FnNumber], context: &str) {
    s.settle().await.expect("settle");
    let mut gapped_expected = Vec::new();
    for f in fns {
        let docs = collect_pages(100, |p| s.documents_by_fn(f, 0..=u32::MAX, p)).await;
        let mut want = Recomputed::default();
        for d in &docs {
            want.fold(d);
        }
        // the days around the fixtures' epoch; documents of other days (a gateway test's
        // receipts of today) are looked for around their own days
        let own = want.buckets.keys().filter_map(|b| match b {
            Bucket::Day(d) => Some(*d),
            Bucket::UtcHour(_) => None,
        });
        let days = match (own.clone().min(), own.max()) {
            (Some(lo), Some(hi)) if lo < day0() - 40 || hi > day0() + 40 => lo - 1..=hi + 1,
            _ => day0() - 40..=day0() + 40,
        };
        let got: std::collections::BTreeMap<Bucket, _> = s
            .report_totals(&[*f], days)
            .await
            .expect("report totals")
            .into_iter()
            .map(|b| {
                assert_eq!(b.fn_number, *f, "{context}: a row of another FN");
                (b.bucket, b.totals)
            })
            .collect();
        assert_eq!(got, want.buckets, "{context}: totals of {f}");
        let shifts: Vec<ShiftSummary> = collect_pages(7, |p| s.shifts(f, 0..=u32::MAX, p)).await;
        let want_shifts: Vec<ShiftSummary> = want.shifts.values().cloned().collect();
        assert_eq!(shifts, want_shifts, "{context}: shifts of {f}");
        let cont = s.continuity(&[*f]).await.expect("continuity");
        if docs.is_empty() {
            assert!(cont.is_empty(), "{context}: continuity of an FN without documents");
            continue;
        }
        assert_eq!(cont.len(), 1, "{context}: one continuity for {f}");
        assert_eq!(shape(&cont[0].continuity), shape(&want.continuity), "{context}: continuity of {f}");
        assert_eq!(cont[0].rnm, docs[0].rnm, "{context}: register of {f}");
        if want.continuity.missing() > 0 {
            gapped_expected.push(*f);
        }
    }
    let gapped: Vec<FnNumber> = collect_pages(2, |p| s.gapped_fns(p))
        .await
        .into_iter()
        .map(|c| c.fn_number)
        .filter(|f| fns.contains(f))
        .collect();
    gapped_expected.sort();
    assert_eq!(gapped, gapped_expected, "{context}: FNs with holes");
}

/// Random loads with retransmissions, conflicting copies and holes; checked, reopened,
/// the holes partly filled, checked again.
pub async fn reports_equal_a_recomputation(h: &dyn Harness) {
    for seed in 1..=3u64 {
        let mut rng = Rng(seed);
        let mut s = h.fresh().await;
        let fns: Vec<FnNumber> = (0..3).map(|i| fn_no(500 + seed * 10 + i)).collect();
        let regs: Vec<Rnm> = (0..3).map(|i| rnm(500 + seed * 10 + i)).collect();
        let mut later = Vec::new();
        let mut batch = Vec::new();
        for (i, f) in fns.iter().enumerate() {
            let id = fiscal_identity(*f, &regs[i]);
            let mut fds: Vec<u32> = (1..=30).collect();
            // shuffle
            for j in (1..fds.len()).rev() {
                fds.swap(j, rng.below(j as u64 + 1) as usize);
            }
            for fd in fds {
                let d = random_doc(&mut rng, &id, &regs[i], fd, 0);
                match rng.below(10) {
                    0 => later.push(d), // a hole, filled after the reopen
                    1 => {
                        batch.push(d.clone());
                        batch.push(d); // retransmitted in the same batch
                    }
                    2 => {
                        batch.push(d);
                        batch.push(random_doc(&mut rng, &id, &regs[i], fd, 1)); // a conflicting copy
                    }
                    _ => batch.push(d),
                }
                if batch.len() > rng.below(6) as usize {
                    append_ok(s.as_ref(), std::mem::take(&mut batch)).await;
                }
            }
        }
        append_ok(s.as_ref(), std::mem::take(&mut batch)).await;
        check_reports(s.as_ref(), &fns, &format!("seed {seed}")).await;
        if let Some(reopened) = h.reopen(s.clone()).await {
            s = reopened;
            check_reports(s.as_ref(), &fns, &format!("seed {seed}, reopened")).await;
        }
        // fill half of the holes, retransmit some of what was stored
        let fill: Vec<DocumentRecord> = later.iter().step_by(2).cloned().collect();
        append_ok(s.as_ref(), fill.clone()).await;
        append_ok(s.as_ref(), fill).await;
        check_reports(s.as_ref(), &fns, &format!("seed {seed}, holes filled")).await;
    }
}

/// A hand-computed shift that crosses local midnight, with a missing document and a close
/// report that counts one receipt more than was received; then the missing one arrives.
pub async fn reports_hand_computed_shift_and_hole(h: &dyn Harness) {
    let s = h.fresh().await;
    let (f, r) = (fn_no(610), rnm(610));
    let id = fiscal_identity(f, &r);
    let d0 = i64::from(day0()) * 86_400;
    let local = |h: i64, m: i64| u32::try_from(d0 + h * 3600 + m * 60).expect("fits");
    let at = |n: i64| Timestamp(T0 + n * 60_000);
    let docs = vec![
        fiscal_record(&id, &r, 1, &build::open_shift(&id, 1, local(23, 0), 7), local(23, 0), at(1)),
        // a sale of 100.00 at 20 %: 40.00 cash, 60.00 cashless; VAT 16.67
        fiscal_record(
            &id,
            &r,
            2,
            &build::receipt(&id, 2, local(23, 30), &receipt(1, 7, vec![item(10_000, 1)], 4_000)),
            local(23, 30),
            at(2),
        ),
        // FD 3 is missing
        // after midnight: a sale return of 30.00 at 10 %, cashless; VAT 2.73
        fiscal_record(
            &id,
            &r,
            4,
            &build::receipt(&id, 4, local(24, 10), &receipt(2, 7, vec![item(3_000, 2)], 0)),
            local(24, 10),
            at(4),
        ),
        // a correction of a sale, 5.00 cash, not subject to VAT (the turnover is stated)
        fiscal_record(
            &id,
            &r,
            5,
            &build::receipt_with(
                &id,
                5,
                local(24, 20),
                &receipt(1, 7, vec![item(500, 6)], 500),
                &ReceiptExtras {
                    correction: Some(Correction { kind: 0, date: local(23, 30), order: String::new() }),
                    ..ReceiptExtras::default()
                },
            ),
            local(24, 20),
            at(5),
        ),
        // the close report counts 6 documents and 4 receipts (3 received), 2 sales of 102.00
        fiscal_record(
            &id,
            &r,
            6,
            &close_shift(7, 6, 4, Some((2, 10_200)))(&id, 6, local(24, 30)),
            local(24, 30),
            at(6),
        ),
    ];
    append_ok(s.as_ref(), docs.clone()).await;
    append_ok(s.as_ref(), docs[1..3].to_vec()).await; // retransmissions change nothing
    s.settle().await.expect("settle");

    let rows = s.report_totals(&[f], day0()..=day0() + 1).await.expect("totals");
    assert_eq!(rows.len(), 2, "two local days: {rows:?}");
    let (first, second) = (&rows[0].totals, &rows[1].totals);
    assert_eq!(rows[0].bucket, Bucket::Day(day0()));
    assert_eq!((first.documents, first.unreadable), (2, 0));
    let sale = &first.kinds[0];
    assert_eq!((sale.count, sale.amounts.total, sale.amounts.cash, sale.amounts.cashless), (1, 10_000, 4_000, 6_000));
    assert_eq!(sale.amounts.vat[0], 1_667);
    assert_eq!(rows[1].bucket, Bucket::Day(day0() + 1));
    assert_eq!(second.documents, 3);
    let ret = &second.kinds[1];
    assert_eq!((ret.count, ret.amounts.total, ret.amounts.cashless, ret.amounts.vat[1]), (1, 3_000, 3_000, 273));
    let corr = &second.corrections[0];
    assert_eq!((corr.count, corr.amounts.total, corr.amounts.cash, corr.amounts.vat[5]), (1, 500, 500, 500));
    assert_eq!(second.kinds[0].count, 0, "the correction is not a sale");

    let shifts = s.shifts(&f, 0..=u32::MAX, crate::store::PageRequest::first(10)).await.expect("shifts").items;
    assert_eq!(shifts.len(), 1);
    let sh = &shifts[0];
    assert_eq!((sh.shift, sh.opened_fd, sh.closed_fd, sh.received.documents), (7, Some(1), Some(6), 5));
    let c = sh.check();
    assert_eq!((c.missing_documents, c.receipts_difference), (Some(1), Some(1)));
    assert_eq!(c.kinds_differing, vec!["sale".to_owned()], "one sale is missing: {c:?}");
    assert!(c.mismatch);
    let cont = s.continuity(&[f]).await.expect("continuity");
    assert_eq!(shape(&cont[0].continuity), (Some(1), Some(6), 5, vec![(3, 3)]));
    assert_eq!(cont[0].continuity.holes[0].since, at(4), "known missing since FD 4 arrived");
    let gapped = s.gapped_fns(crate::store::PageRequest::first(10)).await.expect("gapped").items;
    assert_eq!(gapped.iter().map(|c| c.fn_number).collect::<Vec<_>>(), vec![f]);

    // FD 3 arrives: a second receipt of the shift, before midnight
    let late = fiscal_record(
        &id,
        &r,
        3,
        &build::receipt(&id, 3, local(23, 40), &receipt(1, 7, vec![item(200, 6)], 200)),
        local(23, 40),
        at(9),
    );
    append_ok(s.as_ref(), vec![late]).await;
    s.settle().await.expect("settle");
    let sh = s.shifts(&f, 7..=7, crate::store::PageRequest::first(10)).await.expect("shifts").items.remove(0);
    let c = sh.check();
    assert_eq!((c.missing_documents, c.receipts_difference, c.mismatch), (Some(0), Some(0), false), "{c:?}");
    assert!(s.gapped_fns(crate::store::PageRequest::first(10)).await.expect("gapped").items.is_empty());
    let rows = s.report_totals(&[f], day0()..=day0()).await.expect("totals");
    assert_eq!((rows[0].totals.kinds[0].count, rows[0].totals.kinds[0].amounts.total), (2, 10_200));
    assert_eq!(rows[0].totals.kinds[0].amounts.vat[5], 200);
}
