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
//! * `Lwt`: lightweight transactions, used ONLY for leases; not idempotent (the driver
//!   never retries them), serial consistency LOCAL_SERIAL.

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
    "fns_outbox",
    "fns_outbox_cursor",
    "fns_outbox_parked",
    "leases",
    "registers",
    "registers_by_fn",
    "registers_by_owner",
    "registers_by_update",
    "register_activity",
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
    /// Just its receive time (outbox canonical check, index validation).
    doc_received: Read = "SELECT received_at FROM {ks}.documents WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    /// FD range within one bucket.
    doc_range: Read = concat!("SELECT ", doc_columns!(), " FROM {ks}.documents \
        WHERE fn = ? AND fd_bucket = ? AND fd >= ? AND fd <= ? LIMIT ?");
    /// The commit record of an append (write timestamp bound: see keys::attempt_timestamp).
    doc_insert: Write = "INSERT INTO {ks}.documents (fn, fd_bucket, fd, rnm, doc_type, ffd_version, \
        doc_time, received_at, total, fiscal_sign, response_code, flk_error, opaque, telemetry, raw, ack) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    idx_insert: Write = "INSERT INTO {ks}.documents_by_register (rnm, day, received_at, fn, fd, doc_type) \
        VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    /// Index rows of one register-day after a position (the caller stops at `to`).
    idx_after: Read = "SELECT received_at, fn, fd FROM {ks}.documents_by_register \
        WHERE rnm = ? AND day = ? AND (received_at, fn, fd) > (?, ?, ?) LIMIT ?";

    // ------------------------------------------------------------------ directories
    dir_int_insert: Write = "INSERT INTO {ks}.directory_int (kind, owner, entry) VALUES (?, ?, ?) USING TTL ?";
    dir_int_asc: Read = "SELECT entry FROM {ks}.directory_int WHERE kind = ? AND owner = ? AND entry >= ? AND entry <= ?";
    dir_int_desc: Read = "SELECT entry FROM {ks}.directory_int WHERE kind = ? AND owner = ? AND entry >= ? AND entry <= ? ORDER BY entry DESC";
    dir_text_insert: Write = "INSERT INTO {ks}.directory_text (kind, owner, entry) VALUES (?, ?, ?)";
    dir_text_from: Read = "SELECT entry FROM {ks}.directory_text WHERE kind = ? AND owner = ? AND entry >= ?";

    // ------------------------------------------------------------------ deliveries / outbox
    /// Written by an append before its commit record.
    dlv_queue: Write = "UPDATE {ks}.deliveries USING TIMESTAMP ? SET status = 'pending', queued_at = ?, \
        attempts = 0, next_attempt_at = ?, positions = positions + ? WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    dlv_get: Read = "SELECT status, queued_at, attempts, next_attempt_at, last_attempt_at, last_error, \
        delivered_at, positions, parked_positions, WRITETIME(status) FROM {ks}.deliveries \
        WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    dlv_delivered: Write = "UPDATE {ks}.deliveries USING TIMESTAMP ? SET status = 'delivered', delivered_at = ?, \
        last_attempt_at = ? WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    dlv_failed: Write = "UPDATE {ks}.deliveries USING TIMESTAMP ? SET attempts = ?, last_error = ?, \
        last_attempt_at = ?, next_attempt_at = ? WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    dlv_drop_position: Write = "UPDATE {ks}.deliveries USING TIMESTAMP ? SET positions = positions - ? \
        WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    dlv_park: Write = "UPDATE {ks}.deliveries USING TIMESTAMP ? SET positions = positions - ?, \
        parked_positions = parked_positions + ? WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    dlv_unpark: Write = "UPDATE {ks}.deliveries USING TIMESTAMP ? SET parked_positions = parked_positions - ? \
        WHERE fn = ? AND fd_bucket = ? AND fd = ?";
    ob_insert: Write = "INSERT INTO {ks}.fns_outbox (part, hour, pos, fn, fd, queued_at, next_attempt_at, \
        attempts, done) VALUES (?, ?, ?, ?, ?, ?, ?, 0, false) USING TIMESTAMP ?";
    ob_after: Read = "SELECT pos, fn, fd, queued_at, next_attempt_at, attempts, done FROM {ks}.fns_outbox \
        WHERE part = ? AND hour = ? AND (pos, fn, fd) > (?, ?, ?)";
    ob_done: Write = "UPDATE {ks}.fns_outbox USING TIMESTAMP ? SET done = true \
        WHERE part = ? AND hour = ? AND pos = ? AND fn = ? AND fd = ?";
    ob_retry: Write = "UPDATE {ks}.fns_outbox USING TIMESTAMP ? SET next_attempt_at = ?, attempts = ? \
        WHERE part = ? AND hour = ? AND pos = ? AND fn = ? AND fd = ?";
    ob_drop_hour: Write = "DELETE FROM {ks}.fns_outbox WHERE part = ? AND hour = ?";
    cur_get: Read = "SELECT hour, pos, fn, fd FROM {ks}.fns_outbox_cursor WHERE part = ?";
    cur_set: Write = "INSERT INTO {ks}.fns_outbox_cursor (part, hour, pos, fn, fd, updated_at) \
        VALUES (?, ?, ?, ?, ?, ?)";
    park_insert: Write = "INSERT INTO {ks}.fns_outbox_parked (part, hour, pos, fn, fd, queued_at, \
        next_attempt_at, attempts, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    park_list: Read = "SELECT hour, pos, fn, fd, queued_at, next_attempt_at, attempts, parked_at \
        FROM {ks}.fns_outbox_parked WHERE part = ?";
    park_retry: Write = "UPDATE {ks}.fns_outbox_parked SET next_attempt_at = ?, attempts = ? \
        WHERE part = ? AND hour = ? AND pos = ? AND fn = ? AND fd = ?";
    park_delete: Write = "DELETE FROM {ks}.fns_outbox_parked \
        WHERE part = ? AND hour = ? AND pos = ? AND fn = ? AND fd = ?";

    // ------------------------------------------------------------------ leases (the only LWT)
    lease_take: Lwt = "INSERT INTO {ks}.leases (name, holder) VALUES (?, ?) IF NOT EXISTS USING TTL ?";
    lease_renew: Lwt = "UPDATE {ks}.leases USING TTL ? SET holder = ? WHERE name = ? IF holder = ?";
    lease_release: Lwt = "DELETE FROM {ks}.leases WHERE name = ? IF holder = ?";

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
    act_get: Read = "SELECT body, WRITETIME(body) FROM {ks}.register_activity WHERE rnm = ?";
    act_put: Write = "INSERT INTO {ks}.register_activity (rnm, body) VALUES (?, ?) USING TIMESTAMP ?";
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
    fn statements_are_qualified_and_only_leases_use_lwt() {
        for (name, kind, cql) in STATEMENTS {
            assert!(cql.contains("{ks}."), "{name} is not keyspace-qualified");
            let upper = cql.to_uppercase();
            let is_lwt =
                upper.contains(" IF NOT EXISTS") || upper.contains(" IF EXISTS") || upper.contains(" IF HOLDER");
            // reliability C5: no LWT anywhere but the leases; never on the document path
            assert_eq!(is_lwt, *kind == Kind::Lwt, "{name}: {cql}");
            if is_lwt {
                assert!(name.starts_with("lease_"), "LWT outside leases: {name}");
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
    fn document_path_writes_bind_their_timestamp() {
        // The append path's cells all carry the attempt timestamp, so racing attempts
        // resolve to the same winner in every table.
        for name in ["doc_insert", "idx_insert", "ob_insert", "dlv_queue", "act_put"] {
            let (_, _, cql) = STATEMENTS.iter().find(|(n, _, _)| *n == name).expect("statement");
            assert!(cql.contains("USING TIMESTAMP ?"), "{name}");
        }
    }
}
