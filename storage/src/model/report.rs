//! Revenue reports, shifts and FD continuity: the aggregates derived from the stored
//! documents, one fold shared by every backend.
//!
//! A document is folded once: each FN keeps its [`Continuity`] (which FDs were received,
//! and since when each hole is open), and a document whose FD it already holds changes
//! nothing. Backends persist the continuity atomically with the aggregates it guards, so
//! re-reading documents after a crash (or a journal entry twice) cannot count twice.
//! Only newly stored documents are folded: a retransmission or a conflicting copy under a
//! used number never reaches the fold.
//!
//! Aggregates are kept per FN — an FN belongs to one register and one derivation
//! partition, so no two writers ever share a row — in two kinds of buckets:
//! * [`Bucket::Day`]: the document's own local day. Tag 1012 is the register's local
//!   wall-clock time written as Unix seconds (no zone), so `1012 / 86400` is the day the
//!   shop printed on the receipt, whatever its time zone;
//! * [`Bucket::UtcHour`]: documents without a readable 1012 (encrypted bodies), by the
//!   hour they were received; a report places each hour on a local day with the
//!   register's time zone (every Russian zone is a whole number of hours).

use ffd::FnNumber;
use ffd::figures::{Amounts, Figures, KINDS, ShiftCounters, VAT_CODES, figures};
use serde::{Deserialize, Serialize};

use crate::ids::{Rnm, Timestamp};
use crate::model::DocumentRecord;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Receipts of one settlement kind: how many, and their money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Line {
    /// Receipts.
    pub count: u64,
    /// Their sums.
    #[serde(flatten)]
    pub amounts: Amounts,
}

impl Line {
    fn add(&mut self, o: &Line) {
        self.count = self.count.saturating_add(o.count);
        self.amounts.add(&o.amounts);
    }
}

/// What a group of documents adds up to. All money in kopecks, exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Documents of every form.
    pub documents: u64,
    /// Documents whose figures could not be read (encrypted or malformed bodies, a
    /// receipt without a valid settlement kind): counted here, in no other column.
    pub unreadable: u64,
    /// Receipts and BSO by settlement kind (1054: sale, sale return, expense, expense
    /// return).
    pub kinds: [Line; KINDS],
    /// Correction receipts and correction BSO by settlement kind.
    pub corrections: [Line; KINDS],
}

impl Totals {
    /// Adds one document's figures.
    pub fn add(&mut self, f: &Option<Figures>) {
        self.documents += 1;
        let Some(f) = f else {
            self.unreadable += 1;
            return;
        };
        let Some(r) = f.receipt else { return };
        let Some(kind) = r.kind else {
            self.unreadable += 1;
            return;
        };
        let lines = if r.correction { &mut self.corrections } else { &mut self.kinds };
        lines[usize::from(kind - 1)].add(&Line { count: 1, amounts: r.amounts });
    }

    /// Adds another group.
    pub fn merge(&mut self, o: &Totals) {
        self.documents = self.documents.saturating_add(o.documents);
        self.unreadable = self.unreadable.saturating_add(o.unreadable);
        for (a, b) in self.kinds.iter_mut().zip(&o.kinds) {
            a.add(b);
        }
        for (a, b) in self.corrections.iter_mut().zip(&o.corrections) {
            a.add(b);
        }
    }

    /// Receipts and BSO of every kind, corrections not included.
    pub fn receipts(&self) -> u64 {
        self.kinds.iter().map(|l| l.count).sum()
    }

    /// Correction receipts of every kind.
    pub fn correction_count(&self) -> u64 {
        self.corrections.iter().map(|l| l.count).sum()
    }

