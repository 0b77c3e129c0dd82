//! Receipts with the FFD 1.2 requisites a plain receipt leaves out, correction receipts,
//! and the rarer forms: FN close (6) and registration change (11).

use super::{DriveReport, Identity, Receipt, common, vat_totals};
use crate::tlv::{FfdVersion, TlvWriter};

/// A marking code on a receipt line (FFD 1.2): the product-code tag inside 1163 (1300–1325,
/// e.g. 1305 for GS1.M) and the code as printed on the pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// Index of the item in [`Receipt::items`].
    pub item: usize,
    /// Product-code tag (1300–1325).
    pub tag: u16,
    /// The code.
    pub code: String,
}

/// The basis of a correction receipt (form 31): 1173 and 1174 {1178, 1179}.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// 1173: 0 on the user's own initiative, 1 by an order of the tax authority.
    pub kind: u8,
    /// 1178: date of the corrected settlement (Unix seconds, local).
    pub date: u32,
    /// 1179: number of the tax authority's order (empty on own initiative).
    pub order: String,
}

/// Optional requisites of a receipt. The default adds nothing: [`receipt_with`] with it
/// builds exactly what [`super::receipt`] builds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptExtras {
    /// A correction receipt (form 31) instead of a receipt (form 3).
    pub correction: Option<Correction>,
    /// Marking codes (1163 in the item, with 2102 and 2106; 2107 on the receipt).
    pub marks: Vec<Mark>,
    /// 1084 {1085 name, 1086 value}: the user's additional requisite.
    pub property: Option<(String, String)>,
    /// 1008: the buyer's phone or e-mail.
    pub buyer_contact: Option<String>,
    /// 1256 {1227 name, 1228 INN}: the buyer (FFD 1.2).
    pub buyer: Option<(String, String)>,
    /// 1260 {1262, 1263, 1264, 1265} on one item: an industry requisite.
    pub industry: Option<(usize, [String; 4])>,
    /// 1234 {1235 {1082 sum, 1236 kind, 1237 ids}…}: cashless payment details (FFD 1.2).
    pub cashless: Vec<(u64, u8, String)>,
    /// 1125 = 1: the settlement was made on the Internet (FFD 1.2).
    pub internet: bool,
}

/// A receipt (form 3), or a correction receipt (form 31) when `x.correction` is set.
pub fn receipt_with(id: &Identity, fd: u32, time: u32, r: &Receipt, x: &ReceiptExtras) -> Vec<u8> {
    let total = r.total();
    let mut w = TlvWriter::new();
    w.begin(if x.correction.is_some() { 31 } else { 3 });
    common(&mut w, id, fd, time, total);
    w.u32(1038, r.shift).u32(1042, r.number).byte(1054, r.operation).byte(1055, r.taxation);
    if let Some(c) = &x.correction {
        w.byte(1173, c.kind).begin(1174).time(1178, c.date).string(1179, &c.order).end();
    }
    if let Some(contact) = &x.buyer_contact {
        w.string(1008, contact);
    }
    for (i, item) in r.items.iter().enumerate() {
        w.begin(1059)
            .string(1030, &item.name)
            .vln(1079, item.price)
            .fvln(1023, item.quantity)
            .vln(1043, item.sum())
            .byte(1199, item.vat);
        if id.ffd >= FfdVersion::V1_05 {
            w.byte(1212, item.subject).byte(1214, item.method);
        }
        if id.ffd >= FfdVersion::V1_1 {
            w.vln(1200, item.vat_amount());
        }
        if id.ffd >= FfdVersion::V1_2 {
            w.byte(2108, 0);
            for m in x.marks.iter().filter(|m| m.item == i) {
                w.begin(1163).string(m.tag, &m.code).end().byte(2102, 0).byte(2106, 15);
            }
            if let Some((_, [foiv, date, number, value])) = x.industry.as_ref().filter(|(at, _)| *at == i) {
                w.begin(1260).string(1262, foiv).string(1263, date).string(1264, number).string(1265, value).end();
            }
        }
        w.end();
    }
    let cash = r.cash.min(total);
    w.vln(1020, total).vln(1031, cash).vln(1081, total - cash);
    if id.ffd >= FfdVersion::V1_05 {
        w.vln(1215, 0).vln(1216, 0).vln(1217, 0);
    }
    vat_totals(&mut w, id, &r.items);
    if let Some((name, value)) = &x.property {
        w.begin(1084).string(1085, name).string(1086, value).end();
    }
    if id.ffd >= FfdVersion::V1_2 {
        if !x.marks.is_empty() {
            w.byte(2107, 0);
        }
        if let Some((name, inn)) = &x.buyer {
            w.begin(1256).string(1227, name).padded(1228, inn, 12).end();
        }
        if !x.cashless.is_empty() {
            w.begin(1234);
            for (sum, kind, ids) in &x.cashless {
                w.begin(1235).vln(1082, *sum).byte(1236, *kind).string(1237, ids).end();
            }
            w.end();
        }
        if x.internet {
            w.byte(1125, 1);
        }
    }
    w.end();
    w.finish()
}

/// A report on closing the fiscal drive (form 6): the drive's state at closing.
pub fn close_archive(id: &Identity, fd: u32, time: u32, d: &DriveReport) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.begin(6);
    common(&mut w, id, fd, time, 0);
    w.u32(1038, d.shift).u32(1097, d.unsent_documents);
    if d.first_unsent_time != 0 {
        w.time(1098, d.first_unsent_time);
    }
    w.end();
    w.finish()
}

/// A report on changing the registration (form 11) for the given reasons: 1101 codes for
/// FFD 1.05, the 1205 bit mask from FFD 1.1 on.
pub fn registration_change(id: &Identity, fd: u32, time: u32, reasons: u32) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.begin(11);
    common(&mut w, id, fd, time, 0);
    w.string(1013, &id.kkt_serial).padded(1017, &id.ofd_inn, 12).byte(1056, 0).byte(1062, 1);
    if id.ffd >= FfdVersion::V1_1 {
        w.u32(1205, reasons);
    } else {
        for bit in 0..8u8 {
            if reasons & (1 << bit) != 0 {
                w.byte(1101, bit + 1);
            }
        }
    }
    if id.ffd >= FfdVersion::V1_05 {
        w.byte(1189, id.ffd.tag_value()).byte(1190, id.ffd.tag_value()).string(1188, "1.0");
    }
    w.end();
    w.finish()
}
