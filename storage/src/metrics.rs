//! Names of the metrics the storage layer emits. Descriptions, units and buckets are
//! registered by the gateway's metrics catalogue, which lists every metric of the
//! platform in one place; the storage crate only records values under these names.

/// Histogram: documents per group commit (embedded backend).
pub const COMMIT_BATCH_DOCUMENTS: &str = "ofd_storage_commit_batch_documents";
/// Histogram: seconds from the start of a group commit's write to the end of its sync.
pub const COMMIT_SECONDS: &str = "ofd_storage_commit_seconds";
/// Gauge: append requests waiting for the group-commit writer.
pub const COMMIT_QUEUE_DEPTH: &str = "ofd_storage_commit_queue_depth";
/// Counter: failed commits, by `error` code (bounded: `StoreError::code`).
pub const COMMIT_ERRORS_TOTAL: &str = "ofd_storage_commit_errors_total";
/// Gauge: 1 while the store is poisoned.
pub const POISONED: &str = "ofd_storage_poisoned";
/// Gauge: bytes available on the file system of the embedded store's directory (to
/// unprivileged users), at the last look (every second, and as the writer writes).
pub const FREE_BYTES: &str = "ofd_storage_free_bytes";
/// Gauge: the free space the embedded store keeps (`min_free_space` resolved to bytes);
/// below it intake pauses.
pub const MIN_FREE_BYTES: &str = "ofd_storage_min_free_bytes";
/// Gauge: 1 while the embedded store refuses new documents and admin writes for lack of
/// disk space (below `min_free_space`, or a journal write failed with ENOSPC and the
/// store has not reopened yet).
pub const INTAKE_PAUSED: &str = "ofd_storage_intake_paused";
/// Histogram: seconds per backend write operation, by `op` (bounded set of operation
/// names; cluster backend).
pub const OPERATION_SECONDS: &str = "ofd_storage_operation_seconds";
/// Gauge: this node's clock minus the CQL cluster's, seconds (cluster backend).
pub const CLOCK_OFFSET_SECONDS: &str = "ofd_storage_clock_offset_seconds";
/// Gauge: seconds between now and the oldest journal entry a follower has not processed,
/// by `follower` (`derive`, `fns`) (cluster backend; the lag of derived views).
pub const JOURNAL_LAG_SECONDS: &str = "ofd_storage_journal_lag_seconds";
/// Gauge: the largest lag of any journal partition's derived views, seconds, as this node
/// measures it (cluster backend); appends to a partition beyond `max_derived_lag` are
/// refused.
pub const DERIVED_LAG_SECONDS: &str = "ofd_storage_derived_lag_seconds";
/// Counter: journal entries processed by the followers of this node, by `follower`.
pub const JOURNAL_ENTRIES_TOTAL: &str = "ofd_storage_journal_entries_total";
/// Counter: follower rounds that failed (they are retried), by `follower`.
pub const JOURNAL_ERRORS_TOTAL: &str = "ofd_storage_journal_errors_total";
/// Gauge: journal partitions whose lease this node holds, by `follower`.
pub const JOURNAL_PARTITIONS: &str = "ofd_storage_journal_partitions";
/// Counter: appends not acknowledged by the store's own rules, by `reason`: `clock_skew`
/// (refused before anything was written), `slow_journal` (both writes done, but the
/// journal entry took over half the settle time; the register retransmits and gets the
/// stored answer), `derived_lag` (the partition's derived views lag beyond
/// `max_derived_lag`; nothing written), `disk_space` (embedded store: free disk space
/// below `min_free_space`; nothing written).
pub const APPENDS_REFUSED_TOTAL: &str = "ofd_storage_appends_refused_total";
/// Counter: journal entries a sweep found that a follower had passed (a clock error on
/// some node), by `follower`.
pub const SWEPT_TOTAL: &str = "ofd_storage_journal_swept_total";
/// Gauge: seconds since the report aggregates last reflected every stored document
/// (embedded backend; 0 while caught up; the cluster backend's fold is part of the
/// deriver, whose lag is `ofd_storage_journal_lag_seconds{follower="derive"}`).
pub const REPORT_LAG_SECONDS: &str = "ofd_storage_report_lag_seconds";
/// Counter: report aggregation steps that failed and are retried — a fold, a scan, a
/// flush (embedded backend).
pub const REPORT_ERRORS_TOTAL: &str = "ofd_storage_report_errors_total";
