//! `[reports]` — revenue reports, shifts and FD continuity (admin API `/v1/reports`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Revenue reports: how local days are counted and how long a range may be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// IANA time zone of registers without their own (`time_zone` of a register): it
    /// places documents without a readable time (encrypted bodies, filed by the hour they
    /// were received) on the owner's local day, and resolves `today`/`yesterday`.
    pub default_time_zone: String,
    /// The longest report range in days (`from` to `to`, both included).
    pub max_days: u32,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        Self { default_time_zone: "Europe/Moscow".into(), max_days: 400 }
    }
}

impl ReportsConfig {
    /// Checks the zone against the tz database and the range limit.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Err(e) = jiff::tz::TimeZone::get(self.default_time_zone.trim()) {
            return Err((
                "reports.default_time_zone",
                format!("{:?} is not an IANA time zone (e.g. Europe/Moscow): {e}", self.default_time_zone),
            ));
        }
        if !(1..=3660).contains(&self.max_days) {
            return Err(("reports.max_days", "must be between 1 and 3660".into()));
        }
        Ok(())
    }
}
