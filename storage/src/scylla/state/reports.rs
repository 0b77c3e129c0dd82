//! What the deriver of a journal partition keeps of the report aggregates of its FNs, and
//! the row forms of `fn_reports` (behaviour: `super::super::fold` and
//! `super::super::reports`).
//!
//! Every aggregate row carries the FDs folded into it ([`FdSet`]), so a row decides by
//! itself whether a document was counted: a write that lands late (a timed-out batch of
//! a former lease holder, applied afterwards) can leave a row that knows an FD the
//! continuity row does not; folding that FD again then records it in the continuity and
//! leaves the row as it is, instead of counting it twice.

use std::collections::HashMap;

use ffd::figures::ShiftCounters;
use serde::{Deserialize, Serialize};

use crate::model::{Continuity, ShiftSummary, Totals, read_varint, varint};

/// Row kinds of `fn_reports` (the first clustering column); the continuity row is kind 0,
/// bucket 0 (literals in its statements).
pub(crate) mod kind {
    /// Totals of a local day (bucket = day).
    pub(crate) const DAY: i16 = 1;
    /// Totals of an undated UTC hour (bucket = hour).
    pub(crate) const HOUR: i16 = 2;
    /// A shift (bucket = shift number).
    pub(crate) const SHIFT: i16 = 3;
}

/// A set of FDs as ascending, disjoint, non-adjacent inclusive runs. The FDs of one
/// bucket or shift are nearly consecutive, so this is a run or two.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FdSet(Vec<(u32, u32)>);

impl FdSet {
    /// Adds `fd`; false if it was there.
    pub(crate) fn insert(&mut self, fd: u32) -> bool {
        let i = self.0.partition_point(|r| r.1 < fd);
        if self.0.get(i).is_some_and(|r| r.0 <= fd) {
            return false;
        }
        let joins_left = i > 0 && self.0[i - 1].1.checked_add(1) == Some(fd);
        let joins_right = self.0.get(i).is_some_and(|r| fd.checked_add(1) == Some(r.0));
        match (joins_left, joins_right) {
            (true, true) => {
                self.0[i - 1].1 = self.0[i].1;
                self.0.remove(i);
            }
            (true, false) => self.0[i - 1].1 = fd,
            (false, true) => self.0[i].0 = fd,
            (false, false) => self.0.insert(i, (fd, fd)),
        }
        true
    }

    /// Whether `fd` is in the set.
    #[cfg(test)]
    pub(crate) fn contains(&self, fd: u32) -> bool {
        let i = self.0.partition_point(|r| r.1 < fd);
        self.0.get(i).is_some_and(|r| r.0 <= fd)
    }

    /// Version byte, then each run as LEB128 varints: the gap from the previous run's end
    /// and the run's length minus one.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![1u8];
        let mut prev = 0u32;
        for (i, (a, b)) in self.0.iter().enumerate() {
            let gap = if i == 0 { *a } else { a - prev };
            varint(&mut out, u64::from(gap));
            varint(&mut out, u64::from(b - a));
            prev = *b;
        }
        out
    }

    /// The inverse of [`FdSet::encode`]; `None` for anything else.
    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        let (&v, mut rest) = b.split_first()?;
        if v != 1 {
            return None;
        }
        let mut runs: Vec<(u32, u32)> = Vec::new();
        while !rest.is_empty() {
            let gap = u32::try_from(read_varint(&mut rest)?).ok()?;
            let len = u32::try_from(read_varint(&mut rest)?).ok()?;
            let a = match runs.last() {
                // runs are disjoint and not adjacent: a gap of at least 2
                Some(&(_, prev)) if gap >= 2 => prev.checked_add(gap)?,
                Some(_) => return None,
                None => gap,
            };
            runs.push((a, a.checked_add(len)?));
        }
        Some(Self(runs))
    }
}

/// What a shift row keeps besides its totals (`body`, JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShiftMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_fd: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_fd: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<ShiftCounters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_fd: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fd: Option<u32>,
}

