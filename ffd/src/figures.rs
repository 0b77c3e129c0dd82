//! The figures of one document that revenue reports add up: its form, local time and
//! shift, a receipt's settlement kind (1054) and sums, its VAT per rate, and the counters
//! a shift-close report states. Read in one allocation-free walk of the container's TLVs
//! (no tree is built), because every stored document passes through it once.
//!
//! Which tags carry what:
//! * a receipt or BSO (forms 3, 4) and a correction receipt or BSO (31, 41): 1054 the
//!   settlement kind (1 sale, 2 sale return, 3 expense, 4 expense return), 1020 the total,
//!   1031 cash, 1081 cashless, 1215 prepayment, 1216 credit (postpayment), 1217
//!   counter-provision, VAT per rate as [`crate::vat`] describes it (flat tags 1102–1107
//!   and 1119 {1199 code, 1120 amount} entries inside 1115 for codes 7–12);
//! * every document: 1012 its date and time (local wall-clock time, no zone) and, in a
//!   shift, 1038 the shift number;
//! * a shift-close report (form 5): 1111 documents and 1118 receipts in the shift, and
//!   1194 the shift's counters: 1129–1132 per settlement kind and 1133 for corrections,
//!   each with 1135 the number of receipts (1134 in some corrections counters) and 1201
//!   the total.

use crate::container::CONTAINER_HEADER_LEN;
use crate::tlv::{decode_uint, read_tlv};
use crate::vat::RATES;

/// Number of VAT codes (tag 1199 values 1..=12).
pub const VAT_CODES: usize = 12;

/// Settlement kinds (1054 values 1..=4).
pub const KINDS: usize = 4;

/// Names of the settlement kinds, in 1054 order.
pub const KIND_NAMES: [&str; KINDS] = ["sale", "sale_return", "expense", "expense_return"];

/// Forms that are receipts (3 receipt, 4 BSO) or corrections (31, 41).
pub fn is_receipt_form(form: u8) -> bool {
    matches!(form, 3 | 4 | 31 | 41)
}

/// Whether a form is a correction receipt or correction BSO.
pub fn is_correction_form(form: u8) -> bool {
    matches!(form, 31 | 41)
}

/// Money a receipt states, in kopecks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Amounts {
    /// 1020.
    pub total: u64,
    /// 1031.
    pub cash: u64,
    /// 1081.
    pub cashless: u64,
    /// 1215.
    pub prepayment: u64,
    /// 1216.
    pub credit: u64,
    /// 1217.
    pub counter_provision: u64,
    /// VAT by 1199 code (index = code − 1); for 0 % and "not subject" the turnover.
    pub vat: [u64; VAT_CODES],
}

impl Amounts {
    /// Adds another receipt's amounts (saturating: sums never wrap).
    pub fn add(&mut self, o: &Amounts) {
        self.total = self.total.saturating_add(o.total);
        self.cash = self.cash.saturating_add(o.cash);
        self.cashless = self.cashless.saturating_add(o.cashless);
        self.prepayment = self.prepayment.saturating_add(o.prepayment);
        self.credit = self.credit.saturating_add(o.credit);
        self.counter_provision = self.counter_provision.saturating_add(o.counter_provision);
        for (a, b) in self.vat.iter_mut().zip(o.vat) {
            *a = a.saturating_add(b);
        }
    }

    /// The fields in a fixed order (total, cash, cashless, prepayment, credit,
    /// counter-provision, VAT 1..=12), for compact encodings and flat tables.
    pub fn fields(&self) -> [u64; 6 + VAT_CODES] {
        let mut f = [0u64; 6 + VAT_CODES];
        f[..6].copy_from_slice(&[
            self.total,
            self.cash,
            self.cashless,
            self.prepayment,
            self.credit,
            self.counter_provision,
        ]);
        f[6..].copy_from_slice(&self.vat);
        f
    }

    /// The inverse of [`Amounts::fields`].
    pub fn from_fields(f: &[u64; 6 + VAT_CODES]) -> Self {
        let mut vat = [0u64; VAT_CODES];
        vat.copy_from_slice(&f[6..]);
        Self { total: f[0], cash: f[1], cashless: f[2], prepayment: f[3], credit: f[4], counter_provision: f[5], vat }
    }

    /// Whether every field is zero.
    pub fn is_zero(&self) -> bool {
        self.fields().iter().all(|v| *v == 0)
    }
}

/// What a receipt contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiptFigures {
    /// A correction receipt (31, 41).
    pub correction: bool,
    /// 1054, when it is 1..=4.
    pub kind: Option<u8>,
    /// Its money.
    pub amounts: Amounts,
}

/// One kind's counters in a shift-close report (1129–1133).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KindCounter {
    /// 1135 (1134 where a counter states only that): receipts.
    pub count: u64,
    /// 1201: their total.
    pub total: u64,
}

