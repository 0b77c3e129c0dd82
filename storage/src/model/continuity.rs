//! Which fiscal documents of one FN have been received: FD numbers are assigned by the
//! drive one after another, so "everything up to the highest FD seen, except a few
//! gaps" describes the set exactly and compactly. A follower that folds documents into
//! per-FN state keeps one of these to fold each FD once (re-reading a journal entry is
//! then harmless), and the gaps are the documents the operator never received.

use serde::{Deserialize, Serialize};

/// The FDs of one FN received so far: `low..=high` except the gaps.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FdLedger {
    /// Lowest FD received.
    #[serde(default)]
    pub low: Option<u32>,
    /// Highest FD received.
    pub high: Option<u32>,
    /// FDs below `high` not received yet, ascending (at most [`FdLedger::MAX_GAPS`]; a
    /// jump beyond that forgets the oldest ones).
    #[serde(default)]
    pub gaps: Vec<u32>,
}

impl FdLedger {
    /// Most gaps remembered.
    pub const MAX_GAPS: usize = 10_000;

    /// Whether `fd` was received.
    pub fn contains(&self, fd: u32) -> bool {
        match (self.low, self.high) {
            (Some(l), Some(h)) if (l..=h).contains(&fd) => self.gaps.binary_search(&fd).is_err(),
            _ => false,
        }
    }

    /// Records `fd`; false if it was already recorded.
    pub fn record(&mut self, fd: u32) -> bool {
        let (Some(low), Some(high)) = (self.low.or(self.high), self.high) else {
            self.low = Some(fd);
            self.high = Some(fd);
            return true;
        };
        self.low = Some(low);
        if fd > high {
            // high+1 .. fd-1 are missing (the most recent MAX_GAPS of them are kept)
            let missing = fd - high - 1;
            let keep = (missing as usize).min(Self::MAX_GAPS) as u32;
            self.gaps.extend((fd - keep)..fd);
            self.high = Some(fd);
        } else if fd < low {
            // an older document arrived late: fd+1 .. low-1 are missing
            let missing = low - fd - 1;
            let keep = (missing as usize).min(Self::MAX_GAPS) as u32;
            let mut older: Vec<u32> = ((fd + 1)..(fd + 1 + keep)).collect();
            older.append(&mut self.gaps);
            self.gaps = older;
            self.low = Some(fd);
        } else {
            match self.gaps.binary_search(&fd) {
                Ok(i) => {
                    self.gaps.remove(i);
                }
                Err(_) => return false,
            }
        }
        if self.gaps.len() > Self::MAX_GAPS {
            // forget the oldest gaps: the FDs below the kept ones count as received
            let excess = self.gaps.len() - Self::MAX_GAPS;
            self.gaps.drain(..excess);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fd_is_recorded_once_and_gaps_are_what_never_arrived() {
        let mut l = FdLedger::default();
        assert!(!l.contains(5));
        assert!(l.record(5));
        assert!(!l.record(5), "again");
        assert!(l.record(9));
        assert_eq!(l.gaps, vec![6, 7, 8]);
        assert!(l.record(7));
        assert!(!l.record(7));
        assert_eq!(l.gaps, vec![6, 8]);
        assert!(l.contains(5) && l.contains(7) && l.contains(9) && !l.contains(6) && !l.contains(10));
        assert!(l.record(3), "an older document arriving late is new");
        assert_eq!(l.gaps, vec![4, 6, 8]);
        assert!(!l.record(3));
        assert!(l.record(4));
        assert_eq!((l.low, l.high, l.gaps.clone()), (Some(3), Some(9), vec![6, 8]));
    }

    #[test]
    fn a_huge_jump_keeps_the_gaps_bounded() {
        let mut l = FdLedger::default();
        l.record(1);
        l.record(1_000_000);
        assert_eq!(l.gaps.len(), FdLedger::MAX_GAPS);
        assert_eq!(l.gaps.first(), Some(&(1_000_000 - 10_000)));
        assert!(l.record(999_999));
        assert!(l.contains(999_999));
    }
}
