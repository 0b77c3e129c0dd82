//! `ScyllaStore`: connection, shared request helpers, health, and the `Store` trait. The
//! other traits are implemented in `append` and `documents`, `registers`, `delivery`,
//! `leases` and `admin`; the start-up checks are in `checks`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::pager::TypedRowStream;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};

use super::config::ScyllaConfig;
use super::errors;
use super::keys;
use super::state::{ClockState, DirCache, Follow, LeaseBook};
use super::statements::{Profiles, Stmts};
use crate::error::StoreError;
use crate::ids::Timestamp;
use crate::metrics::OPERATION_SECONDS;
use crate::store::{Health, Store};

/// Builds a driver session from the configuration (validated first): contact points,
/// credentials, connect timeout, the write profile as default (configured consistency,
/// LOCAL_SERIAL for LWT, request timeout, token-aware DC-local load balancing without
/// failover to remote DCs), and a monotonic client-side timestamp generator so that two
/// writes from this process to the same cell are ordered even within one microsecond.
///
/// The gateway and adminctl use it to obtain a session for [`migrate`](super::migrate)
/// and for [`ScyllaStore::with_session`].
pub async fn connect_session(cfg: &ScyllaConfig) -> Result<Session, StoreError> {
    cfg.validate()?;
    let mut b = SessionBuilder::new()
        .known_nodes(&cfg.nodes)
        .connection_timeout(cfg.connect_timeout())
        .default_execution_profile_handle(
            profile(cfg, cfg.local_dc.clone(), cfg.consistency.to_driver(), true).into_handle(),
        )
        .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()));
    if let Some(user) = &cfg.username {
        b = b.user(user.clone(), cfg.password.clone().unwrap_or_default());
    }
    // Bounded: an unreachable cluster is a clear error within a few connect timeouts,
    // naming the contact points, not a hang.
    let bound = cfg.connect_timeout().saturating_mul(3) + Duration::from_secs(2);
    match tokio::time::timeout(bound, b.build()).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(match errors::from_new_session(&e) {
            StoreError::Unavailable(m) => {
                StoreError::Unavailable(format!("no CQL node answered at {}: {m}", cfg.nodes.join(",")))
            }
            other => other,
        }),
        Err(_) => Err(StoreError::Unavailable(format!(
            "no CQL node answered at {} within {} s",
            cfg.nodes.join(","),
            bound.as_secs()
        ))),
    }
}

/// An execution profile. `speculate`: send an idempotent request to a second replica after
/// `speculative_delay` without an answer. Never for conditional statements: two
/// coordinators running Paxos on the same row contend and retry each other's rounds (on a
/// loaded 3-node cluster that tripled the replica reads of `documents` and cost 40 % of
/// the rate: BENCHMARKS.md).
pub(super) fn profile(
    cfg: &ScyllaConfig,
    dc: Option<String>,
    consistency: Consistency,
    speculate: bool,
) -> ExecutionProfile {
    let mut lb = DefaultPolicy::builder().token_aware(true).permit_dc_failover(false);
    if let Some(dc) = dc {
        lb = lb.prefer_datacenter(dc);
    }
    let mut b = ExecutionProfile::builder()
        .consistency(consistency)
        .serial_consistency(Some(SerialConsistency::LocalSerial))
        .request_timeout(Some(cfg.request_timeout()))
        .load_balancing_policy(lb.build());
    if speculate && cfg.speculative_delay_ms > 0 {
        // only idempotent requests are ever sent twice (the driver's rule)
        b = b.speculative_execution_policy(Some(Arc::new(SimpleSpeculativeExecutionPolicy {
            max_retry_count: 1,
            retry_interval: Duration::from_millis(cfg.speculative_delay_ms),
        })));
    }
    b.build()
}

/// Runs futures with at most `n` in flight, results in input order; the first error wins.
///
/// Takes the futures already built (a `Vec`), not an iterator with a closure: a
/// closure over borrowed items held across an await makes `async_trait` futures fail
/// the `Send` check ("implementation of FnOnce is not general enough").
pub(super) async fn ordered<T, F>(futs: Vec<F>, n: usize) -> Result<Vec<T>, StoreError>
where
    F: std::future::Future<Output = Result<T, StoreError>>,
{
    futures::stream::iter(futs).buffered(n.max(1)).try_collect().await
}

