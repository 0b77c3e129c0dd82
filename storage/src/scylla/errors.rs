//! Mapping of driver errors to [`StoreError`].
//!
//! The rule that matters: for a write, *every* error is an unknown outcome (the gateway
//! acknowledges nothing and the register retries an idempotent append). The variant only
//! tells operators and metrics what kind of trouble it was:
//!
//! | driver / server error                                   | `StoreError`  |
//! |---------------------------------------------------------|---------------|
//! | client `RequestTimeout`, server `WriteTimeout`/`ReadTimeout`, schema agreement timeout | `Timeout` (may have been applied) |
//! | server `Unavailable`, `Overloaded`, `IsBootstrapping`, rate limit, no connection, empty plan, broken connection, auth | `Unavailable` |
//! | server `WriteFailure`/`ReadFailure`, `ServerError`, `TruncateError`, protocol/parse errors | `Io` |
//! | `SyntaxError`, `Invalid` (e.g. table missing: not migrated), `ConfigError`, bad values | `Invalid` |
//! | `AlreadyExists`                                         | `Conflict`    |
//! | a row that does not deserialise into the expected types | `Corrupt`     |

use scylla::errors::{
    ConnectionPoolError, DbError, DeserializationError, ExecutionError, IntoRowsResultError, MaybeFirstRowError,
    NewSessionError, NextPageError, NextRowError, PagerExecutionError, PrepareError, RequestAttemptError, RequestError,
    RowsError, SchemaAgreementError, TypeCheckError, UseKeyspaceError,
};

use crate::error::StoreError;

/// Maps an execution error of one request.
pub fn from_execution(e: &ExecutionError) -> StoreError {
    match e {
        ExecutionError::RequestTimeout(d) => StoreError::Timeout(format!(
            "no answer within the client timeout of {} ms (the request may still be applied)",
            d.as_millis()
        )),
        ExecutionError::LastAttemptError(a) => from_attempt(a),
        ExecutionError::ConnectionPoolError(p) => from_pool(p),
        ExecutionError::EmptyPlan => StoreError::Unavailable(
            "no node to send the request to (is local_dc right? are the local nodes up?)".into(),
        ),
        ExecutionError::PrepareError(p) => from_prepare(p),
        ExecutionError::BadQuery(b) => StoreError::Invalid(format!("bad statement: {b}")),
        ExecutionError::UseKeyspaceError(u) => from_use_keyspace(u),
        ExecutionError::SchemaAgreementError(s) => from_schema_agreement(s),
        ExecutionError::MetadataError(m) => StoreError::Unavailable(format!("cluster metadata: {m}")),
        other => StoreError::Io(format!("driver error: {other}")),
    }
}

/// Maps the error of the last attempt of a request.
pub fn from_attempt(e: &RequestAttemptError) -> StoreError {
    match e {
        RequestAttemptError::DbError(db, msg) => from_db(db, msg),
        RequestAttemptError::BrokenConnectionError(b) => {
            StoreError::Unavailable(format!("connection broken (a write in flight may have been applied): {b}"))
        }
        RequestAttemptError::UnableToAllocStreamId => {
            StoreError::Unavailable("connection saturated: no free stream id".into())
        }
        RequestAttemptError::SerializationError(s) => {
            StoreError::Invalid(format!("value does not fit the column: {s}"))
        }
        RequestAttemptError::CqlRequestSerialization(s) => StoreError::Invalid(format!("request serialisation: {s}")),
        other => StoreError::Io(format!("protocol error: {other}")),
    }
}

/// Maps an error returned by the server.
pub fn from_db(db: &DbError, msg: &str) -> StoreError {
    match db {
        DbError::WriteTimeout { consistency, received, required, write_type } => StoreError::Timeout(format!(
            "write timeout at {consistency}: {received} of {required} replicas answered \
             ({write_type}); the write may still be applied: {msg}"
        )),
        DbError::ReadTimeout { consistency, received, required, .. } => StoreError::Timeout(format!(
            "read timeout at {consistency}: {received} of {required} replicas answered: {msg}"
        )),
        DbError::Unavailable { consistency, required, alive } => StoreError::Unavailable(format!(
            "not enough replicas alive for {consistency}: {alive} alive, {required} required \
             (nothing was written): {msg}"
        )),
        DbError::Overloaded => StoreError::Unavailable(format!("coordinator overloaded: {msg}")),
        DbError::IsBootstrapping => StoreError::Unavailable(format!("coordinator is bootstrapping: {msg}")),
        DbError::RateLimitReached { .. } => StoreError::Unavailable(format!("partition rate limit reached: {msg}")),
        DbError::AuthenticationError | DbError::Unauthorized => {
            StoreError::Unavailable(format!("not authorised: {msg}"))
        }
        DbError::Unprepared { .. } => StoreError::Unavailable(format!("statement not prepared on the node: {msg}")),
        DbError::WriteFailure { consistency, numfailures, .. } => {
            StoreError::Io(format!("write failed on {numfailures} replica(s) at {consistency}: {msg}"))
        }
        DbError::ReadFailure { consistency, numfailures, .. } => {
            StoreError::Io(format!("read failed on {numfailures} replica(s) at {consistency}: {msg}"))
        }
        DbError::ServerError => StoreError::Io(format!("server error: {msg}")),
        DbError::TruncateError => StoreError::Io(format!("truncate failed: {msg}")),
        DbError::ProtocolError => StoreError::Io(format!("protocol error: {msg}")),
        DbError::AlreadyExists { keyspace, table } => {
            StoreError::Conflict(format!("{keyspace}.{table} already exists: {msg}"))
        }
        DbError::SyntaxError | DbError::Invalid | DbError::ConfigError => StoreError::Invalid(format!("{db}: {msg}")),
        DbError::FunctionFailure { .. } => StoreError::Invalid(format!("{db}: {msg}")),
        other => StoreError::Io(format!("{other}: {msg}")),
    }
}

