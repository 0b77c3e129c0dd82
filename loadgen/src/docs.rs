//! The document sequence of one register, as its fiscal drive would produce it: open
//! shift, receipts (1–20 items, VAT 20/10/0/none, cash, card or both, about one in twenty
//! a return), the odd state report, close shift with the shift's counters — and again,
//! with FD numbers increasing by one per document and valid check codes throughout.
//!
//! Faults can be injected at a given share. Each injected message carries the outcome the
//! gateway must produce, computed by running `ffd::inspect` on the very bytes sent, so
//! the expectation follows the protocol crate rather than a copy of its rules here:
//! * [`Fault::FdMismatch`] — tag 1040 disagrees with the container: answered with 14;
//! * [`Fault::Truncated`] — the document's length runs into the trailer: 14;
//! * [`Fault::UnknownForm`] — a form code no FN produces: 11;
//! * [`Fault::BadContainerCrc`] — a broken container check code: no answer, the
//!   connection is closed.

use bytes::Bytes;
use ffd::build::{self, DriveReport, Identity, Item, Receipt, operation, vat};
use ffd::frame::{Limits, Message};
use ffd::tlv::{FfdVersion, Fvln, TlvWriter};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::registers::{RegisterIdentity, hash3};

/// The largest FD number a container can carry (u24).
pub const MAX_FD: u32 = 0x00FF_FFFF;

/// What a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// Form 2.
    OpenShift,
    /// Form 3, operation 1.
    Receipt,
    /// Form 3, operation 2 (return of a sale).
    Return,
    /// Form 21.
    StateReport,
    /// Form 5.
    CloseShift,
    /// An injected fault.
    Malformed,
}

/// An injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Tag 1040 = container FD + 1.
    FdMismatch,
    /// The document TLV's length covers 3 bytes of the trailer.
    Truncated,
    /// Form code 99.
    UnknownForm,
    /// Container check code inverted.
    BadContainerCrc,
}

impl Fault {
    /// Every kind, in the order injections cycle through them.
    pub const ALL: [Fault; 4] = [Fault::FdMismatch, Fault::Truncated, Fault::UnknownForm, Fault::BadContainerCrc];

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::FdMismatch => "fd_mismatch",
            Self::Truncated => "truncated",
            Self::UnknownForm => "unknown_form",
            Self::BadContainerCrc => "bad_container_crc",
        }
    }

    /// From the name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// What the gateway must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An acknowledgment with this response code.
    Ack(u8),
    /// No answer; the connection is closed.
    Close,
}

/// One document ready to send.
#[derive(Debug, Clone)]
pub struct Doc {
    /// FD number (container header and tag 1040, except for [`Fault::FdMismatch`]).
    pub fd: u32,
    /// What it is.
    pub kind: DocKind,
    /// The injected fault, if any.
    pub fault: Option<Fault>,
    /// Session header + container.
    pub message: Bytes,
    /// The required answer.
    pub expect: Outcome,
}

/// Where document times (tag 1012) come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// The wall clock when the document is built (what a register does).
    Wall,
    /// A fixed start, one minute per document: byte-reproducible runs.
    Fixed(u32),
}

/// The shape of the sequence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocPlan {
    /// Receipts per shift, inclusive range.
    pub receipts_per_shift: (u32, u32),
    /// Share of receipts that are returns.
    pub return_share: f64,
    /// Share of documents (inside a shift) that are state reports.
    pub state_report_share: f64,
    /// Share of documents replaced by an injected fault.
    pub malformed_share: f64,
    /// Which faults to inject (cycled at random).
    pub faults: Vec<Fault>,
    /// First FD number of every register.
    pub fd_start: u32,
    /// Document times.
    pub clock: Clock,
}

impl Default for DocPlan {
    fn default() -> Self {
        Self {
            receipts_per_shift: (5, 40),
            return_share: 0.05,
            state_report_share: 0.01,
            malformed_share: 0.0,
            faults: Fault::ALL.to_vec(),
            fd_start: 1,
            clock: Clock::Wall,
        }
    }
}

