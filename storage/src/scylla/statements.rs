//! Every CQL statement the store runs, prepared once at connect.
//!
//! Prepared statements are what make routing token- and shard-aware: the driver learns
//! which bind markers form the partition key and sends each request straight to a
//! replica (and to the right shard of it). Partition keys are therefore always bound
//! (`?`), never literals — except the constant `shard = 0` of a few tiny single-partition
//! tables, which has no routing to gain.
//!
//! Each statement has a kind:
//! * `Write`: the write execution profile (configured consistency, LOCAL_QUORUM by
//!   default) and `is_idempotent = true` — every write is an upsert or delete of
//!   deterministic keys with a bound or client-generated timestamp, so the driver may
//!   retry it on another node after a connection failure (the default retry policy still
//!   never retries a server-side write timeout, which surfaces as `StoreError::Timeout`).
//! * `Read`: the read profile (same level, or LOCAL_QUORUM for EACH_QUORUM writes),
//!   idempotent, paged.
//! * `Lwt`: lightweight transactions — the document insert (first writer wins) and the
//!   leases; not idempotent (the driver never retries them), serial consistency
//!   LOCAL_SERIAL.

use scylla::client::execution_profile::ExecutionProfileHandle;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::errors;
use crate::error::StoreError;

/// Rows per page of paged reads.
pub const PAGE_SIZE: i32 = 1000;

/// How a statement executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Write profile, idempotent.
    Write,
    /// Read profile, idempotent, paged.
    Read,
    /// Lightweight transaction: write profile with LOCAL_SERIAL, not idempotent.
    Lwt,
    /// A conditional insert that is safe to repeat (`IF NOT EXISTS` of a row whose
    /// content is fixed by the caller: a repeat that finds its own row is recognised by
    /// the caller), so the driver may retry it on another coordinator.
    Cas,
}

/// The execution profiles statements are bound to.
#[derive(Debug, Clone)]
pub struct Profiles {
    /// Writes (configured consistency).
    pub write: ExecutionProfileHandle,
    /// Reads.
    pub read: ExecutionProfileHandle,
    /// Lightweight transactions.
    pub lwt: ExecutionProfileHandle,
}

async fn prep(
    session: &Session,
    keyspace: &str,
    kind: Kind,
    cql: &str,
    profiles: &Profiles,
) -> Result<PreparedStatement, StoreError> {
    let text = cql.replace("{ks}", keyspace);
    let mut p = session.prepare(text.as_str()).await.map_err(|e| errors::from_prepare(&e))?;
    match kind {
        Kind::Write => {
            p.set_execution_profile_handle(Some(profiles.write.clone()));
            p.set_is_idempotent(true);
        }
        Kind::Read => {
            p.set_execution_profile_handle(Some(profiles.read.clone()));
            p.set_is_idempotent(true);
            p.set_page_size(PAGE_SIZE);
        }
        Kind::Lwt => {
            p.set_execution_profile_handle(Some(profiles.lwt.clone()));
            p.set_is_idempotent(false);
        }
        Kind::Cas => {
            p.set_execution_profile_handle(Some(profiles.lwt.clone()));
            p.set_is_idempotent(true);
        }
    }
    Ok(p)
}