fn from_pool(p: &ConnectionPoolError) -> StoreError {
    StoreError::Unavailable(format!("no connection to the node: {p}"))
}

/// Maps a prepare error.
pub fn from_prepare(e: &PrepareError) -> StoreError {
    match e {
        PrepareError::ConnectionPoolError(p) => from_pool(p),
        PrepareError::AllAttemptsFailed { first_attempt } => from_attempt(first_attempt),
        other => StoreError::Io(format!("prepare: {other}")),
    }
}

fn from_use_keyspace(e: &UseKeyspaceError) -> StoreError {
    match e {
        UseKeyspaceError::RequestError(a) => from_attempt(a),
        UseKeyspaceError::RequestTimeout(d) => {
            StoreError::Timeout(format!("USE keyspace timed out after {} ms", d.as_millis()))
        }
        other => StoreError::Invalid(format!("keyspace: {other}")),
    }
}

fn from_schema_agreement(e: &SchemaAgreementError) -> StoreError {
    match e {
        SchemaAgreementError::Timeout(d) => {
            StoreError::Timeout(format!("nodes did not agree on the schema within {} ms", d.as_millis()))
        }
        SchemaAgreementError::RequestError(a) => from_attempt(a),
        SchemaAgreementError::ConnectionPoolError(p) => from_pool(p),
        other => StoreError::Unavailable(format!("schema agreement: {other}")),
    }
}

/// Maps a session-creation error.
pub fn from_new_session(e: &NewSessionError) -> StoreError {
    match e {
        NewSessionError::FailedToResolveAnyHostname(h) => {
            StoreError::Unavailable(format!("cannot resolve any contact point: {h:?}"))
        }
        NewSessionError::EmptyKnownNodesList => StoreError::Invalid("no contact points configured".into()),
        NewSessionError::IllegalConfig(m) => StoreError::Invalid(format!("driver config: {m}")),
        NewSessionError::UseKeyspaceError(u) => from_use_keyspace(u),
        other => StoreError::Unavailable(format!("cannot connect to the cluster: {other}")),
    }
}

fn from_request(e: &RequestError) -> StoreError {
    match e {
        RequestError::RequestTimeout(d) => {
            StoreError::Timeout(format!("no answer within the client timeout of {} ms", d.as_millis()))
        }
        RequestError::LastAttemptError(a) => from_attempt(a),
        RequestError::ConnectionPoolError(p) => from_pool(p),
        RequestError::EmptyPlan => StoreError::Unavailable("no node to send the request to".into()),
        other => StoreError::Io(format!("request: {other}")),
    }
}

fn from_next_page(e: &NextPageError) -> StoreError {
    match e {
        NextPageError::RequestFailure(r) => from_request(r),
        NextPageError::TypeCheckError(t) => from_type_check(t),
        other => StoreError::Io(format!("paging: {other}")),
    }
}

/// Maps a paged-query start error.
pub fn from_pager(e: &PagerExecutionError) -> StoreError {
    match e {
        PagerExecutionError::PrepareError(p) => from_prepare(p),
        PagerExecutionError::SerializationError(s) => {
            StoreError::Invalid(format!("value does not fit the column: {s}"))
        }
        PagerExecutionError::NextPageError(n) => from_next_page(n),
        other => StoreError::Io(format!("paged query: {other}")),
    }
}

/// Maps an error of the row stream of a paged query.
pub fn from_next_row(e: &NextRowError) -> StoreError {
    match e {
        NextRowError::NextPageError(n) => from_next_page(n),
        NextRowError::RowDeserializationError(d) => from_deser(d),
        other => StoreError::Io(format!("paged query: {other}")),
    }
}

/// A row whose columns do not have the expected types: the schema is not the one this
/// build was written for.
pub fn from_type_check(e: &TypeCheckError) -> StoreError {
    StoreError::Corrupt(format!("unexpected column types (schema mismatch?): {e}"))
}

