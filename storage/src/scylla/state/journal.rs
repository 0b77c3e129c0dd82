//! Positions and entries of the journal (the rows `journal` keeps; see `super::super::journal`).

use crate::ids::Timestamp;
use crate::model::{DocumentKey, DocumentRecord};

use crate::scylla::keys::hour_of_pos;

/// The follower that maintains the derived views.
pub(crate) const DERIVE: &str = "derive";
/// The follower that forwards documents to the FNS.
pub(crate) const FNS: &str = "fns";

/// A position in a partition: entries are ordered by (pos, fn, fd).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    pub pos: i64,
    pub fn_text: String,
    pub fd: i64,
}

impl Pos {
    /// Just before every entry at `pos` (a cursor value).
    pub(crate) fn before(pos: i64) -> Self {
        Self { pos, fn_text: String::new(), fd: -1 }
    }

    pub(crate) fn hour(&self) -> i32 {
        hour_of_pos(self.pos)
    }
}

/// One journal row.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub at: Pos,
    /// The document's record without raw bytes and ack.
    pub meta: DocumentRecord,
    /// Written by a duplicate answer.
    pub dup: bool,
    /// The FNS forwarder's: delivered (or nothing to deliver).
    pub done: bool,
    pub next_attempt_at: Option<Timestamp>,
    pub attempts: u32,
}

impl Entry {
    pub(crate) fn key(&self) -> DocumentKey {
        self.meta.key()
    }
}
