//! Builders for realistic fiscal documents and whole register messages: registration
//! reports, shift open/close reports, state reports and receipts (items, VAT, cash and
//! card payments, returns) for FFD 1.05, 1.1 and 1.2. Used by the load generator and by
//! tests on both sides of the wire.
//!
//! The fiscal sign (1077) and the message trailer are produced by a real FN with keys we
//! do not have; [`fake_fiscal_sign`] stands in for it with the same shape (`21 04` + 4
//! bytes), deterministic in its inputs.
//!
//! [`receipt_with`] adds the FFD 1.2 requisites a plain [`receipt`] leaves out (marking
//! codes, correction data, buyer, cashless payment details, …); [`forms`] has the rarer
//! forms (FN close, registration change).

mod forms;

use bytes::Bytes;

use crate::container::{ContainerSpec, MSG_FROM_FN};
use crate::fn_number::FnNumber;
use crate::session::{SESSION_HEADER_LEN, SessionHeader, p_version_for};
use crate::tlv::{FfdVersion, Fvln, TlvWriter};
use crate::vat::{RATES, rate_of};

pub use forms::{Correction, Mark, ReceiptExtras, close_archive, receipt_with, registration_change};

/// Who is sending: the identity a register stamps on its documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// FN number.
    pub fn_number: FnNumber,
    /// Registration number (RNM), 16 digits.
    pub rnm: String,
    /// Owner (user) INN.
    pub user_inn: String,
    /// KKT serial number (1013).
    pub kkt_serial: String,
    /// Operator INN (1017).
    pub ofd_inn: String,
    /// Owner name (1048).
    pub user_name: String,
    /// Address (1009).
    pub address: String,
    /// Place of settlement (1187).
    pub place: String,
    /// Cashier (1021).
    pub cashier: String,
    /// FFD version of the documents.
    pub ffd: FfdVersion,
}

/// VAT rate codes of tag 1199 (names and sources: [`crate::vat`]).
pub mod vat {
    /// 20 %.
    pub const VAT20: u8 = 1;
    /// 10 %.
    pub const VAT10: u8 = 2;
    /// Calculated 20/120.
    pub const VAT20_120: u8 = 3;
    /// Calculated 10/110.
    pub const VAT10_110: u8 = 4;
    /// 0 %.
    pub const VAT0: u8 = 5;
    /// Without VAT.
    pub const NONE: u8 = 6;
    /// 5 % (from 2025).
    pub const VAT5: u8 = 7;
    /// 7 % (from 2025).
    pub const VAT7: u8 = 8;
    /// Calculated 5/105 (from 2025).
    pub const VAT5_105: u8 = 9;
    /// Calculated 7/107 (from 2025).
    pub const VAT7_107: u8 = 10;
    /// 22 % (from 2026).
    pub const VAT22: u8 = 11;
    /// Calculated 22/122 (from 2026).
    pub const VAT22_122: u8 = 12;
}

/// Operation types of tag 1054.
pub mod operation {
    /// Приход (sale).
    pub const INCOME: u8 = 1;
    /// Возврат прихода (sale return).
    pub const INCOME_RETURN: u8 = 2;
    /// Расход.
    pub const EXPENSE: u8 = 3;
    /// Возврат расхода.
    pub const EXPENSE_RETURN: u8 = 4;
}

/// One receipt line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// 1030.
    pub name: String,
    /// 1079, price per unit in kopecks.
    pub price: u64,
    /// 1023.
    pub quantity: Fvln,
    /// 1199.
    pub vat: u8,
    /// 1212 (1 = goods, 4 = service).
    pub subject: u8,
    /// 1214 (4 = full payment).
    pub method: u8,
}

impl Item {
    /// 1043: price × quantity, rounded to the kopeck.
    pub fn sum(&self) -> u64 {
        let scale = 10u128.pow(u32::from(self.quantity.scale));
        let raw = u128::from(self.price) * u128::from(self.quantity.mantissa);
        u64::try_from((raw + scale / 2) / scale).unwrap_or(u64::MAX)
    }

