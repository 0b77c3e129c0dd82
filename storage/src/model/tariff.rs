//! Tariff plans.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::register::ValidationError;
use crate::ids::Timestamp;

/// A tariff plan: a paid period of a given length at a given price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffPlan {
    /// Unique name, e.g. "OFD-15".
    pub name: String,
    /// Length of the paid period, in days.
    pub period_days: u32,
    /// Price per period, in kopecks.
    pub price_kopecks: u64,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Creation time.
    pub created_at: Timestamp,
}

impl TariffPlan {
    /// The paid period.
    pub fn period(&self) -> Duration {
        Duration::from_secs(u64::from(self.period_days) * 86_400)
    }

    /// Checks name and period.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(ValidationError::Field {
                field: "name",
                rule: "must be 1 to 64 letters, digits, '-', '_' or '.'".into(),
            });
        }
        if self.period_days == 0 || self.period_days > 3660 {
            return Err(ValidationError::Field { field: "period_days", rule: "must be between 1 and 3660".into() });
        }
        Ok(())
    }
}