/// A value that does not deserialise.
pub fn from_deser(e: &DeserializationError) -> StoreError {
    StoreError::Corrupt(format!("row does not deserialise: {e}"))
}

/// A response that should have carried rows.
pub fn from_into_rows(e: &IntoRowsResultError) -> StoreError {
    StoreError::Io(format!("expected rows in the response: {e}"))
}

/// Errors of typed row access.
pub fn from_rows(e: &RowsError) -> StoreError {
    match e {
        RowsError::TypeCheckFailed(t) => from_type_check(t),
    }
}

/// Errors of `maybe_first_row`.
pub fn from_maybe_first_row(e: &MaybeFirstRowError) -> StoreError {
    match e {
        MaybeFirstRowError::TypeCheckFailed(t) => from_type_check(t),
        MaybeFirstRowError::DeserializationFailed(d) => from_deser(d),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use scylla::errors::{OperationType, WriteType};
    use scylla::statement::Consistency;

    use super::*;

    fn db(e: DbError) -> StoreError {
        from_execution(&ExecutionError::LastAttemptError(RequestAttemptError::DbError(e, "msg".into())))
    }

    #[test]
    fn timeouts_are_unknown_outcomes() {
        let e = from_execution(&ExecutionError::RequestTimeout(Duration::from_millis(5000)));
        assert_eq!(e.code(), "timeout");
        assert!(e.to_string().contains("5000 ms"), "{e}");

        let e = db(DbError::WriteTimeout {
            consistency: Consistency::LocalQuorum,
            received: 1,
            required: 2,
            write_type: WriteType::Simple,
        });
        assert_eq!(e.code(), "timeout");
        assert!(e.to_string().contains("may still be applied"), "{e}");

        let e = db(DbError::ReadTimeout {
            consistency: Consistency::LocalQuorum,
            received: 1,
            required: 2,
            data_present: false,
        });
        assert_eq!(e.code(), "timeout");
        // a batch-log timeout of a logged batch is a timeout too
        let e = db(DbError::WriteTimeout {
            consistency: Consistency::LocalQuorum,
            received: 0,
            required: 2,
            write_type: WriteType::BatchLog,
        });
        assert_eq!(e.code(), "timeout");
    }

    #[test]
    fn unreachable_and_refusing_nodes_are_unavailable() {
        let e = db(DbError::Unavailable { consistency: Consistency::LocalQuorum, required: 2, alive: 1 });
        assert_eq!(e.code(), "unavailable");
        assert!(e.to_string().contains("1 alive, 2 required"), "{e}");
        assert_eq!(db(DbError::Overloaded).code(), "unavailable");
        assert_eq!(db(DbError::IsBootstrapping).code(), "unavailable");
        assert_eq!(
            db(DbError::RateLimitReached { op_type: OperationType::Write, rejected_by_coordinator: true }).code(),
            "unavailable"
        );
        assert_eq!(db(DbError::Unauthorized).code(), "unavailable");
        assert_eq!(from_execution(&ExecutionError::EmptyPlan).code(), "unavailable");
        assert_eq!(
            from_execution(&ExecutionError::ConnectionPoolError(ConnectionPoolError::Initializing)).code(),
            "unavailable"
        );
        assert_eq!(
            from_execution(&ExecutionError::LastAttemptError(RequestAttemptError::UnableToAllocStreamId)).code(),
            "unavailable"
        );
        assert_eq!(
            from_new_session(&NewSessionError::FailedToResolveAnyHostname(vec!["nowhere".into()])).code(),
            "unavailable"
        );
    }

    #[test]
    fn server_side_failures_are_io_and_bad_requests_are_invalid() {
        let e = db(DbError::WriteFailure {
            consistency: Consistency::LocalQuorum,
            received: 1,
            required: 2,
            numfailures: 1,
            write_type: WriteType::Simple,
        });
        assert_eq!(e.code(), "io");
        assert_eq!(db(DbError::ServerError).code(), "io");
        assert_eq!(db(DbError::Other(0x1234)).code(), "io");
        assert_eq!(db(DbError::Invalid).code(), "invalid");
        assert_eq!(db(DbError::SyntaxError).code(), "invalid");
        assert_eq!(db(DbError::AlreadyExists { keyspace: "ofd".into(), table: "documents".into() }).code(), "conflict");
        assert_eq!(from_new_session(&NewSessionError::EmptyKnownNodesList).code(), "invalid");
    }

    #[test]
    fn pager_errors_map_like_single_requests() {
        let e = from_pager(&PagerExecutionError::NextPageError(NextPageError::RequestFailure(
            RequestError::RequestTimeout(Duration::from_secs(1)),
        )));
        assert_eq!(e.code(), "timeout");
        let e = from_next_row(&NextRowError::NextPageError(NextPageError::RequestFailure(
            RequestError::LastAttemptError(RequestAttemptError::DbError(DbError::Overloaded, "busy".into())),
        )));
        assert_eq!(e.code(), "unavailable");
    }
}