    /// VAT included in [`Item::sum`], in kopecks, rounded half up (0 for 0 %, "not
    /// subject" and unknown codes).
    pub fn vat_amount(&self) -> u64 {
        rate_of(self.vat).map_or(0, |r| r.included_in(self.sum()))
    }
}

/// A receipt (form 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// 1054.
    pub operation: u8,
    /// Items.
    pub items: Vec<Item>,
    /// 1031; the rest of the total is paid electronically (1081).
    pub cash: u64,
    /// 1038.
    pub shift: u32,
    /// 1042.
    pub number: u32,
    /// 1055.
    pub taxation: u8,
}

impl Receipt {
    /// 1020: the sum of the items.
    pub fn total(&self) -> u64 {
        self.items.iter().map(Item::sum).sum()
    }
}

/// Counters and drive state carried by shift-close and state reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DriveReport {
    /// 1038.
    pub shift: u32,
    /// 1111: documents in the shift.
    pub documents_in_shift: u32,
    /// 1118: receipts in the shift.
    pub receipts_in_shift: u32,
    /// 1097.
    pub unsent_documents: u32,
    /// 1098 (0 = none).
    pub first_unsent_time: u32,
    /// 1116 (0 = none).
    pub first_unsent_fd: u32,
    /// 1050–1053 as bits 0–3.
    pub warnings: u8,
    /// 1213.
    pub key_resource_days: u16,
}

/// A stand-in for the FN's fiscal sign: `21 04` then 4 bytes derived from the inputs.
pub fn fake_fiscal_sign(fn_number: &FnNumber, fd: u32, time: u32, total: u64) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in fn_number.as_bytes().iter().chain(&fd.to_le_bytes()).chain(&time.to_le_bytes()).chain(&total.to_le_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let v = (h as u32).to_be_bytes();
    [0x21, 0x04, v[0], v[1], v[2], v[3]]
}

pub(crate) fn common(w: &mut TlvWriter, id: &Identity, fd: u32, time: u32, total: u64) {
    w.raw(1041, id.fn_number.as_bytes())
        .padded(1037, &id.rnm, 20)
        .padded(1018, &id.user_inn, 12)
        .u32(1040, fd)
        .time(1012, time)
        .raw(1077, &fake_fiscal_sign(&id.fn_number, fd, time, total));
    if id.ffd != FfdVersion::V1_0 {
        w.byte(1209, id.ffd.tag_value());
    }
    w.string(1048, &id.user_name).string(1009, &id.address).string(1021, &id.cashier);
    if id.ffd >= FfdVersion::V1_05 {
        w.string(1187, &id.place);
    }
}

/// A receipt document TLV.
pub fn receipt(id: &Identity, fd: u32, time: u32, r: &Receipt) -> Vec<u8> {
    receipt_with(id, fd, time, r, &ReceiptExtras::default())
}

/// The receipt's VAT per rate: the flat tags 1102–1107 for codes 1–6, and for the codes
/// that have none (5 %, 7 %, 22 % and their calculated forms) one 1119 per rate inside 1115
/// (FFD 1.2). When the receipt states VAT only in 1115, 1104 is written with the value 0,
/// as the format asks (the FNS's own JSON of such receipts carries `"nds0": 0`).
fn vat_totals(w: &mut TlvWriter, id: &Identity, items: &[Item]) {
    let mut flat = false;
    let mut container = Vec::new();
    for r in RATES {
        let of_rate = || items.iter().filter(|i| i.vat == r.code);
        if of_rate().next().is_none() {
            continue;
        }
        let amount: u64 =
            if r.base_only { of_rate().map(Item::sum).sum() } else { of_rate().map(Item::vat_amount).sum() };
        match r.receipt_tag {
            Some(tag) if amount > 0 => {
                w.vln(tag, amount);
                flat = true;
            }
            Some(_) => {}
            None if id.ffd >= FfdVersion::V1_2 => container.push((r.code, amount)),
            None => {}
        }
    }
    if container.is_empty() {
        return;
    }
    if !flat {
        w.vln(1104, 0);
    }
    w.begin(1115);
    for (code, amount) in container {
        w.begin(1119).byte(1199, code).vln(1120, amount).end();
    }
    w.end();
}

