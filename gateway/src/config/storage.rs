//! `[storage]` — where documents are stored.

use std::time::Duration;

use super::values::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Storage backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `embedded` (default, in `data_dir`) or `scylla`.
    pub backend: String,
    /// Embedded: `sync_all` (fsync, default) or `sync_data` (fdatasync).
    pub sync: String,
    /// Embedded: most documents in one group commit.
    pub max_batch: usize,
    /// Embedded: append requests queued for the writer at most.
    pub queue_capacity: usize,
    /// ScyllaDB contact points.
    pub nodes: Vec<String>,
    /// ScyllaDB keyspace.
    pub keyspace: String,
    /// ScyllaDB local datacenter.
    pub local_dc: String,
    /// ScyllaDB write consistency (`local_quorum`, `quorum`, `each_quorum`, `all`).
    pub consistency: String,
    /// ScyllaDB request timeout.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
    /// ScyllaDB replication factor in the local datacenter, used by `gateway migrate` when
    /// it creates the keyspace (an existing keyspace is left as it is).
    pub replication_factor: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: "embedded".into(),
            sync: "sync_all".into(),
            max_batch: 4096,
            queue_capacity: 16_384,
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "ofd".into(),
            local_dc: "dc1".into(),
            consistency: "local_quorum".into(),
            request_timeout: Duration::from_secs(5),
            replication_factor: 3,
        }
    }
}
