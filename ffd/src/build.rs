//! Builders for realistic fiscal documents and whole register messages: registration
//! reports, shift open/close reports, state reports and receipts (items, VAT, cash and
//! card payments, returns) for FFD 1.05, 1.1 and 1.2. Used by the load generator and by
//! tests on both sides of the wire.
//!
//! The fiscal sign (1077) and the message trailer are produced by a real FN with keys we
//! do not have; [`fake_fiscal_sign`] stands in for it with the same shape (`21 04` + 4
//! bytes), deterministic in its inputs.

use bytes::Bytes;

use crate::container::{ContainerSpec, MSG_FROM_FN};
use crate::fn_number::FnNumber;
use crate::session::{SESSION_HEADER_LEN, SessionHeader, p_version_for};
use crate::tlv::{FfdVersion, Fvln, TlvWriter};

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

/// VAT rate codes of tag 1199.
pub mod vat {
    /// 20 %.
    pub const VAT20: u8 = 1;
    /// 10 %.
    pub const VAT10: u8 = 2;
    /// 0 %.
    pub const VAT0: u8 = 5;
    /// Without VAT.
    pub const NONE: u8 = 6;
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

    /// VAT included in [`Item::sum`], in kopecks.
    pub fn vat_amount(&self) -> u64 {
        match self.vat {
            vat::VAT20 => self.sum() * 20 / 120,
            vat::VAT10 => self.sum() * 10 / 110,
            _ => 0,
        }
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

fn common(w: &mut TlvWriter, id: &Identity, fd: u32, time: u32, total: u64) {
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
    let total = r.total();
    let mut w = TlvWriter::new();
    w.begin(3);
    common(&mut w, id, fd, time, total);
    w.u32(1038, r.shift).u32(1042, r.number).byte(1054, r.operation).byte(1055, r.taxation);
    for item in &r.items {
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
        }
        w.end();
    }
    let cash = r.cash.min(total);
    w.vln(1020, total).vln(1031, cash).vln(1081, total - cash);
    if id.ffd >= FfdVersion::V1_05 {
        w.vln(1215, 0).vln(1216, 0).vln(1217, 0);
    }
    let vat_by = |code: u8| r.items.iter().filter(|i| i.vat == code).map(Item::vat_amount).sum::<u64>();
    let base_by = |code: u8| r.items.iter().filter(|i| i.vat == code).map(Item::sum).sum::<u64>();
    for (tag, amount) in
        [(1102, vat_by(vat::VAT20)), (1103, vat_by(vat::VAT10)), (1104, base_by(vat::VAT0)), (1105, base_by(vat::NONE))]
    {
        if amount > 0 {
            w.vln(tag, amount);
        }
    }
    w.end();
    w.finish()
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