    /// Revenue: sales minus sale returns, corrections of those kinds included, by field
    /// (total, payment forms, VAT), as signed kopecks.
    pub fn revenue(&self) -> Net {
        let plus = |a: &Amounts| a.fields().map(i128::from);
        let mut net = [0i128; 6 + VAT_CODES];
        for (lines, sign) in [(&self.kinds, 1i128), (&self.corrections, 1)] {
            for (i, v) in plus(&lines[0].amounts).iter().enumerate() {
                net[i] += sign * v;
            }
            for (i, v) in plus(&lines[1].amounts).iter().enumerate() {
                net[i] -= sign * v;
            }
        }
        Net(net.map(|v| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })))
    }

    /// The average sale receipt (1020 of sales ÷ their number), rounded half up; `None`
    /// without sales.
    pub fn average_sale(&self) -> Option<u64> {
        let l = &self.kinds[0];
        (l.count > 0).then(|| {
            let (s, n) = (u128::from(l.amounts.total), u128::from(l.count));
            u64::try_from((s + n / 2) / n).unwrap_or(u64::MAX)
        })
    }

    /// A compact binary form: version, the two counts, then each non-empty line with a
    /// bit mask of its non-zero fields and those fields as LEB128 varints.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(1);
        varint(out, self.documents);
        varint(out, self.unreadable);
        let lines: Vec<&Line> = self.kinds.iter().chain(&self.corrections).collect();
        let present =
            lines.iter().enumerate().fold(0u8, |m, (i, l)| if **l == Line::default() { m } else { m | 1 << i });
        out.push(present);
        for l in lines.into_iter().filter(|l| **l != Line::default()) {
            let f = l.amounts.fields();
            let mask = f.iter().enumerate().fold(0u32, |m, (i, v)| if *v == 0 { m } else { m | 1 << i });
            varint(out, l.count);
            varint(out, u64::from(mask));
            for v in f.iter().filter(|v| **v != 0) {
                varint(out, *v);
            }
        }
    }

    /// The inverse of [`Totals::encode`]; `None` for anything else.
    pub fn decode(mut b: &[u8]) -> Option<(Totals, &[u8])> {
        let (&v, rest) = b.split_first()?;
        if v != 1 {
            return None;
        }
        b = rest;
        let mut t = Totals { documents: read_varint(&mut b)?, unreadable: read_varint(&mut b)?, ..Totals::default() };
        let (&present, rest) = b.split_first()?;
        b = rest;
        for i in 0..2 * KINDS {
            if present & (1 << i) == 0 {
                continue;
            }
            let count = read_varint(&mut b)?;
            let mask = read_varint(&mut b)?;
            if mask >> (6 + VAT_CODES) != 0 {
                return None;
            }
            let mut f = [0u64; 6 + VAT_CODES];
            for (j, slot) in f.iter_mut().enumerate() {
                if mask & (1 << j) != 0 {
                    *slot = read_varint(&mut b)?;
                }
            }
            let line = Line { count, amounts: Amounts::from_fields(&f) };
            if i < KINDS {
                t.kinds[i] = line;
            } else {
                t.corrections[i - KINDS] = line;
            }
        }
        Some((t, b))
    }
}

/// Signed sums by field, in [`Amounts::fields`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net(pub [i64; 6 + VAT_CODES]);

pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn read_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Where a document's figures are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "at", rename_all = "snake_case")]
pub enum Bucket {
    /// A local day (days since 1970-01-01 of the document's own 1012 time).
    Day(i32),
    /// An hour of receipt, UTC (hours since the epoch), for documents without a time.
    UtcHour(i64),
}

impl Bucket {
    /// The local day of a document time (1012 read as Unix seconds).
    pub fn day_of_local(secs: i64) -> i32 {
        i32::try_from(secs.div_euclid(DAY)).unwrap_or(if secs < 0 { i32::MIN } else { i32::MAX })
    }
}

/// What one stored document contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocFacts {
    /// Its FN.
    pub fn_number: FnNumber,
    /// Its FD.
    pub fd: u32,
    /// When the operator received it.
    pub received_at: Timestamp,
    /// Its bucket.
    pub bucket: Bucket,
    /// Its figures (`None`: unreadable).
    pub figures: Option<Figures>,
}

impl DocFacts {
    /// Reads a stored document.
    pub fn of(doc: &DocumentRecord) -> Self {
        let figures = if doc.opaque { None } else { figures(&doc.raw) };
        let time = figures.and_then(|f| f.time).map(i64::from).or(doc.doc_time.map(|t| t.unix_secs()));
        let bucket = match time {
            Some(secs) => Bucket::Day(Bucket::day_of_local(secs)),
            None => Bucket::UtcHour(doc.received_at.unix_secs().div_euclid(3600)),
        };
        Self { fn_number: doc.fn_number, fd: doc.fd, received_at: doc.received_at, bucket, figures }
    }

    /// The shift it belongs to.
    pub fn shift(&self) -> Option<u32> {
        self.figures.and_then(|f| f.shift)
    }
}

/// FD numbers of one FN never received: a run `from..=to`, open since `since`: when a
/// document on each side of it had arrived (the later of the earliest arrival below it
/// and the earliest above it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hole {
    /// First missing FD.
    pub from: u32,
    /// Last missing FD.
    pub to: u32,
    /// Known missing since.
    pub since: Timestamp,
}

impl Hole {
    /// FDs in it.
    pub fn len(&self) -> u64 {
        u64::from(self.to - self.from) + 1
    }