/// What a shift-close report states about its shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ShiftCounters {
    /// 1111: documents in the shift.
    pub documents: Option<u32>,
    /// 1118: receipts (BSO) in the shift.
    pub receipts: Option<u32>,
    /// 1194 → 1129–1132, by settlement kind.
    pub kinds: [Option<KindCounter>; KINDS],
    /// 1194 → 1133: correction receipts.
    pub corrections: Option<KindCounter>,
}

/// The figures of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Figures {
    /// Form code (the outer STLV's tag).
    pub form: u16,
    /// 1012: local wall-clock time as Unix seconds.
    pub time: Option<u32>,
    /// 1038.
    pub shift: Option<u32>,
    /// For receipts and corrections.
    pub receipt: Option<ReceiptFigures>,
    /// For shift-close reports.
    pub shift_close: Option<ShiftCounters>,
}

/// Reads the figures of a stored container (header, document TLV, trailer). `None` when
/// the document cannot be read: too short, or a TLV that runs past its end.
pub fn figures(container: &[u8]) -> Option<Figures> {
    let data = container.get(CONTAINER_HEADER_LEN..)?;
    let (doc, _) = read_tlv(data, 0)?;
    let form = doc.tag;
    let mut f = Figures { form, ..Figures::default() };
    let receipt = u8::try_from(form).is_ok_and(is_receipt_form);
    let mut r = ReceiptFigures { correction: u8::try_from(form).is_ok_and(is_correction_form), ..Default::default() };
    let mut close = ShiftCounters::default();
    let mut pos = 0;
    while pos < doc.value.len() {
        let (t, next) = read_tlv(doc.value, pos)?;
        pos = next;
        let uint = |max| decode_uint(t.value, max);
        match t.tag {
            1012 => f.time = uint(4).and_then(|v| u32::try_from(v).ok()),
            1038 => f.shift = uint(4).and_then(|v| u32::try_from(v).ok()),
            1054 if receipt => r.kind = uint(1).and_then(|v| u8::try_from(v).ok()).filter(|k| (1..=4).contains(k)),
            1020 if receipt => r.amounts.total = uint(8)?,
            1031 if receipt => r.amounts.cash = uint(8)?,
            1081 if receipt => r.amounts.cashless = uint(8)?,
            1215 if receipt => r.amounts.prepayment = uint(8)?,
            1216 if receipt => r.amounts.credit = uint(8)?,
            1217 if receipt => r.amounts.counter_provision = uint(8)?,
            1115 if receipt => vat_entries(t.value, &mut r.amounts)?,
            1111 if form == 5 => close.documents = uint(4).and_then(|v| u32::try_from(v).ok()),
            1118 if form == 5 => close.receipts = uint(4).and_then(|v| u32::try_from(v).ok()),
            1194 if form == 5 => shift_totals(t.value, &mut close)?,
            tag @ 1102..=1107 if receipt => {
                if let Some(rate) = RATES.iter().find(|x| x.receipt_tag == Some(tag)) {
                    let slot = &mut r.amounts.vat[usize::from(rate.code) - 1];
                    *slot = slot.saturating_add(uint(8)?);
                }
            }
            _ => {}
        }
    }
    if receipt {
        f.receipt = Some(r);
    }
    if form == 5 {
        f.shift_close = Some(close);
    }
    Some(f)
}

/// 1115 {1119 {1199 code, 1120 amount}…}.
fn vat_entries(value: &[u8], a: &mut Amounts) -> Option<()> {
    let mut pos = 0;
    while pos < value.len() {
        let (entry, next) = read_tlv(value, pos)?;
        pos = next;
        if entry.tag != 1119 {
            continue;
        }
        let (mut code, mut amount) = (None, None);
        let mut p = 0;
        while p < entry.value.len() {
            let (c, n) = read_tlv(entry.value, p)?;
            p = n;
            match c.tag {
                1199 => code = decode_uint(c.value, 1),
                1120 => amount = decode_uint(c.value, 8),
                _ => {}
            }
        }
        let slot = code.and_then(|c| usize::try_from(c).ok()).filter(|c| (1..=VAT_CODES).contains(c));
        if let (Some(c), Some(amount)) = (slot, amount) {
            a.vat[c - 1] = a.vat[c - 1].saturating_add(amount);
        }
    }
    Some(())
}

