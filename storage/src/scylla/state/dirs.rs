//! The directory entries this process already wrote (behaviour: `super::super::directory`).

use std::collections::HashSet;
use std::sync::Mutex;

/// Entries already written to the directory tables by this process (they are idempotent
/// upserts, so the cache only saves writes; it is cleared when it grows large).
#[derive(Debug, Default)]
pub(crate) struct DirCache(Mutex<HashSet<String>>);

impl DirCache {
    pub(crate) const MAX: usize = 500_000;

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.0.lock().map(|s| s.contains(key)).unwrap_or(false)
    }

    pub(crate) fn remove(&self, key: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.remove(key);
        }
    }

    pub(crate) fn insert(&self, key: String) {
        if let Ok(mut s) = self.0.lock() {
            if s.len() >= Self::MAX {
                s.clear();
            }
            s.insert(key);
        }
    }
}