/// One line of the catalogue: name, price range in kopecks, VAT, subject (1 goods, 4
/// service), quantity kind (0 pieces, 1 kilograms, 2 litres).
type Product = (&'static str, u64, u64, u8, u8, u8);

const PRODUCTS: &[Product] = &[
    ("Хлеб пшеничный", 4_500, 7_500, vat::VAT10, 1, 0),
    ("Молоко 3,2% 1 л", 8_000, 12_000, vat::VAT10, 1, 0),
    ("Сыр Российский", 60_000, 90_000, vat::VAT10, 1, 1),
    ("Яблоки", 9_000, 20_000, vat::VAT10, 1, 1),
    ("Кофе молотый 250 г", 30_000, 70_000, vat::VAT20, 1, 0),
    ("Шоколад 100 г", 7_000, 15_000, vat::VAT20, 1, 0),
    ("Бензин АИ-95", 5_500, 6_500, vat::VAT20, 1, 2),
    ("Пакет", 500, 1_500, vat::VAT20, 1, 0),
    ("Доставка", 10_000, 50_000, vat::VAT20, 4, 0),
    ("Таблетки от головы", 10_000, 200_000, vat::VAT10, 1, 0),
    ("Букет", 50_000, 300_000, vat::NONE, 1, 0),
    ("Экспортный товар", 100_000, 900_000, vat::VAT0, 1, 0),
];

/// The documents of one register.
#[derive(Debug)]
pub struct DocStream {
    id: Identity,
    plan: DocPlan,
    rng: SmallRng,
    next_fd: u32,
    shift: u32,
    shift_open: bool,
    docs_in_shift: u32,
    receipts_in_shift: u32,
    receipts_left: u32,
    produced: u64,
    key_days: u16,
    fault_cursor: usize,
}

impl DocStream {
    /// The stream of register `reg` in population `seed`.
    pub fn new(seed: u64, reg: &RegisterIdentity, ofd_inn: &str, plan: DocPlan) -> Self {
        let h = hash3(seed, 3, reg.index);
        let next_fd = plan.fd_start.max(1);
        Self {
            id: reg.identity(ofd_inn),
            rng: SmallRng::seed_from_u64(h ^ u64::from(next_fd)),
            next_fd,
            shift: 1 + (h % 500) as u32,
            shift_open: false,
            docs_in_shift: 0,
            receipts_in_shift: 0,
            receipts_left: 0,
            produced: 0,
            key_days: 300 + (h >> 20) as u16 % 400,
            fault_cursor: (h >> 40) as usize,
            plan,
        }
    }

    /// FFD version of the register.
    pub fn ffd(&self) -> FfdVersion {
        self.id.ffd
    }

    /// The identity documents carry.
    pub fn identity(&self) -> &Identity {
        &self.id
    }

    /// A seeded coin with probability `p` (duplicate injection and the like).
    pub fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random::<f64>() < p
    }

    fn now(&self) -> u32 {
        match self.plan.clock {
            Clock::Wall => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
            Clock::Fixed(base) => {
                base.saturating_add(u32::try_from(self.produced.saturating_mul(60)).unwrap_or(u32::MAX))
            }
        }
    }

    /// The next document, or `None` when the FD numbers are exhausted.
    pub fn next_doc(&mut self) -> Option<Doc> {
        let fd = self.next_fd;
        if fd > MAX_FD {
            return None;
        }
        self.next_fd += 1;
        let time = self.now();
        self.produced += 1;
        if !self.plan.faults.is_empty() && self.roll(self.plan.malformed_share) {
            let fault = self.plan.faults[self.fault_cursor % self.plan.faults.len()];
            self.fault_cursor = self.fault_cursor.wrapping_add(1 + self.rng.random_range(0..3));
            return Some(self.malformed(fault, fd, time));
        }
        let (kind, tlv) = if !self.shift_open {
            self.shift_open = true;
            self.docs_in_shift = 1;
            self.receipts_in_shift = 0;
            let (lo, hi) = self.plan.receipts_per_shift;
            self.receipts_left = self.rng.random_range(lo.min(hi)..=hi.max(lo));
            (DocKind::OpenShift, build::open_shift(&self.id, fd, time, self.shift))
        } else if self.receipts_left == 0 {
            self.shift_open = false;
            self.docs_in_shift += 1;
            let report = DriveReport {
                shift: self.shift,
                documents_in_shift: self.docs_in_shift,
                receipts_in_shift: self.receipts_in_shift,
                key_resource_days: self.key_days,
                ..DriveReport::default()
            };
            self.shift += 1;
            self.key_days = self.key_days.saturating_sub(1);
            (DocKind::CloseShift, build::close_shift(&self.id, fd, time, &report))
        } else if self.roll(self.plan.state_report_share) {
            self.docs_in_shift += 1;
            let report = DriveReport { shift: self.shift, key_resource_days: self.key_days, ..DriveReport::default() };
            (DocKind::StateReport, build::state_report(&self.id, fd, time, &report))
        } else {
            self.docs_in_shift += 1;
            self.receipts_in_shift += 1;
            self.receipts_left -= 1;
            let is_return = self.roll(self.plan.return_share);
            let r = self.receipt(is_return);
            let kind = if is_return { DocKind::Return } else { DocKind::Receipt };
            (kind, build::receipt(&self.id, fd, time, &r))
        };
        Some(Doc { fd, kind, fault: None, message: build::message(&self.id, fd, &tlv), expect: Outcome::Ack(0) })
    }

    fn receipt(&mut self, is_return: bool) -> Receipt {
        // small receipts are the most common: the minimum of two uniform draws
        let a = self.rng.random_range(1..=20u32);
        let b = self.rng.random_range(1..=20u32);
        let n = a.min(b);
        let items = (0..n).map(|_| self.item()).collect::<Vec<_>>();
        let total: u64 = items.iter().map(Item::sum).sum();
        let cash = match self.rng.random_range(0..10) {
            0..=3 => total,
            4..=8 => 0,
            _ => total / 2,
        };
        Receipt {
            operation: if is_return { operation::INCOME_RETURN } else { operation::INCOME },
            items,
            cash,
            shift: self.shift,
            number: self.receipts_in_shift,
            taxation: 1,
        }
    }

    fn item(&mut self) -> Item {
        let (name, lo, hi, vat, subject, qty) = PRODUCTS[self.rng.random_range(0..PRODUCTS.len())];
        let price = self.rng.random_range(lo..=hi);
        let quantity = match qty {
            1 => Fvln { scale: 3, mantissa: self.rng.random_range(150..=3_000) },
            2 => Fvln { scale: 2, mantissa: self.rng.random_range(1_000..=5_000) },
            _ => Fvln {
                scale: 0,
                mantissa: if self.rng.random_range(0..4) == 0 { self.rng.random_range(2..=5) } else { 1 },
            },
        };
        Item { name: name.to_owned(), price, quantity, vat, subject, method: 4 }
    }

    fn malformed(&mut self, fault: Fault, fd: u32, time: u32) -> Doc {
        let r = self.receipt(false);
        let message = match fault {
            Fault::FdMismatch => {
                let tlv = build::receipt(&self.id, fd.wrapping_add(1) & MAX_FD, time, &r);
                build::message(&self.id, fd, &tlv)
            }
            Fault::Truncated => {
                let mut tlv = build::receipt(&self.id, fd, time, &r);
                let len = u16::from_le_bytes([tlv[2], tlv[3]]).wrapping_add(3);
                tlv[2..4].copy_from_slice(&len.to_le_bytes());
                build::message(&self.id, fd, &tlv)
            }
            Fault::UnknownForm => {
                let mut w = TlvWriter::new();
                w.begin(99).raw(1041, self.id.fn_number.as_bytes()).u32(1040, fd).time(1012, time).end();
                build::message(&self.id, fd, &w.finish())
            }
            Fault::BadContainerCrc => {
                let m = build::message(&self.id, fd, &build::receipt(&self.id, fd, time, &r));
                let mut v = m.to_vec();
                // container check code: session header (30) + 2
                if let Some(b) = v.get_mut(32) {
                    *b = !*b;
                }
                Bytes::from(v)
            }
        };
        Doc { fd, kind: DocKind::Malformed, fault: Some(fault), expect: expected_outcome(&message), message }
    }
}

