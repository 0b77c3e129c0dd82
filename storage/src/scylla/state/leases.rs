//! The leases this process holds, with their fencing bounds (behaviour:
//! `super::super::leases`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::scylla::keys;

/// A lease this process holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    /// Local clock (µs) when the last successful take/renewal was sent.
    pub(crate) renewed_at_us: i64,
    pub(crate) ttl: Duration,
}

/// The leases this process holds, with their fencing bounds, and the fingerprint this
/// node announces.
#[derive(Debug, Default)]
pub(crate) struct LeaseBook {
    pub(crate) held: Mutex<HashMap<String, Held>>,
    pub(crate) fingerprint: Mutex<String>,
}

impl LeaseBook {
    pub(crate) fn record(&self, name: &str, h: Held) {
        if let Ok(mut m) = self.held.lock() {
            m.insert(name.to_owned(), h);
        }
    }

    pub(crate) fn forget(&self, name: &str) {
        if let Ok(mut m) = self.held.lock() {
            m.remove(name);
        }
    }

    /// Whether this process believes it holds `name`.
    pub(crate) fn holds(&self, name: &str) -> bool {
        self.held.lock().is_ok_and(|m| m.contains_key(name))
    }

    /// Names of the leases held (or believed held).
    pub(crate) fn names(&self) -> Vec<String> {
        self.held.lock().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    /// The write timestamp (µs) for a row of lease `name`, or `None` when the lease is
    /// not held or too close to its expiry to write safely.
    pub(crate) fn fenced_ts(&self, name: &str, margin: Duration) -> Option<i64> {
        let h = *self.held.lock().ok()?.get(name)?;
        let now = keys::monotonic_now();
        let ttl = i64::try_from(h.ttl.as_micros()).unwrap_or(i64::MAX);
        let margin = i64::try_from(margin.as_micros()).unwrap_or(i64::MAX);
        (now < h.renewed_at_us.saturating_add(ttl).saturating_sub(margin)).then_some(now)
    }
}

/// The number of partitions out of `total` that one of `live` nodes should hold: an even
/// share, rounded up so that every partition has a taker.
pub(crate) fn fair_share(total: usize, live: usize) -> usize {
    total.div_ceil(live.max(1))
}