impl ShiftMeta {
    pub(crate) fn of(s: &ShiftSummary) -> Self {
        Self {
            opened_fd: s.opened_fd,
            opened_at: s.opened_at,
            closed_fd: s.closed_fd,
            closed_at: s.closed_at,
            reported: s.reported,
            first_fd: s.first_fd,
            last_fd: s.last_fd,
        }
    }

    pub(crate) fn into_summary(self, shift: u32, received: Totals) -> ShiftSummary {
        ShiftSummary {
            shift,
            opened_fd: self.opened_fd,
            opened_at: self.opened_at,
            closed_fd: self.closed_fd,
            closed_at: self.closed_at,
            reported: self.reported,
            first_fd: self.first_fd,
            last_fd: self.last_fd,
            received,
        }
    }
}

/// One aggregate row of an FN: a bucket's totals or a shift, with the FDs folded in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AggRow {
    pub(crate) fds: FdSet,
    pub(crate) agg: Agg,
}

/// The aggregate itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant, reason = "both variants are large (a Totals each); rows are few")]
pub(crate) enum Agg {
    Bucket(Totals),
    Shift(ShiftSummary),
}

impl AggRow {
    /// An empty row of `kind` at `bucket`.
    pub(crate) fn empty(kind: i16, bucket: i64) -> Self {
        let agg = if kind == kind::SHIFT {
            Agg::Shift(ShiftSummary { shift: u32::try_from(bucket).unwrap_or(0), ..Default::default() })
        } else {
            Agg::Bucket(Totals::default())
        };
        Self { fds: FdSet::default(), agg }
    }
}

/// The report state of one FN as this deriver last wrote or read it: its continuity, the
/// register of its highest FD, and the aggregate rows it touched (loaded one by one, by
/// (kind, bucket)).
#[derive(Debug, Clone, Default)]
pub(crate) struct FnReport {
    pub(crate) continuity: Continuity,
    pub(crate) rnm: String,
    pub(crate) rows: HashMap<(i16, i64), AggRow>,
}

/// The report states of a partition's FNs, by stored FN.
pub(crate) type ReportCache = HashMap<String, FnReport>;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn fd_sets_match_a_set_and_round_trip(fds in proptest::collection::vec(0u32..200, 0..120), big in any::<u32>()) {
            let mut s = FdSet::default();
            let mut set = BTreeSet::new();
            for fd in fds.iter().copied().chain([big, u32::MAX, 0]) {
                prop_assert_eq!(s.insert(fd), set.insert(fd));
            }
            for fd in 0..210 {
                prop_assert_eq!(s.contains(fd), set.contains(&fd));
            }
            prop_assert!(s.contains(big) && s.contains(u32::MAX));
            let b = s.encode();
            prop_assert_eq!(FdSet::decode(&b), Some(s.clone()));
            for cut in 1..b.len() {
                prop_assert!(FdSet::decode(&b[..cut]).is_none_or(|x| x != s));
            }
        }
    }

    #[test]
    fn runs_merge_and_bad_encodings_are_refused() {
        let mut s = FdSet::default();
        for fd in [5, 7, 6, 1, 3, 2] {
            assert!(s.insert(fd));
        }
        assert_eq!(s.0, vec![(1, 3), (5, 7)]);
        assert!(!s.insert(6));
        assert_eq!(FdSet::decode(&[]), None);
        assert_eq!(FdSet::decode(&[2]), None);
        // adjacent runs are not a valid encoding
        assert_eq!(FdSet::decode(&[1, 1, 0, 1, 0]), None);
        assert_eq!(FdSet::decode(&[1]), Some(FdSet::default()));
    }

    #[test]
    fn shift_meta_round_trips_a_summary() {
        let s = ShiftSummary {
            shift: 4,
            opened_fd: Some(10),
            opened_at: Some(1_700_000_000),
            closed_fd: None,
            closed_at: None,
            reported: None,
            first_fd: Some(10),
            last_fd: Some(12),
            received: Totals { documents: 3, ..Totals::default() },
        };
        let json = serde_json::to_string(&ShiftMeta::of(&s)).expect("json");
        let back: ShiftMeta = serde_json::from_str(&json).expect("back");
        assert_eq!(back.into_summary(4, s.received), s);
    }
}