/// Like [`ordered`], completion order.
pub(super) async fn unordered<T, F>(futs: Vec<F>, n: usize) -> Result<Vec<T>, StoreError>
where
    F: std::future::Future<Output = Result<T, StoreError>>,
{
    futures::stream::iter(futs).buffer_unordered(n.max(1)).try_collect().await
}

/// Records the latency of one store operation under a bounded `op` label.
pub(super) struct OpTimer {
    op: &'static str,
    start: Instant,
}

impl OpTimer {
    pub(super) fn start(op: &'static str) -> Self {
        Self { op, start: Instant::now() }
    }
}

impl Drop for OpTimer {
    fn drop(&mut self) {
        metrics::histogram!(OPERATION_SECONDS, "op" => self.op).record(self.start.elapsed().as_secs_f64());
    }
}

/// Stripes of the per-key append locks.
pub(super) const KEY_LOCK_STRIPES: usize = 1024;

/// A random number for names (no cryptographic use).
pub(super) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(keys::now_micros().unsigned_abs());
    h.finish()
}

/// How long a failed request keeps the store `Degraded` without a later success.
const HEALTH_ERROR_WINDOW: Duration = Duration::from_secs(30);

/// What recent requests said about reachability.
#[derive(Debug, Default)]
pub(super) struct HealthState {
    last_error: Mutex<Option<(Instant, String)>>,
}

impl HealthState {
    fn observe<T>(&self, r: &Result<T, StoreError>) {
        let Ok(mut g) = self.last_error.lock() else {
            return;
        };
        match r {
            Ok(_) => *g = None,
            Err(e @ (StoreError::Unavailable(_) | StoreError::Timeout(_))) => {
                *g = Some((Instant::now(), e.to_string()));
            }
            Err(_) => {}
        }
    }

    fn recent_error(&self) -> Option<String> {
        let g = self.last_error.lock().ok()?;
        g.as_ref().filter(|(at, _)| at.elapsed() < HEALTH_ERROR_WINDOW).map(|(_, m)| m.clone())
    }
}

/// The ScyllaDB backend of the [`Store`]. Cheap to clone (one shared state): the store's
/// own background work — the deriver following the journal, the node heartbeat, the
/// clock check — runs on a weak handle of the same state and stops with `close()`.
#[derive(Clone)]
pub struct ScyllaStore(Arc<Inner>);

impl std::ops::Deref for ScyllaStore {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The shared state of a [`ScyllaStore`].
pub struct Inner {
    pub(super) session: Arc<Session>,
    pub(super) st: Stmts,
    pub(super) cfg: ScyllaConfig,
    pub(super) profiles: Profiles,
    /// The local datacenter (configured, or the only one the cluster has).
    pub(super) local_dc: Option<String>,
    /// Replication factor of the keyspace in the local datacenter.
    pub(super) local_rf: u32,
    /// When schema version 1 was applied: no journal entry is older.
    pub(super) schema_epoch: Timestamp,
    pub(super) dirs: DirCache,
    /// Striped locks serialising appends of the same (FN, FD) within this process.
    pub(super) key_locks: Vec<tokio::sync::Mutex<()>>,
    /// This store's name among the gateway nodes (its leases, its heartbeat row).
    pub(super) node: String,
    /// Leases this store holds, with the bound of their fenced write timestamps.
    pub(super) leases: LeaseBook,
    /// The journal followers' state in this process.
    pub(super) follow: Follow,
    /// The offset of this machine's clock from the cluster's, and whether it is in bounds.
    pub(super) clock: ClockState,
    pub(super) health: HealthState,
    /// `close()` began: background work stops taking leases.
    pub(super) closing: AtomicBool,
    pub(super) closed: AtomicBool,
    /// Wakes the background work (a new append, close, settle).
    pub(super) wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("keyspace", &self.cfg.keyspace)
            .field("local_dc", &self.local_dc)
            .field("local_rf", &self.local_rf)
            .field("consistency", &self.cfg.consistency)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl ScyllaStore {
    /// A store from its shared state (background work upgrades its weak handle).
    pub(super) fn from_inner(inner: Arc<Inner>) -> Self {
        Self(inner)
    }

    /// Its shared state.
    pub(super) fn inner(&self) -> &Arc<Inner> {
        &self.0
    }

    /// Whether `close()` was called.
    pub(super) fn is_closed(&self) -> bool {
        self.closing.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire)
    }