    /// Never empty; for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Which FDs of an FN were received: `low..=high` except the holes. The first FDs of a
/// drive may have gone to another operator before the register came here, so nothing
/// below the lowest FD received counts as missing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Continuity {
    /// Lowest FD received.
    pub low: Option<u32>,
    /// Highest FD received.
    pub high: Option<u32>,
    /// Documents received (folded).
    pub received: u64,
    /// Missing runs, ascending (at most [`Continuity::MAX_HOLES`]: beyond, the lowest are
    /// forgotten and counted in `forgotten`).
    pub holes: Vec<Hole>,
    /// FDs of forgotten holes.
    #[serde(default)]
    pub forgotten: u64,
    /// Earliest arrival among the documents received (absent in state written before it
    /// was kept). A backend may fold concurrent writes out of their arrival order; this
    /// keeps each hole's `since` the same in any fold order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest: Option<Timestamp>,
}

impl Continuity {
    /// Most holes kept per FN.
    pub const MAX_HOLES: usize = 4096;

    /// Records `fd`, received at `at`; false if it was recorded before.
    pub fn record(&mut self, fd: u32, at: Timestamp) -> bool {
        let (Some(low), Some(high)) = (self.low, self.high) else {
            self.low = Some(fd);
            self.high = Some(fd);
            self.received = 1;
            self.earliest = Some(at);
            return true;
        };
        // Every document received so far lies on the other side of a hole that `fd`
        // opens at either end: the hole is known from the later of `at` and their
        // earliest arrival. (Folded in arrival order, that is `at`.)
        let earliest = self.earliest.unwrap_or(Timestamp(i64::MIN));
        if fd > high {
            if fd > high + 1 {
                self.holes.push(Hole { from: high + 1, to: fd - 1, since: at.max(earliest) });
            }
            self.high = Some(fd);
        } else if fd < low {
            if fd + 1 < low {
                self.holes.insert(0, Hole { from: fd + 1, to: low - 1, since: at.max(earliest) });
            }
            self.low = Some(fd);
        } else {
            // inside: it must fill a hole
            let i = self.holes.partition_point(|h| h.to < fd);
            match self.holes.get(i).copied() {
                Some(h) if h.from <= fd => {
                    let mut parts = Vec::with_capacity(2);
                    if h.from < fd {
                        // `fd` lies above the part below it: that part is known from
                        // the earlier of the two arrivals above it (but not before any
                        // document below it had arrived)
                        parts.push(Hole { to: fd - 1, since: h.since.min(at).max(earliest), ..h });
                    }
                    if fd < h.to {
                        parts.push(Hole { from: fd + 1, ..h });
                    }
                    self.holes.splice(i..=i, parts);
                }
                _ => return false,
            }
        }
        self.received += 1;
        self.earliest = Some(self.earliest.map_or(at, |e| e.min(at)));
        if self.holes.len() > Self::MAX_HOLES {
            let excess = self.holes.len() - Self::MAX_HOLES;
            self.forgotten += self.holes.drain(..excess).map(|h| h.len()).sum::<u64>();
        }
        true
    }

    /// Whether the fields agree with each other (holes ascending, disjoint, non-empty,
    /// strictly between `low` and `high`; `low` and `high` both set or both unset): what a
    /// backend checks on a stored row before trusting it.
    pub fn is_consistent(&self) -> bool {
        let (lo, hi) = match (self.low, self.high) {
            (Some(l), Some(h)) if l <= h => (l, h),
            (None, None) => return self.holes.is_empty(),
            _ => return false,
        };
        let mut floor = lo;
        for h in &self.holes {
            if h.from <= floor || h.to < h.from || h.to >= hi {
                return false;
            }
            floor = h.to + 1;
        }
        true
    }

    /// Whether `fd` was recorded.
    pub fn contains(&self, fd: u32) -> bool {
        match (self.low, self.high) {
            (Some(l), Some(h)) if (l..=h).contains(&fd) => {
                let i = self.holes.partition_point(|x| x.to < fd);
                self.holes.get(i).is_none_or(|x| x.from > fd)
            }
            _ => false,
        }
    }

    /// FDs missing between the lowest and the highest received.
    pub fn missing(&self) -> u64 {
        self.holes.iter().map(Hole::len).sum::<u64>() + self.forgotten
    }

    /// Since when the oldest open hole is known.
    pub fn oldest_hole_since(&self) -> Option<Timestamp> {
        self.holes.iter().map(|h| h.since).min()
    }
}

/// The continuity of one FN, with its register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FnContinuity {
    /// The FN.
    pub fn_number: FnNumber,
    /// The register its documents were accepted for.
    pub rnm: Rnm,
    /// Received FDs and holes.
    #[serde(flatten)]
    pub continuity: Continuity,
}

