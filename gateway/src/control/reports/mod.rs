//! Revenue reports as the owner sees them: the per-FN buckets of the store
//! ([`storage::ReportStore::report_totals`]) placed on **local days** and added up per
//! group (day, ISO week, month, register, owner; shifts come whole from
//! [`storage::ReportStore::shifts`]). Pure: no I/O here — the admin API reads the store
//! and feeds an [`Accumulator`]; [`render`] writes its rows as CSV or JSON.
//!
//! Where a document's day comes from:
//! * a readable document carries its local time (1012, the register's wall clock written
//!   as Unix seconds), so the store already files it under its local day ([`Bucket::Day`]);
//! * an unreadable one (encrypted body) has no time of its own: the store files it under
//!   the UTC hour it was received ([`Bucket::UtcHour`]) and here that hour is placed on
//!   the local day its start has in the register's time zone (`Register.time_zone`, else
//!   `[reports] default_time_zone`, or a zone the caller imposes on every register).
//!   Every Russian zone is a whole number of hours from UTC, so an hour never straddles
//!   two local days there.
//!
//! Reports are queries, not metrics: nothing here is labelled per register.

pub mod render;

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use storage::model::{Bucket, BucketTotals, Register, ShiftSummary, Totals};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// How report rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One row per local day.
    Day,
    /// One row per ISO week (Monday to Sunday) of local days.
    Week,
    /// One row per calendar month of local days.
    Month,
    /// One row per register.
    Register,
    /// One row per owner INN.
    Owner,
    /// One row per shift (FN and shift number), dated by its open (else close) report.
    Shift,
}

impl Grouping {
    /// Every grouping, as written in requests.
    pub const NAMES: [&'static str; 6] = ["day", "week", "month", "register", "owner", "shift"];

    /// Parses a grouping name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "day" => Self::Day,
            "week" => Self::Week,
            "month" => Self::Month,
            "register" => Self::Register,
            "owner" => Self::Owner,
            "shift" => Self::Shift,
            _ => return None,
        })
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Register => "register",
            Self::Owner => "owner",
            Self::Shift => "shift",
        }
    }

    /// Whether rows are periods of time (every period of the range gets a row).
    pub fn by_time(self) -> bool {
        matches!(self, Self::Day | Self::Week | Self::Month)
    }
}

/// Days since 1970-01-01 of a civil date (`None` outside the supported years).
pub fn day_number(d: Date) -> Option<i32> {
    let t = TimeZone::UTC.to_timestamp(d.at(0, 0, 0, 0)).ok()?;
    i32::try_from(t.as_second().div_euclid(DAY)).ok()
}

/// The civil date of a day number.
pub fn date_of(day: i32) -> Option<Date> {
    let t = jiff::Timestamp::from_second(i64::from(day) * DAY).ok()?;
    Some(TimeZone::UTC.to_datetime(t).date())
}

/// The local day of a bucket: a day bucket is one; an hour of receipt (UTC) falls on the
/// day its start has in `tz`.
pub fn local_day(bucket: Bucket, tz: &TimeZone) -> Option<i32> {
    match bucket {
        Bucket::Day(d) => Some(d),
        Bucket::UtcHour(h) => {
            let t = jiff::Timestamp::from_second(h.checked_mul(3600)?).ok()?;
            day_number(tz.to_datetime(t).date())
        }
    }
}

/// The key of a row; rows come out in key order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupKey {
    /// A local day.
    Day(i32),
    /// An ISO week: its year and number.
    Week(i16, i8),
    /// A month: year and month.
    Month(i16, i8),
    /// A register (RNM).
    Register(String),
    /// An owner (INN).
    Owner(String),
    /// A shift: register, FN, shift number.
    Shift(String, String, u32),
}

impl GroupKey {
    /// The key of a local day in a time grouping.
    pub fn of_day(by: Grouping, day: i32) -> Option<Self> {
        let d = date_of(day)?;
        Some(match by {
            Grouping::Week => {
                let w = d.iso_week_date();
                Self::Week(w.year(), w.week())
            }
            Grouping::Month => Self::Month(d.year(), d.month()),
            _ => Self::Day(day),
        })
    }