/// A shift-open report (form 2).
pub fn open_shift(id: &Identity, fd: u32, time: u32, shift: u32) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.begin(2);
    common(&mut w, id, fd, time, 0);
    w.u32(1038, shift);
    w.end();
    w.finish()
}

fn drive_report(w: &mut TlvWriter, id: &Identity, d: &DriveReport) {
    w.u32(1038, d.shift).u32(1097, d.unsent_documents);
    if d.first_unsent_time != 0 {
        w.time(1098, d.first_unsent_time);
    }
    if d.first_unsent_fd != 0 {
        w.u32(1116, d.first_unsent_fd);
    }
    for bit in 0..4u16 {
        w.byte(1050 + bit, u8::from(d.warnings & (1 << bit) != 0));
    }
    if id.ffd >= FfdVersion::V1_1 {
        w.u16(1213, d.key_resource_days);
    }
}

/// A shift-close report (form 5) with counters and drive state.
pub fn close_shift(id: &Identity, fd: u32, time: u32, d: &DriveReport) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.begin(5);
    common(&mut w, id, fd, time, 0);
    drive_report(&mut w, id, d);
    w.u32(1111, d.documents_in_shift).u32(1118, d.receipts_in_shift);
    w.end();
    w.finish()
}

/// A current-state report (form 21).
pub fn state_report(id: &Identity, fd: u32, time: u32, d: &DriveReport) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.begin(21);
    common(&mut w, id, fd, time, 0);
    drive_report(&mut w, id, d);
    w.end();
    w.finish()
}

/// A registration report (form 1).
pub fn registration(id: &Identity, fd: u32, time: u32) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.begin(1);
    common(&mut w, id, fd, time, 0);
    w.string(1013, &id.kkt_serial)
        .padded(1017, &id.ofd_inn, 12)
        .byte(1056, 0)
        .byte(1002, 0)
        .byte(1001, 0)
        .byte(1062, 1)
        .string(1060, "www.nalog.gov.ru");
    if id.ffd >= FfdVersion::V1_05 {
        w.byte(1189, id.ffd.tag_value()).byte(1190, id.ffd.tag_value()).string(1188, "1.0");
    }
    w.end();
    w.finish()
}

/// A whole register message: session header (flags 0x0014, P-version of the FFD), an A5
/// container with valid CRC around `document_tlv`, and a 10-byte FN trailer.
pub fn message(id: &Identity, fd: u32, document_tlv: &[u8]) -> Bytes {
    let doc_type = document_tlv.first().copied().unwrap_or(0);
    let mut head = [0u8; 10];
    head[..8].copy_from_slice(&fd.to_be_bytes().repeat(2));
    head[8..].copy_from_slice(&[0x00, 0x02]);
    let sign = fake_fiscal_sign(&id.fn_number, fd, 0, document_tlv.len() as u64);
    let trailer = [0x81, 0x06, sign[2], sign[3], sign[4], sign[5], sign[0], sign[1], 0x00, 0x00];
    let container = ContainerSpec {
        msg_type: MSG_FROM_FN,
        doc_type,
        service1: ContainerSpec::SERVICE1,
        fn_number: id.fn_number,
        fd,
        service2_head: head,
    }
    .build(document_tlv, &trailer);
    let body_len = u16::try_from(container.len()).unwrap_or(u16::MAX);
    let header = SessionHeader::for_register(&id.fn_number, p_version_for(id.ffd), body_len);
    let mut out = Vec::with_capacity(SESSION_HEADER_LEN + container.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(&container);
    Bytes::from(out)
}