/// One shift of one FN: its open and close reports, what the register counted in the
/// close report, and what the operator received.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShiftSummary {
    /// 1038.
    pub shift: u32,
    /// FD of the shift-open report (form 2), when received.
    pub opened_fd: Option<u32>,
    /// Its 1012 (local time, Unix seconds).
    pub opened_at: Option<i64>,
    /// FD of the shift-close report (form 5), when received.
    pub closed_fd: Option<u32>,
    /// Its 1012.
    pub closed_at: Option<i64>,
    /// What the close report counted.
    pub reported: Option<ShiftCounters>,
    /// Lowest and highest FD received with this shift number.
    pub first_fd: Option<u32>,
    /// See `first_fd`.
    pub last_fd: Option<u32>,
    /// What the operator received with this shift number.
    pub received: Totals,
}

impl ShiftSummary {
    /// Adds a document of this shift.
    pub fn add(&mut self, fd: u32, f: &Option<Figures>) {
        self.received.add(f);
        self.first_fd = Some(self.first_fd.map_or(fd, |x| x.min(fd)));
        self.last_fd = Some(self.last_fd.map_or(fd, |x| x.max(fd)));
        let Some(f) = f else { return };
        let time = f.time.map(i64::from);
        // a shift has one of each; should a drive ever repeat one, the first open and the
        // last close count, whatever order they arrived in
        match f.form {
            2 if self.opened_fd.is_none_or(|o| fd < o) => {
                self.opened_fd = Some(fd);
                self.opened_at = time;
            }
            5 if self.closed_fd.is_none_or(|c| fd > c) => {
                self.closed_fd = Some(fd);
                self.closed_at = time;
                self.reported = f.shift_close;
            }
            _ => {}
        }
    }

    /// What does not add up between the close report and what was received.
    pub fn check(&self) -> ShiftCheck {
        let mut c = ShiftCheck::default();
        if let (Some(o), Some(cl)) = (self.opened_fd, self.closed_fd) {
            // every FD from the open report to the close report belongs to the shift
            let span = u64::from(cl.saturating_sub(o)) + 1;
            c.missing_documents = Some(span.saturating_sub(self.received.documents));
        }
        if let Some(r) = &self.reported {
            let got = self.received.receipts() + self.received.correction_count();
            if let Some(n) = r.receipts {
                c.receipts_difference = Some(i64::from(n) - i64::try_from(got).unwrap_or(i64::MAX));
            }
            for (i, k) in r.kinds.iter().enumerate() {
                let Some(k) = k else { continue };
                let l = &self.received.kinds[i];
                if k.count != l.count || k.total != l.amounts.total {
                    c.kinds_differing.push(ffd::figures::KIND_NAMES[i].to_owned());
                }
            }
        }
        c.mismatch = c.missing_documents.is_some_and(|m| m > 0)
            || c.receipts_difference.is_some_and(|d| d != 0)
            || !c.kinds_differing.is_empty();
        c
    }
}

/// The verdict on one shift.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShiftCheck {
    /// FDs from the open to the close report that were not received.
    pub missing_documents: Option<u64>,
    /// Receipts the close report counts (1118) minus receipts and corrections received.
    pub receipts_difference: Option<i64>,
    /// Settlement kinds whose count or total (1194) differs from what was received.
    pub kinds_differing: Vec<String>,
    /// Any of the above.
    pub mismatch: bool,
}

/// Totals of one FN in one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketTotals {
    /// The FN.
    pub fn_number: FnNumber,
    /// The bucket.
    pub bucket: Bucket,
    /// What it adds up to.
    pub totals: Totals,
}

/// The aggregates of one FN recomputed from scratch, for verification: what a backend's
/// derived state must equal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recomputed {
    /// Continuity (without hole times, which depend on arrival order).
    pub continuity: Continuity,
    /// Totals by bucket.
    pub buckets: std::collections::BTreeMap<Bucket, Totals>,
    /// Shifts by number.
    pub shifts: std::collections::BTreeMap<u32, ShiftSummary>,
}

impl Recomputed {
    /// Folds one document (ignoring an FD already folded).
    pub fn fold(&mut self, doc: &DocumentRecord) -> bool {
        let facts = DocFacts::of(doc);
        if !self.continuity.record(doc.fd, doc.received_at) {
            return false;
        }
        self.buckets.entry(facts.bucket).or_default().add(&facts.figures);
        if let Some(s) = facts.shift() {
            self.shifts
                .entry(s)
                .or_insert_with(|| ShiftSummary { shift: s, ..Default::default() })
                .add(doc.fd, &facts.figures);
        }
        true
    }
}

#[cfg(test)]
mod tests;