/// 1194 {1129–1133 {1134/1135 count, 1201 total, …}}.
fn shift_totals(value: &[u8], c: &mut ShiftCounters) -> Option<()> {
    let mut pos = 0;
    while pos < value.len() {
        let (k, next) = read_tlv(value, pos)?;
        pos = next;
        if !(1129..=1133).contains(&k.tag) {
            continue;
        }
        let mut counter = KindCounter::default();
        let (mut n1135, mut n1134) = (None, None);
        let mut p = 0;
        while p < k.value.len() {
            let (x, n) = read_tlv(k.value, p)?;
            p = n;
            match x.tag {
                1135 => n1135 = decode_uint(x.value, 4),
                1134 => n1134 = decode_uint(x.value, 4),
                1201 => counter.total = decode_uint(x.value, 8)?,
                _ => {}
            }
        }
        counter.count = n1135.or(n1134).unwrap_or(0);
        match k.tag {
            1133 => c.corrections = Some(counter),
            t => c.kinds[usize::from(t - 1129)] = Some(counter),
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{self, Item, Receipt};
    use crate::testkit::identity;
    use crate::tlv::{FfdVersion, Fvln, TlvWriter};

    fn container(fd: u32, doc: &[u8]) -> Vec<u8> {
        let m = build::message(&identity(FfdVersion::V1_2), fd, doc);
        m[crate::session::SESSION_HEADER_LEN..].to_vec()
    }

    fn item(price: u64, vat: u8) -> Item {
        Item { name: "x".into(), price, quantity: Fvln { scale: 0, mantissa: 1 }, vat, subject: 1, method: 4 }
    }

    #[test]
    fn a_receipt_with_flat_and_container_vat() {
        let id = identity(FfdVersion::V1_2);
        let r = Receipt {
            operation: 1,
            items: vec![item(12_200, 11), item(10_000, 1), item(500, 6)],
            cash: 5_000,
            shift: 7,
            number: 3,
            taxation: 1,
        };
        let f = figures(&container(9, &build::receipt(&id, 9, 1_700_000_000, &r))).expect("readable");
        assert_eq!(f.form, 3);
        assert_eq!(f.time, Some(1_700_000_000));
        assert_eq!(f.shift, Some(7));
        let rf = f.receipt.expect("receipt");
        assert!(!rf.correction);
        assert_eq!(rf.kind, Some(1));
        assert_eq!(rf.amounts.total, 22_700);
        assert_eq!(rf.amounts.cash, 5_000);
        assert_eq!(rf.amounts.cashless, 17_700);
        assert_eq!(rf.amounts.vat[0], 1_667); // 20 % contained in 100.00
        assert_eq!(rf.amounts.vat[5], 500); // not subject: the turnover
        assert_eq!(rf.amounts.vat[10], 2_200); // 22 %, stated in 1115/1119
    }

    #[test]
    fn prepayment_credit_and_counter_provision() {
        let mut w = TlvWriter::new();
        w.begin(3).u32(1038, 2).byte(1054, 3).vln(1020, 10_000).vln(1031, 1_000).vln(1081, 2_000);
        w.vln(1215, 3_000).vln(1216, 2_500).vln(1217, 1_500).vln(1105, 10_000);
        w.end();
        let f = figures(&container(11, &w.finish())).expect("readable");
        let a = f.receipt.expect("receipt").amounts;
        assert_eq!(
            (a.total, a.cash, a.cashless, a.prepayment, a.credit, a.counter_provision),
            (10_000, 1_000, 2_000, 3_000, 2_500, 1_500)
        );
        assert_eq!(a.vat[5], 10_000);
        assert_eq!(f.receipt.and_then(|r| r.kind), Some(3));
    }

    #[test]
    fn shift_close_counters() {
        let mut w = TlvWriter::new();
        w.begin(5).u32(1038, 4).u32(1111, 12).u32(1118, 9).begin(1194);
        w.begin(1129).u32(1135, 7).vln(1201, 70_000).end();
        w.begin(1130).u32(1135, 1).vln(1201, 500).end();
        w.begin(1133).u32(1134, 1).vln(1201, 100).end();
        w.end().end();
        let f = figures(&container(20, &w.finish())).expect("readable");
        let c = f.shift_close.expect("close");
        assert_eq!((c.documents, c.receipts), (Some(12), Some(9)));
        assert_eq!(c.kinds[0], Some(KindCounter { count: 7, total: 70_000 }));
        assert_eq!(c.kinds[1], Some(KindCounter { count: 1, total: 500 }));
        assert_eq!(c.kinds[2], None);
        assert_eq!(c.corrections, Some(KindCounter { count: 1, total: 100 }));
        assert!(f.receipt.is_none());
    }

    #[test]
    fn truncation_is_unreadable_never_a_panic() {
        let id = identity(FfdVersion::V1_2);
        let r = Receipt { operation: 2, items: vec![item(100, 1)], cash: 0, shift: 1, number: 1, taxation: 1 };
        let c = container(9, &build::receipt(&id, 9, 1_700_000_000, &r));
        for cut in 0..c.len() {
            let f = figures(&c[..cut]);
            if cut <= CONTAINER_HEADER_LEN + 4 {
                assert!(f.is_none(), "cut at {cut}");
            }
        }
        assert_eq!(figures(&c).and_then(|f| f.receipt).and_then(|r| r.kind), Some(2));
    }
}
