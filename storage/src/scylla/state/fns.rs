//! What the FNS follower of a journal partition keeps in this process (behaviour:
//! `super::super::delivery`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use super::journal::Pos;
use crate::ids::Timestamp;
use crate::model::{BacklogStats, Delivery, DeliveryStatus, DocumentKey};

/// One pending entry.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) key: DocumentKey,
    pub(crate) queued_at: Timestamp,
    pub(crate) next_attempt_at: Timestamp,
    pub(crate) attempts: u32,
    pub(crate) last_error: Option<String>,
}

/// What this process knows of one partition's journal, as its FNS follower.
#[derive(Debug)]
pub(crate) struct FnsState {
    pub(crate) cursor: Pos,
    pub(crate) read_to: Pos,
    /// Every entry positioned before this (µs) has been read here (or was behind the
    /// cursor this state started from): the cursor never passes it.
    pub(crate) safe_to: i64,
    pub(crate) pending: BTreeMap<Pos, Pending>,
    pub(crate) by_key: HashMap<DocumentKey, Pos>,
    /// Entries delivered whose marks are being written: they hold the cursor back (a
    /// failed mark puts the entry back in `pending`).
    pub(crate) marking: BTreeSet<Pos>,
    /// Entries looked at within the settle window behind `read_to`.
    pub(crate) seen: HashSet<Pos>,
    /// Delivered before their entry was read here.
    pub(crate) early: HashSet<DocumentKey>,
    pub(crate) last_reread: Instant,
    pub(crate) last_persist: Instant,
    pub(crate) last_sweep: Instant,
    pub(crate) swept_at_recovery: u64,
    /// When a caller last used it (a backlog row of an unused partition is not written).
    pub(crate) last_used: Instant,
}

impl FnsState {
    pub(crate) fn new(cursor: Pos) -> Self {
        let long_ago = Instant::now().checked_sub(Duration::from_secs(3600)).unwrap_or_else(Instant::now);
        Self {
            read_to: cursor.clone(),
            safe_to: cursor.pos,
            cursor,
            pending: BTreeMap::new(),
            by_key: HashMap::new(),
            marking: BTreeSet::new(),
            seen: HashSet::new(),
            early: HashSet::new(),
            last_reread: long_ago,
            last_persist: long_ago,
            last_sweep: Instant::now(),
            swept_at_recovery: 0,
            last_used: Instant::now(),
        }
    }

    pub(crate) fn stats(&self) -> BacklogStats {
        BacklogStats {
            pending: self.pending.len() as u64,
            oldest_queued_at: self.pending.values().map(|p| p.queued_at).min(),
        }
    }

    pub(crate) fn remove(&mut self, key: &DocumentKey) -> Option<(Pos, Pending)> {
        let at = self.by_key.remove(key)?;
        self.pending.remove(&at).map(|p| (at, p))
    }

    /// Puts an entry back (its mark could not be written).
    pub(crate) fn restore(&mut self, at: Pos, p: Pending) {
        self.marking.remove(&at);
        self.by_key.insert(p.key, at.clone());
        self.pending.insert(at, p);
    }

    /// The first position not known to be done: the cursor may not pass it.
    pub(crate) fn first_open(&self) -> Option<i64> {
        let a = self.pending.keys().next().map(|p| p.pos);
        let b = self.marking.first().map(|p| p.pos);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

pub(crate) fn delivery_of(part: u16, p: &Pending) -> Delivery {
    Delivery {
        key: p.key,
        partition: part,
        status: DeliveryStatus::Pending,
        queued_at: p.queued_at,
        attempts: p.attempts,
        next_attempt_at: p.next_attempt_at,
        last_attempt_at: None,
        last_error: p.last_error.clone(),
        delivered_at: None,
    }
}