/// What `ffd` says the gateway must answer to `message`: a close-class error means no
/// answer, otherwise an acknowledgment with the inspection's response code.
pub fn expected_outcome(message: &Bytes) -> Outcome {
    let limits = Limits::default();
    let Ok(m) = Message::parse(message.clone(), &limits) else {
        return Outcome::Close;
    };
    match ffd::inspect(&m, &limits) {
        Ok(i) => Outcome::Ack(i.response_code().value()),
        Err(_) => Outcome::Close,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registers::FfdMix;

    fn stream(index: u64, plan: DocPlan) -> DocStream {
        let reg = RegisterIdentity::derive(5, index, &FfdMix::default()).expect("register");
        DocStream::new(5, &reg, crate::registers::DEFAULT_OFD_INN, plan)
    }

    #[test]
    fn valid_sequences_pass_inspection_with_code_zero() {
        let mut kinds = std::collections::HashSet::new();
        let mut versions = std::collections::HashSet::new();
        for index in 0..12 {
            let mut s = stream(
                index,
                DocPlan {
                    receipts_per_shift: (2, 6),
                    state_report_share: 0.1,
                    return_share: 0.2,
                    ..DocPlan::default()
                },
            );
            versions.insert(s.ffd());
            let mut last_fd = 0;
            let mut open = false;
            for _ in 0..60 {
                let d = s.next_doc().expect("doc");
                assert_eq!(d.fd, last_fd + 1, "FD numbers increase by one");
                last_fd = d.fd;
                assert_eq!(expected_outcome(&d.message), Outcome::Ack(0), "{:?}", d.kind);
                assert_eq!(d.expect, Outcome::Ack(0));
                match d.kind {
                    DocKind::OpenShift => {
                        assert!(!open);
                        open = true;
                    }
                    DocKind::CloseShift => {
                        assert!(open);
                        open = false;
                    }
                    _ => assert!(open, "receipts only inside a shift"),
                }
                let m = Message::parse(d.message.clone(), &Limits::default()).expect("frame");
                let i = ffd::inspect(&m, &Limits::default()).expect("inspect");
                assert_eq!(i.fd(), d.fd);
                assert_eq!(i.fn_number(), s.identity().fn_number);
                kinds.insert(d.kind);
            }
        }
        for k in [DocKind::OpenShift, DocKind::Receipt, DocKind::Return, DocKind::StateReport, DocKind::CloseShift] {
            assert!(kinds.contains(&k), "{k:?} never produced");
        }
        assert!(versions.len() >= 2, "several FFD versions in the mix");
    }

    #[test]
    fn streams_are_reproducible() {
        let plan = DocPlan { clock: Clock::Fixed(1_750_000_000), ..DocPlan::default() };
        let mut a = stream(3, plan.clone());
        let mut b = stream(3, plan);
        for _ in 0..50 {
            let (x, y) = (a.next_doc().expect("a"), b.next_doc().expect("b"));
            assert_eq!(x.message, y.message);
        }
    }

    #[test]
    fn every_fault_has_its_expected_outcome() {
        for fault in Fault::ALL {
            let mut s = stream(1, DocPlan { malformed_share: 1.0, faults: vec![fault], ..DocPlan::default() });
            let d = s.next_doc().expect("doc");
            assert_eq!(d.fault, Some(fault));
            let want = match fault {
                Fault::FdMismatch | Fault::Truncated => Outcome::Ack(14),
                Fault::UnknownForm => Outcome::Ack(11),
                Fault::BadContainerCrc => Outcome::Close,
            };
            assert_eq!(d.expect, want, "{fault:?}");
            assert_eq!(Fault::from_name(fault.name()), Some(fault));
        }
    }

    #[test]
    fn fd_space_ends() {
        let mut s = stream(0, DocPlan { fd_start: MAX_FD, ..DocPlan::default() });
        assert!(s.next_doc().is_some());
        assert!(s.next_doc().is_none());
    }
}
