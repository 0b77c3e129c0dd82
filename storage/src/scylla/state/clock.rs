//! The last measurement of this machine's clock against the cluster's (behaviour:
//! `super::super::clock`).

use std::sync::Mutex;
use std::time::Instant;

/// The last measurement.
#[derive(Debug, Default)]
pub(crate) struct ClockState {
    /// (offset in ms, local minus cluster; whether it is beyond the bound; when measured).
    pub(crate) last: Mutex<Option<(i64, bool, Instant)>>,
    /// Bumped whenever the clock comes back in bounds: the followers then sweep the recent
    /// past for entries a wrong clock may have let them pass.
    pub(crate) recovered: std::sync::atomic::AtomicU64,
}

impl ClockState {
    /// A message when the last measurement was out of bounds.
    pub(crate) fn out_of_bounds(&self) -> Option<String> {
        let g = self.last.lock().ok()?;
        match *g {
            Some((off, true, _)) => Some(format!(
                "this node's clock is {off} ms off the cluster's: appends refused until it is corrected (NTP)"
            )),
            _ => None,
        }
    }

    pub(crate) fn set(&self, offset_ms: i64, bad: bool) {
        if let Ok(mut g) = self.last.lock() {
            if !bad && g.is_some_and(|(_, was_bad, _)| was_bad) {
                self.recovered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            *g = Some((offset_ms, bad, Instant::now()));
        }
    }

    /// How many times the clock came back in bounds.
    pub(crate) fn recoveries(&self) -> u64 {
        self.recovered.load(std::sync::atomic::Ordering::Relaxed)
    }
}