    /// The driver session (shared).
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The configuration in use.
    pub fn config(&self) -> &ScyllaConfig {
        &self.cfg
    }

    pub(super) fn check_open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) { Err(StoreError::Closed) } else { Ok(()) }
    }

    /// Runs a prepared statement (unpaged: point reads, LIMITed reads and writes).
    pub(super) async fn exec(
        &self,
        stmt: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<QueryResult, StoreError> {
        self.check_open()?;
        let r = self.session.execute_unpaged(stmt, values).await.map_err(|e| errors::from_execution(&e));
        self.health.observe(&r);
        r
    }

    /// Runs a write; only success matters.
    pub(super) async fn write(&self, stmt: &PreparedStatement, values: impl SerializeRow) -> Result<(), StoreError> {
        self.exec(stmt, values).await.map(|_| ())
    }

    /// Runs a logged batch with the write profile (admin-plane writes only: a register
    /// and its index rows apply all or none; never on the acknowledgment path, where a
    /// batch log would need two other live nodes).
    pub(super) async fn logged_batch(
        &self,
        stmts: Vec<&PreparedStatement>,
        values: Vec<Box<dyn SerializeRow + Send + Sync + '_>>,
    ) -> Result<(), StoreError> {
        self.batch(BatchType::Logged, stmts, values).await
    }

    /// Runs an unlogged batch of writes to ONE partition (the report fold: a partition's
    /// rows apply together, atomically and isolated on each replica, with no batch log).
    /// Every statement carries its own write timestamp, so a retry is idempotent.
    pub(super) async fn partition_batch(
        &self,
        stmts: Vec<&PreparedStatement>,
        values: Vec<Box<dyn SerializeRow + Send + Sync + '_>>,
    ) -> Result<(), StoreError> {
        self.batch(BatchType::Unlogged, stmts, values).await
    }

    async fn batch(
        &self,
        kind: BatchType,
        stmts: Vec<&PreparedStatement>,
        values: Vec<Box<dyn SerializeRow + Send + Sync + '_>>,
    ) -> Result<(), StoreError> {
        self.check_open()?;
        let mut batch = Batch::new(kind);
        for s in stmts {
            batch.append_statement(s.clone());
        }
        batch.set_execution_profile_handle(Some(self.profiles.write.clone()));
        batch.set_is_idempotent(true);
        let r = self.session.batch(&batch, values).await.map(|_| ()).map_err(|e| errors::from_execution(&e));
        self.health.observe(&r);
        r
    }

    /// All rows of an unpaged read.
    pub(super) async fn rows<R>(
        &self,
        stmt: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let qr = self.exec(stmt, values).await?;
        let rows = qr.into_rows_result().map_err(|e| errors::from_into_rows(&e))?;
        let it = rows.rows::<R>().map_err(|e| errors::from_rows(&e))?;
        it.map(|r| r.map_err(|e| errors::from_deser(&e))).collect()
    }

    /// The first row of an unpaged read.
    pub(super) async fn one<R>(
        &self,
        stmt: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let qr = self.exec(stmt, values).await?;
        let rows = qr.into_rows_result().map_err(|e| errors::from_into_rows(&e))?;
        rows.maybe_first_row::<R>().map_err(|e| errors::from_maybe_first_row(&e))
    }

    /// A paged read, as a stream of typed rows (consume with [`Self::next_row`]).
    pub(super) async fn stream<R>(
        &self,
        stmt: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<TypedRowStream<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        self.check_open()?;
        let r = self.session.execute_iter(stmt.clone(), values).await.map_err(|e| errors::from_pager(&e));
        self.health.observe(&r);
        r?.rows_stream::<R>().map_err(|e| errors::from_type_check(&e))
    }

    /// The next row of a paged read.
    pub(super) async fn next_row<R>(&self, stream: &mut TypedRowStream<R>) -> Result<Option<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + 'static,
    {
        match stream.next().await {
            None => Ok(None),
            Some(Ok(r)) => Ok(Some(r)),
            Some(Err(e)) => {
                let e = errors::from_next_row(&e);
                self.health.observe::<()>(&Err(e.clone()));
                Err(e)
            }
        }
    }

    /// Every row of a paged read (for small, bounded tables).
    pub(super) async fn all_rows<R>(
        &self,
        stmt: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + 'static,
    {
        let mut s = self.stream::<R>(stmt, values).await?;
        let mut out = Vec::new();
        while let Some(r) = self.next_row(&mut s).await? {
            out.push(r);
        }
        Ok(out)
    }

    /// Connected nodes of the local datacenter (all nodes if it is unknown), and the
    /// total known there.
    fn local_nodes(&self) -> (usize, usize) {
        let state = self.session.get_cluster_state();
        let nodes = state.get_nodes_info();
        let local = nodes
            .iter()
            .filter(|n| match &self.local_dc {
                Some(dc) => n.datacenter.as_deref() == Some(dc.as_str()),
                None => true,
            })
            .collect::<Vec<_>>();
        (local.iter().filter(|n| n.is_connected()).count(), local.len())
    }
}

#[async_trait]
impl Store for ScyllaStore {
    fn backend(&self) -> &'static str {
        "scylla"
    }

    /// `Degraded` when closed, when no node of the local datacenter is connected, when
    /// fewer are connected than a local quorum needs, or when a request failed as
    /// unavailable / timed out in the last 30 s without a success since. Never
    /// `Poisoned`: a cluster write that failed leaves nothing half-durable behind (every
    /// write is idempotent and retried by the register), so there is no state to poison.
    fn health(&self) -> Health {
        if self.closed.load(Ordering::Acquire) {
            return Health::Degraded("store closed".into());
        }
        let (connected, known) = self.local_nodes();
        let dc = self.local_dc.as_deref().unwrap_or("the cluster");
        if connected == 0 {
            return Health::Degraded(format!("no connection to any node in {dc}"));
        }
        let quorum = usize::try_from(self.local_rf / 2 + 1).unwrap_or(usize::MAX);
        if connected < quorum {
            return Health::Degraded(format!(
                "{connected} of {known} nodes in {dc} connected; {} needs {quorum} of {} replicas",
                self.cfg.consistency, self.local_rf
            ));
        }
        if let Some(skew) = self.clock.out_of_bounds() {
            return Health::Degraded(skew);
        }
        if let Some(lag) = self.derived_lag_health() {
            return Health::Degraded(lag);
        }
        match self.health.recent_error() {
            Some(e) => Health::Degraded(e),
            None => Health::Ok,
        }
    }

    /// Stops serving: every later call fails with `Closed`, the background work stops
    /// and gives its leases up (so another node takes its journal partitions over at
    /// once instead of after the lease TTL). The session's connections close when the
    /// last handle of the store (and of the session) is dropped. Nothing is buffered in
    /// the store, so there is nothing to flush.
    async fn close(&self) -> Result<(), StoreError> {
        if self.closing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.wake.notify_one();
        self.release_all_leases().await;
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_state_remembers_recent_unavailability_until_a_success() {
        let h = HealthState::default();
        assert_eq!(h.recent_error(), None);
        h.observe::<()>(&Err(StoreError::Invalid("bad cursor".into())));
        assert_eq!(h.recent_error(), None, "caller errors say nothing about reachability");
        h.observe::<()>(&Err(StoreError::Unavailable("2 required, 1 alive".into())));
        assert!(h.recent_error().is_some_and(|e| e.contains("1 alive")));
        h.observe(&Ok(()));
        assert_eq!(h.recent_error(), None);
        h.observe::<()>(&Err(StoreError::Timeout("write timeout".into())));
        assert!(h.recent_error().is_some());
    }
}
