//! `[resend]` — resend jobs.

use std::time::Duration;

use super::values::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Resend jobs: one node at a time runs them (lease `resend-runner`), through the FNS
/// endpoint of `[fns]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ResendConfig {
    /// How often the runner looks for pending jobs.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// Documents read per page (1 to 1000); progress is persisted after every page.
    pub page_size: u32,
    /// Delivery requests in flight at once.
    pub concurrency: usize,
    /// Attempts per document before it counts as failed for the job.
    pub max_attempts: u32,
    /// Delay before the first retry of a document; doubles with every attempt.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub retry_initial: Duration,
    /// The runner lease lives this long without renewal.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub lease_ttl: Duration,
}

impl Default for ResendConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            page_size: 500,
            concurrency: 16,
            max_attempts: 5,
            retry_initial: Duration::from_millis(500),
            lease_ttl: Duration::from_secs(30),
        }
    }
}
