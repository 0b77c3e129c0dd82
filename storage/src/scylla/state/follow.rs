//! The journal followers' state in this process: the deriver's partitions (this node's
//! share, under their leases) and the FNS follower's partitions (those the forwarder asks
//! about). Kept here, behind the store's shared state, so that the background task, the
//! trait methods and `settle()` see the same thing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::derive::DeriveState;
use super::fns::FnsState;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Follow {
    /// Derived-view partitions held, with their state.
    pub(crate) derive: tokio::sync::Mutex<HashMap<u16, DeriveState>>,
    /// Below which position (µs) the deriver of each partition held here has surely
    /// applied every entry that had landed (`DeriveState::surely_to`), for `settle()`.
    pub(crate) derived_to: Mutex<HashMap<u16, i64>>,
    pub(crate) fns: Mutex<HashMap<u16, Arc<tokio::sync::Mutex<FnsState>>>>,
    /// Partitions this process appended to since the deriver last looked.
    pub(crate) dirty: Mutex<std::collections::BTreeSet<u16>>,
    /// Journal partitions whose derived views lag beyond the bound, with the lag (µs):
    /// their appends are refused (`backpressure`).
    pub(crate) lagging: Mutex<std::collections::BTreeMap<u16, i64>>,
    /// Deriver lease groups this node holds (kept by the upkeep task).
    pub(crate) derive_groups: Mutex<Vec<u16>>,
    /// Partitions whose next deriver round must re-read the settle window (`settle()`).
    pub(crate) reread: Mutex<std::collections::BTreeSet<u16>>,
}

impl Follow {
    pub(crate) fn fns_get(&self, part: u16) -> Option<Arc<tokio::sync::Mutex<FnsState>>> {
        self.fns.lock().ok()?.get(&part).cloned()
    }

    pub(crate) fn fns_remove(&self, part: u16) {
        if let Ok(mut m) = self.fns.lock() {
            m.remove(&part);
        }
    }

    /// Inserts a state unless another task did first; returns the one in place.
    pub(crate) fn fns_insert(&self, part: u16, st: FnsState) -> Arc<tokio::sync::Mutex<FnsState>> {
        match self.fns.lock() {
            Ok(mut m) => m.entry(part).or_insert_with(|| Arc::new(tokio::sync::Mutex::new(st))).clone(),
            Err(_) => Arc::new(tokio::sync::Mutex::new(st)),
        }
    }

    pub(crate) fn set_derived_to(&self, part: u16, pos: i64) {
        if let Ok(mut m) = self.derived_to.lock() {
            m.insert(part, pos);
        }
    }

    pub(crate) fn forget_derived(&self, part: u16) {
        if let Ok(mut m) = self.derived_to.lock() {
            m.remove(&part);
        }
    }

    pub(crate) fn mark_dirty(&self, part: u16) {
        if let Ok(mut d) = self.dirty.lock() {
            d.insert(part);
        }
    }

    pub(crate) fn derive_groups(&self) -> Vec<u16> {
        self.derive_groups.lock().map(|g| g.clone()).unwrap_or_default()
    }

    pub(crate) fn set_derive_groups(&self, groups: Vec<u16>) {
        if let Ok(mut g) = self.derive_groups.lock() {
            *g = groups;
        }
    }

    pub(crate) fn want_reread(&self, part: u16) {
        if let Ok(mut d) = self.reread.lock() {
            d.insert(part);
        }
    }

    pub(crate) fn take_reread(&self, part: u16) -> bool {
        self.reread.lock().map(|mut d| d.remove(&part)).unwrap_or(false)
    }

    pub(crate) fn take_dirty(&self) -> std::collections::BTreeSet<u16> {
        self.dirty.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default()
    }

    pub(crate) fn derived_to(&self) -> HashMap<u16, i64> {
        self.derived_to.lock().map(|m| m.clone()).unwrap_or_default()
    }
}