    /// As written in a report: `2026-11-23`, `2026-W48`, `2026-11`, the RNM, the INN,
    /// `FN/shift`.
    pub fn label(&self) -> String {
        match self {
            Self::Day(d) => date_of(*d).map_or_else(|| d.to_string(), |d| d.to_string()),
            Self::Week(y, w) => format!("{y:04}-W{w:02}"),
            Self::Month(y, m) => format!("{y:04}-{m:02}"),
            Self::Register(r) | Self::Owner(r) => r.clone(),
            Self::Shift(_, f, s) => format!("{f}/{s}"),
        }
    }
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its key.
    pub key: GroupKey,
    /// A name beside the key: the register's name (register and shift rows).
    pub name: String,
    /// The register (register and shift rows).
    pub rnm: Option<String>,
    /// What it adds up to.
    pub totals: Totals,
}

/// Adds buckets up into rows.
#[derive(Debug)]
pub struct Accumulator {
    by: Grouping,
    days: RangeInclusive<i32>,
    rows: BTreeMap<GroupKey, Row>,
    total: Totals,
    /// Shifts that could not be dated (neither report received): left out of the rows.
    pub undated_shifts: u64,
}

impl Accumulator {
    /// An empty report of local days `days`; time groupings start with a zero row for
    /// every period of the range.
    pub fn new(by: Grouping, days: RangeInclusive<i32>) -> Self {
        let mut rows = BTreeMap::new();
        if by.by_time() {
            for d in days.clone() {
                if let Some(key) = GroupKey::of_day(by, d) {
                    rows.entry(key.clone()).or_insert(Row {
                        key,
                        name: String::new(),
                        rnm: None,
                        totals: Totals::default(),
                    });
                }
            }
        }
        Self { by, days, rows, total: Totals::default(), undated_shifts: 0 }
    }

    /// Starts the row of a register (register grouping: every register gets a row, with
    /// or without documents; owner grouping: every owner).
    pub fn register(&mut self, r: &Register) {
        let (key, name, rnm) = match self.by {
            Grouping::Register => (GroupKey::Register(r.rnm.to_string()), r.name.clone(), Some(r.rnm.to_string())),
            Grouping::Owner => (GroupKey::Owner(r.owner_inn.to_string()), String::new(), None),
            _ => return,
        };
        self.rows.entry(key.clone()).or_insert(Row { key, name, rnm, totals: Totals::default() });
    }

    /// Adds one bucket of one of `r`'s FNs; false when it falls outside the range (then
    /// nothing is added).
    pub fn add(&mut self, r: &Register, tz: &TimeZone, b: &BucketTotals) -> bool {
        let Some(day) = local_day(b.bucket, tz).filter(|d| self.days.contains(d)) else {
            return false;
        };
        let key = match self.by {
            Grouping::Day | Grouping::Week | Grouping::Month => GroupKey::of_day(self.by, day),
            Grouping::Register => Some(GroupKey::Register(r.rnm.to_string())),
            Grouping::Owner => Some(GroupKey::Owner(r.owner_inn.to_string())),
            Grouping::Shift => None,
        };
        let Some(key) = key else { return false };
        self.register(r);
        let row = self.rows.entry(key.clone()).or_insert(Row {
            key,
            name: String::new(),
            rnm: None,
            totals: Totals::default(),
        });
        row.totals.merge(&b.totals);
        self.total.merge(&b.totals);
        true
    }

    /// Adds one shift of one of `r`'s FNs, dated by its open report (else its close
    /// report); false when it falls outside the range or cannot be dated.
    pub fn add_shift(&mut self, r: &Register, fn_number: &str, s: &ShiftSummary) -> bool {
        let Some(at) = s.opened_at.or(s.closed_at) else {
            self.undated_shifts += 1;
            return false;
        };
        if !self.days.contains(&Bucket::day_of_local(at)) {
            return false;
        }
        let key = GroupKey::Shift(r.rnm.to_string(), fn_number.to_owned(), s.shift);
        let row = Row { key: key.clone(), name: r.name.clone(), rnm: Some(r.rnm.to_string()), totals: s.received };
        self.total.merge(&s.received);
        self.rows.insert(key, row);
        true
    }

    /// Takes the rows made so far (register and shift groupings stream them register by
    /// register).
    pub fn take_rows(&mut self) -> Vec<Row> {
        std::mem::take(&mut self.rows).into_values().collect()
    }

    /// Every row, in key order.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.values()
    }

    /// The sum of every row.
    pub fn total(&self) -> &Totals {
        &self.total
    }
}

#[cfg(test)]
mod tests;
