//! `[shutdown]` — graceful shutdown.

use std::time::Duration;

use super::values::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Graceful shutdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Idle connections are closed at random moments over this period, so that thousands
    /// of registers do not reconnect at once; in-flight documents finish first.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub drain_period: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { drain_period: Duration::from_secs(10) }
    }
}
