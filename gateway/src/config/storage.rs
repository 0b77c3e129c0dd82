//! `[storage]` — where documents are stored.

use std::time::Duration;

use super::values::{FreeSpace, duration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Storage backend: the embedded store in `data_dir` (one gateway), or a CQL cluster
/// (ScyllaDB in production; Apache Cassandra speaks the same protocol) shared by several
/// gateways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `embedded` (default, in `data_dir`) or `scylla` (a CQL cluster; apply the schema
    /// first with `gateway --config F migrate`). With `scylla`, `signer.key_hex` must be
    /// set, the same on every gateway sharing the keyspace.
    pub backend: String,
    /// Embedded: `sync_all` (fsync, default) or `sync_data` (fdatasync).
    pub sync: String,
    /// Embedded: most documents in one group commit. Every document of a group waits for
    /// the whole group, so after a stall a large backlog is answered all at once; a small
    /// cap answers it in slices at the price of more syncs. Measured on 2 shared cores
    /// (BENCHMARKS.md, "The latency tail"): 64 cut p99 at half load by a fifth to a third and
    /// the closed-loop maximum by about 6 %; 16–32 were worse on both.
    pub max_batch: usize,
    /// Embedded: append requests queued for the writer at most.
    pub queue_capacity: usize,
    /// Embedded: free space kept on the file system of the store (`data_dir/store`). Below
    /// it no new document is acknowledged (registers get no answer and retry) and admin
    /// writes are refused, while reads and FNS delivery bookkeeping go on; `/readyz` fails
    /// with the reason and `ofd_storage_intake_paused` is 1. Intake resumes by itself once
    /// a tenth more (at least 1 MiB) is free. A size (`"256MiB"`; `"0"`: no watermark), a
    /// share of the file system (`"5%"`, at most 50%), or the smaller of both. The default
    /// keeps 256 MiB — room for the store to flush a full 64 MiB memtable, start a new
    /// 64 MiB journal and compact — but only a tenth of a file system smaller than
    /// 2.5 GiB.
    pub min_free_space: FreeSpace,
    /// CQL contact points (`host:port`); list two or three so that one down node does not
    /// stop a restart.
    pub nodes: Vec<String>,
    /// CQL keyspace.
    pub keyspace: String,
    /// The local datacenter: requests go to its replicas, `local_quorum` counts them.
    pub local_dc: String,
    /// Write consistency (`local_quorum`, `quorum`, `each_quorum`, `all`; anything weaker
    /// could acknowledge a document held by one replica, and is refused).
    pub consistency: String,
    /// Timeout of one CQL request. A timeout is an unknown outcome: no acknowledgment, the
    /// register retries.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
    /// Replication factor in the local datacenter, used by `gateway migrate` when it
    /// creates the keyspace (an existing keyspace is left as it is).
    pub replication_factor: u32,
    /// Refuse to start on a keyspace replicated fewer times than this in the local
    /// datacenter (3: a quorum of 3 survives one node loss; 1 only for a single test
    /// node).
    pub min_replication_factor: u32,
    /// How long a journal entry may take to become visible; the derived views (time index,
    /// activity) and FNS forwarding never pass younger entries for good, and an append
    /// whose entry took more than half of it is not acknowledged. At least twice
    /// `request_timeout`.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub journal_settle: Duration,
    /// Send an idempotent request to a second replica when the first has not answered
    /// after this long (`0s`: off): bounds the stall of a node that died but is not marked
    /// down yet.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub speculative_delay: Duration,
    /// How far behind the derived views (time index, register activity, FD gaps) of a
    /// journal partition may fall before appends to it are refused (registers get no
    /// answer and retransmit later; `/readyz` says why). At least 3 × `journal_settle`.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub max_derived_lag: Duration,
    /// Start on a cluster whose `commitlog_sync` is `periodic` (replicas answer writes
    /// from memory, so a power cut can lose acknowledged documents). Refused by default.
    pub allow_periodic_commitlog: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: "embedded".into(),
            sync: "sync_all".into(),
            max_batch: 4096,
            queue_capacity: 16_384,
            min_free_space: FreeSpace::default(),
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "ofd".into(),
            local_dc: "dc1".into(),
            consistency: "local_quorum".into(),
            request_timeout: Duration::from_secs(3),
            replication_factor: 3,
            min_replication_factor: 3,
            journal_settle: Duration::from_secs(10),
            speculative_delay: Duration::from_millis(200),
            max_derived_lag: Duration::from_secs(300),
            allow_periodic_commitlog: false,
        }
    }
}