macro_rules! statements {
    ($( $(#[$doc:meta])* $name:ident : $kind:ident = $cql:expr ; )*) => {
        /// The prepared statements.
        #[derive(Debug)]
        pub struct Stmts {
            $( $(#[$doc])* pub $name: PreparedStatement, )*
        }

        /// (name, kind, CQL with `{ks}` for the keyspace) of every statement.
        #[cfg(test)]
        pub const STATEMENTS: &[(&str, Kind, &str)] = &[
            $( (stringify!($name), Kind::$kind, $cql), )*
        ];

        impl Stmts {
            /// Prepares everything (sequentially: ~80 round trips once at start-up).
            pub async fn prepare(
                session: &Session,
                keyspace: &str,
                profiles: &Profiles,
            ) -> Result<Self, StoreError> {
                Ok(Self {
                    $( $name: prep(session, keyspace, Kind::$kind, $cql, profiles).await?, )*
                })
            }
        }
    };
}

/// Tables the statements use (the schema test checks each is created by the schema).
#[cfg(test)]
pub const TABLES: &[&str] = &[
    "schema_version",
    "documents",
    "documents_by_register",
    "directory_int",
    "directory_text",
    "deliveries",
    "journal",
    "journal_cursor",
    "journal_backlog",
    "leases",
    "nodes",
    "registers",
    "registers_by_fn",
    "registers_by_owner",
    "registers_by_update",
    "fn_activity",
    "fn_reports",
    "gapped_fns",
    "unknown_fns",
    "tariffs",
    "audit",
    "alert_rules",
    "alert_states",
    "alert_notifications",
    "alert_notifications_due",
    "resend_jobs",
];

/// The columns of a whole document row (see `rows::DocRow`).
macro_rules! doc_columns {
    () => {
        "fn, fd, rnm, doc_type, ffd_version, doc_time, received_at, total, fiscal_sign, \
         response_code, flk_error, opaque, telemetry, raw, ack"
    };
}

statements! {
    // ------------------------------------------------------------------ documents
    /// The whole document.
    doc_get: Read = concat!("SELECT ", doc_columns!(), " FROM {ks}.documents WHERE fn = ? AND fd_bucket = ? AND fd = ?");
    /// Just its receive time (delivery state of a document not attempted yet).
    doc_received: Read = "SELECT received_at FROM {ks}.documents WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    /// The document's container, for the report fold (the journal entry has the rest).
    doc_raw: Read = "SELECT raw, opaque FROM {ks}.documents WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    /// FD range within one bucket.
    doc_range: Read = concat!("SELECT ", doc_columns!(), " FROM {ks}.documents \
        WHERE fn = ? AND fd_bucket = ? AND fd >= ? AND fd <= ? LIMIT ?");
    /// The acknowledgment path's first write: the document and its ack, first writer
    /// wins. Not applied: the row returned is the winner's.
    doc_insert: Cas = "INSERT INTO {ks}.documents (fn, fd_bucket, fd, rnm, doc_type, ffd_version, \
        doc_time, received_at, total, fiscal_sign, response_code, flk_error, opaque, telemetry, raw, ack, attempt) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
    /// Written by the deriver (idempotent).
    idx_insert: Write = "INSERT INTO {ks}.documents_by_register (rnm, day, received_at, fn, fd, doc_type) \
        VALUES (?, ?, ?, ?, ?, ?)";
    /// Index rows of one register-day after a position (the caller stops at `to`).
    idx_after: Read = "SELECT received_at, fn, fd FROM {ks}.documents_by_register \
        WHERE rnm = ? AND day = ? AND (received_at, fn, fd) > (?, ?, ?) LIMIT ?";

    // ------------------------------------------------------------------ directories
    dir_int_insert: Write = "INSERT INTO {ks}.directory_int (kind, owner, entry) VALUES (?, ?, ?) USING TTL ?";
    dir_int_asc: Read = "SELECT entry FROM {ks}.directory_int WHERE kind = ? AND owner = ? AND entry >= ? AND entry <= ?";
    dir_int_desc: Read = "SELECT entry FROM {ks}.directory_int WHERE kind = ? AND owner = ? AND entry >= ? AND entry <= ? ORDER BY entry DESC";
    dir_text_insert: Write = "INSERT INTO {ks}.directory_text (kind, owner, entry) VALUES (?, ?, ?)";
    dir_text_from: Read = "SELECT entry FROM {ks}.directory_text WHERE kind = ? AND owner = ? AND entry >= ?";

    // ------------------------------------------------------------------ the journal
    /// The acknowledgment path's second write (immutable columns only: a duplicate's
    /// entry never resets the forwarder's state of another entry).
    jr_insert: Write = "INSERT INTO {ks}.journal (part, hour, pos, fn, fd, rnm, meta, dup) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    /// Entries of one partition-hour after a position, in order.
    jr_after: Read = "SELECT pos, fn, fd, rnm, meta, dup, done, next_attempt_at, attempts FROM {ks}.journal \
        WHERE part = ? AND hour = ? AND (pos, fn, fd) > (?, ?, ?) LIMIT ?";
    jr_done: Write = "UPDATE {ks}.journal SET done = true \
        WHERE part = ? AND hour = ? AND pos = ? AND fn = ? AND fd = ?";
    jr_retry: Write = "UPDATE {ks}.journal SET next_attempt_at = ?, attempts = ? \
        WHERE part = ? AND hour = ? AND pos = ? AND fn = ? AND fd = ?";
    jr_drop_hour: Write = "DELETE FROM {ks}.journal WHERE part = ? AND hour = ?";
    cur_get: Read = "SELECT hour, pos FROM {ks}.journal_cursor WHERE part = ? AND kind = ?";
    /// Fenced: the lease holder's bounded write timestamp.
    cur_set: Write = "INSERT INTO {ks}.journal_cursor (part, kind, hour, pos, updated_at) \
        VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?";
    backlog_set: Write = "INSERT INTO {ks}.journal_backlog (part, pending, oldest, updated_at) \
        VALUES (?, ?, ?, ?) USING TIMESTAMP ?";
    backlog_all: Read = "SELECT part, pending, oldest, updated_at FROM {ks}.journal_backlog";

    // ------------------------------------------------------------------ deliveries
    dlv_get: Read = "SELECT status, queued_at, attempts, next_attempt_at, last_attempt_at, last_error, \
        delivered_at FROM {ks}.deliveries WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    dlv_delivered: Write = "UPDATE {ks}.deliveries SET status = 'delivered', queued_at = ?, delivered_at = ?, \
        last_attempt_at = ? WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    dlv_failed: Write = "UPDATE {ks}.deliveries SET status = 'pending', queued_at = ?, attempts = ?, \
        last_error = ?, last_attempt_at = ?, next_attempt_at = ? WHERE fn = ? AND fd_bucket = ? AND fd = ?";

    // ------------------------------------------------------------------ leases and nodes
    lease_take: Lwt = "INSERT INTO {ks}.leases (name, holder) VALUES (?, ?) IF NOT EXISTS USING TTL ?";
    lease_renew: Lwt = "UPDATE {ks}.leases USING TTL ? SET holder = ? WHERE name = ? IF holder = ?";
    lease_release: Lwt = "DELETE FROM {ks}.leases WHERE name = ? IF holder = ?";
    node_beat: Write = "INSERT INTO {ks}.nodes (node, seen, signer) VALUES (?, ?, ?) USING TTL ?";
    node_all: Read = "SELECT node, signer FROM {ks}.nodes";
    node_leave: Write = "DELETE FROM {ks}.nodes WHERE node = ?";

    // ------------------------------------------------------------------ registers
    reg_get: Read = "SELECT body FROM {ks}.registers WHERE bucket = ? AND rnm = ?";
    reg_after: Read = "SELECT rnm, body FROM {ks}.registers WHERE bucket = ? AND rnm > ?";
    reg_insert: Write = "INSERT INTO {ks}.registers (bucket, rnm, body, version, updated_at) VALUES (?, ?, ?, ?, ?)";
    fn_get: Read = "SELECT rnm FROM {ks}.registers_by_fn WHERE fn = ?";
    fn_insert: Write = "INSERT INTO {ks}.registers_by_fn (fn, rnm) VALUES (?, ?)";
    fn_delete: Write = "DELETE FROM {ks}.registers_by_fn WHERE fn = ?";
    owner_insert: Write = "INSERT INTO {ks}.registers_by_owner (owner_inn, rnm) VALUES (?, ?)";
    owner_delete: Write = "DELETE FROM {ks}.registers_by_owner WHERE owner_inn = ? AND rnm = ?";
    owner_after: Read = "SELECT rnm FROM {ks}.registers_by_owner WHERE owner_inn = ? AND rnm > ?";
    upd_insert: Write = "INSERT INTO {ks}.registers_by_update (day, shard, updated_at, rnm) VALUES (?, ?, ?, ?)";
    upd_after: Read = "SELECT updated_at, rnm FROM {ks}.registers_by_update \
        WHERE day = ? AND shard = ? AND (updated_at, rnm) >= (?, ?)";
    /// Activity rows of a register (one per FN).
    act_get: Read = "SELECT fn, body FROM {ks}.fn_activity WHERE rnm = ?";
    /// Fenced: written only by the deriver holding the FN's journal partition.
    act_put: Write = "INSERT INTO {ks}.fn_activity (rnm, fn, body) VALUES (?, ?, ?) USING TIMESTAMP ?";

    // ------------------------------------------------------------------ reports (fold: `fold`)
    /// The continuity row of an FN.
    rep_cont_get: Read = "SELECT rnm, body FROM {ks}.fn_reports WHERE fn = ? AND kind = 0 AND bucket = 0";
    /// One aggregate row of an FN.
    rep_row_get: Read = "SELECT body, totals, fds FROM {ks}.fn_reports WHERE fn = ? AND kind = ? AND bucket = ?";
    /// Aggregate rows of one kind in a bucket range (paged).
    rep_range: Read = "SELECT bucket, body, totals FROM {ks}.fn_reports \
        WHERE fn = ? AND kind = ? AND bucket >= ? AND bucket <= ?";
    /// Fenced: written only by the deriver holding the FN's journal partition, in one
    /// single-partition batch with the aggregate rows it changed.
    rep_cont_put: Write = "INSERT INTO {ks}.fn_reports (fn, kind, bucket, rnm, body) VALUES (?, 0, 0, ?, ?) \
        USING TIMESTAMP ?";
    /// Fenced, in the same batch.
    rep_row_put: Write = "INSERT INTO {ks}.fn_reports (fn, kind, bucket, body, totals, fds) \
        VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    /// Fenced: an FN with missing FDs.
    gap_put: Write = "INSERT INTO {ks}.gapped_fns (prefix, fn) VALUES (?, ?) USING TIMESTAMP ?";
    /// Fenced: its gaps closed.
    gap_delete: Write = "DELETE FROM {ks}.gapped_fns USING TIMESTAMP ? WHERE prefix = ? AND fn = ?";
    /// FNs with gaps in one prefix after an FN, in FN order (paged).
    gap_after: Read = "SELECT fn FROM {ks}.gapped_fns WHERE prefix = ? AND fn > ?";

    // ------------------------------------------------------------------ registers (continued)
    unk_get: Read = "SELECT first_seen, last_seen, attempts, claimed_rnm, claimed_inn, last_peer \
        FROM {ks}.unknown_fns WHERE prefix = ? AND fn = ?";
    unk_put: Write = "INSERT INTO {ks}.unknown_fns (prefix, fn, first_seen, last_seen, attempts, \
        claimed_rnm, claimed_inn, last_peer) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    unk_after: Read = "SELECT fn, first_seen, last_seen, attempts, claimed_rnm, claimed_inn, last_peer \
        FROM {ks}.unknown_fns WHERE prefix = ? AND fn > ?";
    unk_delete: Write = "DELETE FROM {ks}.unknown_fns WHERE prefix = ? AND fn = ?";

    // ------------------------------------------------------------------ admin plane
    tariff_get: Read = "SELECT body FROM {ks}.tariffs WHERE shard = 0 AND name = ?";
    tariff_put: Write = "INSERT INTO {ks}.tariffs (shard, name, body) VALUES (0, ?, ?)";
    tariff_all: Read = "SELECT body FROM {ks}.tariffs WHERE shard = 0";
    audit_put: Write = "INSERT INTO {ks}.audit (day, at, id, body) VALUES (?, ?, ?, ?)";
    audit_day: Read = "SELECT at, id, body FROM {ks}.audit WHERE day = ?";
    audit_day_before: Read = "SELECT at, id, body FROM {ks}.audit WHERE day = ? AND (at, id) < (?, ?)";
    rule_get: Read = "SELECT body FROM {ks}.alert_rules WHERE shard = 0 AND name = ?";
    rule_put: Write = "INSERT INTO {ks}.alert_rules (shard, name, body) VALUES (0, ?, ?)";
    rule_all: Read = "SELECT body FROM {ks}.alert_rules WHERE shard = 0";
    rule_delete: Write = "DELETE FROM {ks}.alert_rules WHERE shard = 0 AND name = ?";
    state_put: Write = "INSERT INTO {ks}.alert_states (rule, bucket, rnm, body) VALUES (?, ?, ?, ?)";
    state_get: Read = "SELECT body FROM {ks}.alert_states WHERE rule = ? AND bucket = ? AND rnm = ?";
    state_after: Read = "SELECT rnm, body FROM {ks}.alert_states WHERE rule = ? AND bucket = ? AND rnm > ?";
    state_drop_bucket: Write = "DELETE FROM {ks}.alert_states WHERE rule = ? AND bucket = ?";
    note_put: Write = "INSERT INTO {ks}.alert_notifications (day, shard, created_at, id, body) VALUES (?, ?, ?, ?, ?)";
    note_get: Read = "SELECT body FROM {ks}.alert_notifications \
        WHERE day = ? AND shard = ? AND created_at = ? AND id = ?";
    note_day: Read = "SELECT created_at, id, body FROM {ks}.alert_notifications WHERE day = ? AND shard = ? LIMIT ?";
    note_day_before: Read = "SELECT created_at, id, body FROM {ks}.alert_notifications \
        WHERE day = ? AND shard = ? AND (created_at, id) < (?, ?) LIMIT ?";
    due_put: Write = "INSERT INTO {ks}.alert_notifications_due (shard, next_attempt_at, id, body) VALUES (?, ?, ?, ?)";
    due_delete: Write = "DELETE FROM {ks}.alert_notifications_due WHERE shard = ? AND next_attempt_at = ? AND id = ?";
    due_until: Read = "SELECT body FROM {ks}.alert_notifications_due WHERE shard = ? AND next_attempt_at <= ? LIMIT ?";
    job_put: Write = "INSERT INTO {ks}.resend_jobs (shard, id, created_at, body) VALUES (0, ?, ?, ?)";
    job_get: Read = "SELECT body FROM {ks}.resend_jobs WHERE shard = 0 AND id = ?";
    job_all: Read = "SELECT body FROM {ks}.resend_jobs WHERE shard = 0";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_qualified_and_lwt_only_where_the_first_writer_must_win() {
        for (name, kind, cql) in STATEMENTS {
            assert!(cql.contains("{ks}."), "{name} is not keyspace-qualified");
            let upper = cql.to_uppercase();
            let is_lwt =
                upper.contains(" IF NOT EXISTS") || upper.contains(" IF EXISTS") || upper.contains(" IF HOLDER");
            // LWT only for the document insert (first writer wins) and the leases
            assert_eq!(is_lwt, matches!(kind, Kind::Lwt | Kind::Cas), "{name}: {cql}");
            if is_lwt {
                assert!(name.starts_with("lease_") || *name == "doc_insert", "LWT elsewhere: {name}");
            }
            // no counters (not idempotent)
            assert!(!upper.contains("COUNTER"), "{name}");
            // reads are SELECTs, writes are not
            assert_eq!(upper.starts_with("SELECT"), *kind == Kind::Read, "{name} kind {kind:?}");
            // every table named exists in the schema list
            let table = cql.split("{ks}.").nth(1).and_then(|r| r.split([' ', '(']).next()).unwrap_or_default();
            assert!(TABLES.contains(&table), "{name} uses unknown table {table}");
        }
    }

    #[test]
    fn rows_of_a_lease_holder_are_fenced() {
        // written only by a journal follower under its lease: the write timestamp is the
        // holder's bounded one, so a paused former holder cannot overwrite its successor
        for name in ["cur_set", "act_put", "backlog_set", "rep_cont_put", "rep_row_put", "gap_put", "gap_delete"] {
            let (_, _, cql) = STATEMENTS.iter().find(|(n, _, _)| *n == name).expect("statement");
            assert!(cql.contains("USING TIMESTAMP ?"), "{name}");
        }
    }
}
