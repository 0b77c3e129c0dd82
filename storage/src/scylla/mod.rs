//! # ScyllaDB backend (for clusters)
//!
//! All shared state of a cluster of gateway nodes lives here: any node accepts any
//! register, and cluster-wide background work (FNS delivery, alert evaluation, resend
//! jobs) is spread over nodes with leases.
//!
//! ## Using it
//!
//! ```no_run
//! # async fn run() -> Result<(), storage::StoreError> {
//! use std::sync::Arc;
//! use storage::scylla::{MigrationConfig, ScyllaConfig, ScyllaStore, connect_session, migrate};
//!
//! let cfg = ScyllaConfig {
//!     nodes: vec!["10.0.0.1:9042".into(), "10.0.0.2:9042".into()],
//!     keyspace: "ofd".into(),
//!     local_dc: Some("dc1".into()),
//!     ..ScyllaConfig::default()
//! };
//! let session = Arc::new(connect_session(&cfg).await?);
//! // once per deployment (adminctl or one gateway), idempotent:
//! migrate(&session, &MigrationConfig::single_dc("ofd", "dc1", 3)).await?;
//! let store = ScyllaStore::with_session(session, cfg).await?;
//! # let _ = store; Ok(()) }
//! ```
//!
//! ## Guarantees (see `docs/scylla.md` for the argument)
//!
//! * `append_documents` returns `Durability::Durable` only after both writes of the
//!   acknowledgment path returned at the configured consistency (LOCAL_QUORUM by default;
//!   ANY, ONE, LOCAL_ONE, TWO and THREE are refused at configuration): the document's
//!   conditional insert and its journal entry. Any error — a timeout included — is an
//!   unknown outcome: nothing is acknowledged; the register's retry is safe.
//! * The first writer wins, across gateways: a retransmission is answered with the
//!   acknowledgment stored the first time, byte for byte; the original document is never
//!   overwritten by a later append.
//! * Everything else (time index, activity, FD gaps, report aggregates, FNS forwarding) is
//!   derived from the journal after the acknowledgment, idempotently, with a lag a metric shows.
//! * No counters; lightweight transactions only for the document insert and the leases.
//! * Partitions are bounded (FD buckets of 16384, register-days, hour buckets, RNM
//!   prefixes); fiscal data expires after 1827 days, never sooner.
//!
//! Module map: [`config`] (configuration and its validation), `schema` (the embedded
//! CQL and [`migrate`]), `checks` (start-up checks), `keys` (partition keys, cursors),
//! `statements` (every prepared statement), `rows` (row ↔ record), `errors` (driver error
//! → `StoreError`), `store` (connection, request helpers, health, `Store`), `append` (the
//! acknowledgment path), `journal` (its entries), `derive` and `delivery` (the journal's
//! followers), `fold` (the deriver's report fold), `follow` (their in-process state),
//! `background` (the store's own work),
//! `leases` (leases, fencing, live nodes), `clock` (offset from the cluster's clock),
//! `directory`, `documents`, `registers`, `admin`, `reports` (the other traits).

pub mod config;
mod errors;
mod keys;
mod rows;
mod schema;
mod statements;
mod store;

mod admin;
mod append;
mod background;
mod backpressure;
mod checks;
mod clock;
mod delivery;
mod derive;
mod directory;
mod documents;
mod fold;
mod journal;
mod leases;
mod open;
mod registers;
mod reports;
mod state;
#[cfg(test)]
mod typecheck;

pub use config::{ConfigError, ConsistencyLevel, MigrationConfig, ScyllaConfig};
pub use schema::{
    MigrationReport, RenderedVersion, SCHEMA_FILES, SchemaError, SchemaFile, applied_versions, migrate, render,
    required_version, split_statements,
};
pub use store::{ScyllaStore, connect_session};
