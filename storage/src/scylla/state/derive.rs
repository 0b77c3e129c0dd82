//! What the deriver of a journal partition keeps in this process, and the activity row it
//! folds documents into (behaviour: `super::super::derive`).

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::journal::Pos;
use super::reports::ReportCache;
use crate::model::{DocumentRecord, FdLedger, RegisterActivity};

/// The activity row of one (register, FN).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FnActivity {
    /// What the documents of this FN said.
    pub activity: RegisterActivity,
    /// Which FDs were folded in (and which are missing).
    pub ledger: FdLedger,
}

impl FnActivity {
    /// Folds a document in once; false if its FD was folded before.
    pub(crate) fn fold(&mut self, doc: &DocumentRecord) -> bool {
        if !self.ledger.record(doc.fd) {
            return false;
        }
        self.activity.absorb(doc);
        true
    }
}

/// What the deriver of one partition knows in this process.
#[derive(Debug)]
pub(crate) struct DeriveState {
    /// The persisted cursor.
    pub(crate) cursor: Pos,
    pub(crate) last_persist: Instant,
    /// Everything up to here was read.
    pub(crate) read_to: Pos,
    /// Entries applied within the settle window behind `read_to` (for the re-read).
    pub(crate) seen: BTreeSet<Pos>,
    pub(crate) last_reread: Instant,
    /// Every entry before this position (µs) whose write had landed when this node
    /// looked was applied: the `until` of the last round that also re-read the settle
    /// window (a round without the re-read can pass an entry that landed late).
    pub(crate) surely_to: i64,
    /// Activity rows of (register, FN), as last written or read.
    pub(crate) activity: HashMap<(String, String), FnActivity>,
    /// Report state of the partition's FNs, as last written or read (`fold`).
    pub(crate) reports: ReportCache,
    /// Hour partitions below this were deleted (both followers had passed them).
    pub(crate) pruned_below: i32,
    pub(crate) last_prune: Instant,
    pub(crate) last_sweep: Instant,
    /// The clock's recovery count at the last sweep.
    pub(crate) swept_at_recovery: u64,
}

impl DeriveState {
    /// Everything before this position (µs) that had landed was read and applied.
    pub(crate) fn surely_to(&self) -> i64 {
        self.surely_to
    }

    pub(crate) fn new(cursor: Pos) -> Self {
        Self {
            read_to: cursor.clone(),
            surely_to: cursor.pos,
            cursor,
            last_persist: Instant::now(),
            seen: BTreeSet::new(),
            last_reread: Instant::now(),
            activity: HashMap::new(),
            reports: ReportCache::new(),
            pruned_below: i32::MIN,
            last_prune: Instant::now(),
            last_sweep: Instant::now(),
            swept_at_recovery: 0,
        }
    }
}
