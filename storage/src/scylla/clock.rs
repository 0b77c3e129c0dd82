//! This machine's clock against the cluster's.
//!
//! Journal positions are the appending node's wall clock, and a journal follower never
//! passes positions younger than the settle time by its own clock. A node whose clock is
//! far behind the others would write entries behind a follower's cursor, where only the
//! follower's re-read of its last settle window could find them; far ahead, its entries
//! would hold cursors back. So every node measures its offset from the coordinator's
//! clock (`toUnixTimestamp(now())` of `system.local`, half the round trip corrected) every
//! [`CHECK_EVERY`], exports it as a metric, and refuses appends (and reports `Degraded`,
//! so readiness fails) while it exceeds a quarter of the settle time.

use std::time::Duration;

use scylla::statement::{Consistency, Statement};
use scylla::value::CqlTimestamp;

use super::keys;
use super::store::ScyllaStore;
use crate::error::StoreError;
use crate::metrics::CLOCK_OFFSET_SECONDS;

/// How often the offset is measured.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(15);

/// Offset of `local` from the cluster's `remote` reading, both in ms, with the round
/// trip: local minus the cluster's time at the moment the reading was taken (the middle
/// of the round trip).
pub(super) fn offset(sent_ms: i64, received_ms: i64, remote_ms: i64) -> i64 {
    let middle = sent_ms + (received_ms - sent_ms) / 2;
    middle - remote_ms
}

impl ScyllaStore {
    /// Measures the offset once and records it (a failed measurement keeps the last).
    pub(super) async fn measure_clock(&self) {
        match self.read_cluster_clock().await {
            Ok(off) => {
                let bound = i64::try_from(self.cfg.max_clock_skew().as_millis()).unwrap_or(i64::MAX);
                let bad = off.abs() > bound;
                metrics::gauge!(CLOCK_OFFSET_SECONDS).set(off as f64 / 1000.0);
                if bad {
                    tracing::error!(
                        offset_ms = off,
                        bound_ms = bound,
                        "this node's clock is off the cluster's beyond the bound: appends are refused until NTP corrects it"
                    );
                }
                self.clock.set(off, bad);
            }
            Err(e) => tracing::debug!(error = %e, "measuring the clock offset from the cluster"),
        }
    }

    async fn read_cluster_clock(&self) -> Result<i64, StoreError> {
        let mut s = Statement::new("SELECT toUnixTimestamp(now()) FROM system.local");
        s.set_consistency(Consistency::One);
        s.set_request_timeout(Some(self.cfg.request_timeout()));
        let sent = keys::now_micros() / 1000;
        let qr = self.session.query_unpaged(s, ()).await.map_err(|e| super::errors::from_execution(&e))?;
        let received = keys::now_micros() / 1000;
        let rows = qr.into_rows_result().map_err(|e| super::errors::from_into_rows(&e))?;
        let (remote,) = rows
            .maybe_first_row::<(CqlTimestamp,)>()
            .map_err(|e| super::errors::from_maybe_first_row(&e))?
            .ok_or_else(|| StoreError::Corrupt("system.local returned no row".into()))?;
        Ok(offset(sent, received, remote.0))
    }

    /// `Err` while the clock is out of bounds (appends refuse).
    pub(super) fn check_clock(&self) -> Result<(), StoreError> {
        match self.clock.out_of_bounds() {
            Some(m) => Err(StoreError::Unavailable(m)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scylla::state::ClockState;

    #[test]
    fn offset_is_taken_at_the_middle_of_the_round_trip() {
        // sent at 1000, answered at 1100, server said 1040: we were 10 ms ahead
        assert_eq!(offset(1000, 1100, 1040), 10);
        assert_eq!(offset(1000, 1000, 1500), -500);
    }

    #[test]
    fn an_offset_out_of_bounds_is_reported_until_corrected() {
        let c = ClockState::default();
        assert_eq!(c.out_of_bounds(), None);
        c.set(-4000, true);
        assert!(c.out_of_bounds().is_some_and(|m| m.contains("-4000 ms")));
        assert_eq!(c.recoveries(), 0);
        c.set(3, false);
        assert_eq!(c.out_of_bounds(), None);
        assert_eq!(c.recoveries(), 1, "back in bounds: the followers sweep");
    }
}
