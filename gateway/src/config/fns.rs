//! `[fns]` — forwarding to the FNS.

use std::time::Duration;

use super::values::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Forwarding to the FNS. Every stored document is queued in the outbox atomically with
/// its write; the forwarder delivers it at least once, idempotent by (FN, FD).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FnsConfig {
    /// Endpoint receiving one JSON POST per document (`http://` or `https://`). Unset:
    /// forwarding is off and documents wait in the outbox (the backlog metrics show them).
    /// For demos and tests run the local receiver, `fns-receiver --listen 127.0.0.1:9500`,
    /// and set `http://127.0.0.1:9500/documents` (docs/fns.md).
    pub url: Option<String>,
    /// Deadline of one delivery request, connection included.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Delivery requests in flight at once (per node).
    pub concurrency: usize,
    /// Due deliveries taken from one partition per round (1 to 1000).
    pub batch: u32,
    /// Pause between rounds that found nothing to deliver.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// Delay before the first retry of a failed delivery; it doubles with every attempt
    /// (with jitter) up to `retry_max`.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub retry_initial: Duration,
    /// Longest delay between two attempts of one document.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub retry_max: Duration,
    /// Delivery partitions are leased for this long and renewed at a third of it; a dead
    /// node's partitions are taken over when its leases expire.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub lease_ttl: Duration,
    /// How often the backlog size and the age of the oldest undelivered document are
    /// sampled for the metrics.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub backlog_interval: Duration,
}

impl Default for FnsConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout: Duration::from_secs(10),
            concurrency: 32,
            batch: 500,
            poll_interval: Duration::from_secs(1),
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            lease_ttl: Duration::from_secs(30),
            backlog_interval: Duration::from_secs(10),
        }
    }
}
