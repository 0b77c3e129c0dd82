//! Kept whole: the connection, start-up checks and shared helpers of the CQL backend; it is being reworked for the cluster path (issue 13), which splits it.
//! `ScyllaStore`: connection, start-up checks, shared helpers, health, and the `Store`
//! trait. The other traits are implemented in `documents`, `registers`, `delivery` and
//! `admin`.

use std::collections::{HashMap, HashSet};
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
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency, Statement};
use scylla::value::CqlTimestamp;

use super::config::ScyllaConfig;
use super::errors;
use super::keys;
use super::schema;
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
        .default_execution_profile_handle(profile(cfg, cfg.local_dc.clone(), cfg.consistency.to_driver()).into_handle())
        .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()));
    if let Some(user) = &cfg.username {
        b = b.user(user.clone(), cfg.password.clone().unwrap_or_default());
    }
    b.build().await.map_err(|e| errors::from_new_session(&e))
}

fn profile(cfg: &ScyllaConfig, dc: Option<String>, consistency: Consistency) -> ExecutionProfile {
    let mut lb = DefaultPolicy::builder().token_aware(true).permit_dc_failover(false);
    if let Some(dc) = dc {
        lb = lb.prefer_datacenter(dc);
    }
    ExecutionProfile::builder()
        .consistency(consistency)
        .serial_consistency(Some(SerialConsistency::LocalSerial))
        .request_timeout(Some(cfg.request_timeout()))
        .load_balancing_policy(lb.build())
        .build()
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

/// How long a failed request keeps the store `Degraded` without a later success.
const HEALTH_ERROR_WINDOW: Duration = Duration::from_secs(30);

/// What recent requests said about reachability.
#[derive(Debug, Default)]
struct HealthState {
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

/// Entries already written to the directory tables by this process (they are idempotent
/// upserts, so the cache only saves writes; it is cleared when it grows large).
#[derive(Debug, Default)]
pub(super) struct DirCache(Mutex<HashSet<String>>);

impl DirCache {
    const MAX: usize = 500_000;

    pub(super) fn contains(&self, key: &str) -> bool {
        self.0.lock().map(|s| s.contains(key)).unwrap_or(false)
    }

    pub(super) fn insert(&self, key: String) {
        if let Ok(mut s) = self.0.lock() {
            if s.len() >= Self::MAX {
                s.clear();
            }
            s.insert(key);
        }
    }
}

/// The ScyllaDB backend of the [`Store`].
pub struct ScyllaStore {
    pub(super) session: Arc<Session>,
    pub(super) st: Stmts,
    pub(super) cfg: ScyllaConfig,
    pub(super) profiles: Profiles,
    /// The local datacenter (configured, or the only one the cluster has).
    pub(super) local_dc: Option<String>,
    /// Replication factor of the keyspace in the local datacenter.
    pub(super) local_rf: u32,
    /// When schema version 1 was applied: no outbox entry is older.
    pub(super) schema_epoch: Timestamp,
    pub(super) dirs: DirCache,
    /// Striped locks serialising appends of the same (FN, FD) within this process.
    pub(super) key_locks: Vec<tokio::sync::Mutex<()>>,
    /// Striped locks serialising the activity read-modify-write of one register within
    /// this process (a separate array: a task holding key stripes takes one of these).
    pub(super) register_locks: Vec<tokio::sync::Mutex<()>>,
    health: HealthState,
    closed: AtomicBool,
}

impl std::fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("keyspace", &self.cfg.keyspace)
            .field("local_dc", &self.local_dc)
            .field("local_rf", &self.local_rf)
            .field("consistency", &self.cfg.consistency)
            .finish_non_exhaustive()
    }
}

impl ScyllaStore {
    /// Validates the configuration, connects, checks the keyspace (schema version,
    /// replication factor, datacenter) and prepares every statement.
    pub async fn connect(cfg: ScyllaConfig) -> Result<Self, StoreError> {
        let session = connect_session(&cfg).await?;
        Box::pin(Self::with_session(Arc::new(session), cfg)).await
    }

    /// Like [`connect`](Self::connect) with an existing session (e.g. the one a
    /// migration just used). Build it with [`connect_session`] so that it has the
    /// monotonic timestamp generator.
    pub async fn with_session(session: Arc<Session>, cfg: ScyllaConfig) -> Result<Self, StoreError> {
        cfg.validate()?;
        let local_dc = resolve_local_dc(&session, cfg.local_dc.as_deref())?;
        let local_rf = check_keyspace(&session, &cfg, local_dc.as_deref()).await?;
        let schema_epoch = check_schema(&session, &cfg.keyspace).await?;
        let profiles = Profiles {
            write: profile(&cfg, local_dc.clone(), cfg.consistency.to_driver()).into_handle(),
            read: profile(&cfg, local_dc.clone(), cfg.consistency.for_reads().to_driver()).into_handle(),
            lwt: profile(&cfg, local_dc.clone(), Consistency::LocalQuorum).into_handle(),
        };
        // boxed: ~80 sequential prepares make a large future
        let st = Box::pin(Stmts::prepare(&session, &cfg.keyspace, &profiles)).await?;
        tracing::info!(
            keyspace = %cfg.keyspace,
            local_dc = local_dc.as_deref().unwrap_or("-"),
            replication_factor = local_rf,
            consistency = %cfg.consistency,
            "scylla store ready"
        );
        Ok(Self {
            session,
            st,
            cfg,
            profiles,
            local_dc,
            local_rf,
            schema_epoch,
            dirs: DirCache::default(),
            key_locks: (0..KEY_LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            register_locks: (0..KEY_LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            health: HealthState::default(),
            closed: AtomicBool::new(false),
        })
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

    /// Runs a logged batch with the write profile. Logged: the batch log makes the
    /// mutations of several partitions apply all or none (eventually), which is what
    /// couples a document's commit record with its register's activity.
    pub(super) async fn logged_batch(
        &self,
        stmts: Vec<&PreparedStatement>,
        values: Vec<Box<dyn SerializeRow + Send + Sync + '_>>,
    ) -> Result<(), StoreError> {
        self.check_open()?;
        let mut batch = Batch::new(BatchType::Logged);
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

    /// Upserts a numeric directory entry unless this process already did.
    pub(super) async fn dir_int(&self, kind: &str, owner: &str, entry: i64, ttl_secs: i32) -> Result<(), StoreError> {
        let key = format!("i|{kind}|{owner}|{entry}");
        if self.dirs.contains(&key) {
            return Ok(());
        }
        self.write(&self.st.dir_int_insert, (kind, owner, entry, ttl_secs)).await?;
        self.dirs.insert(key);
        Ok(())
    }

    /// Upserts a text directory entry unless this process already did.
    pub(super) async fn dir_text(&self, kind: &str, owner: &str, entry: &str) -> Result<(), StoreError> {
        let key = format!("t|{kind}|{owner}|{entry}");
        if self.dirs.contains(&key) {
            return Ok(());
        }
        self.write(&self.st.dir_text_insert, (kind, owner, entry)).await?;
        self.dirs.insert(key);
        Ok(())
    }

    /// Numeric directory entries in `[lo, hi]`, ascending or descending.
    pub(super) async fn dir_int_range(
        &self,
        kind: &str,
        owner: &str,
        lo: i64,
        hi: i64,
        descending: bool,
    ) -> Result<Vec<i64>, StoreError> {
        if lo > hi {
            return Ok(Vec::new());
        }
        let stmt = if descending { &self.st.dir_int_desc } else { &self.st.dir_int_asc };
        let rows: Vec<(i64,)> = self.all_rows(stmt, (kind, owner, lo, hi)).await?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }

    /// Text directory entries from `from` (inclusive), ascending.
    pub(super) async fn dir_text_from(&self, kind: &str, owner: &str, from: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = self.all_rows(&self.st.dir_text_from, (kind, owner, from)).await?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
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

/// The local datacenter: the configured one (which must exist), or the only one.
fn resolve_local_dc(session: &Session, configured: Option<&str>) -> Result<Option<String>, StoreError> {
    let state = session.get_cluster_state();
    let dcs: HashSet<String> = state.get_nodes_info().iter().filter_map(|n| n.datacenter.clone()).collect();
    let mut known: Vec<&String> = dcs.iter().collect();
    known.sort();
    match configured {
        Some(dc) if dcs.is_empty() || dcs.contains(dc) => Ok(Some(dc.to_owned())),
        Some(dc) => Err(StoreError::Invalid(format!(
            "storage.local_dc {dc:?} is not a datacenter of the cluster (known: {known:?})"
        ))),
        None if dcs.len() <= 1 => Ok(dcs.into_iter().next()),
        None => Err(StoreError::Invalid(format!(
            "the cluster has several datacenters {known:?}: set storage.local_dc, or \
             LOCAL_QUORUM would count the replicas of whichever datacenter answers"
        ))),
    }
}

/// Checks that the keyspace exists and is replicated enough in the local DC; returns
/// its local replication factor.
async fn check_keyspace(session: &Session, cfg: &ScyllaConfig, dc: Option<&str>) -> Result<u32, StoreError> {
    let mut s = Statement::new("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?");
    s.set_consistency(Consistency::LocalQuorum);
    let rows = session
        .query_unpaged(s, (cfg.keyspace.as_str(),))
        .await
        .map_err(|e| errors::from_execution(&e))?
        .into_rows_result()
        .map_err(|e| errors::from_into_rows(&e))?;
    let Some((replication,)) =
        rows.maybe_first_row::<(HashMap<String, String>,)>().map_err(|e| errors::from_maybe_first_row(&e))?
    else {
        return Err(StoreError::Invalid(format!(
            "keyspace {} does not exist: run the schema migration first",
            cfg.keyspace
        )));
    };
    let rf = replication_factor(&replication, dc).ok_or_else(|| {
        StoreError::Invalid(format!(
            "keyspace {} is not replicated in datacenter {:?} (replication {replication:?})",
            cfg.keyspace,
            dc.unwrap_or("?")
        ))
    })?;
    if rf < cfg.min_replication_factor {
        return Err(StoreError::Invalid(format!(
            "keyspace {} has replication factor {rf} in {:?}, below storage.min_replication_factor \
             = {}: a quorum of fewer than 3 replicas does not survive a node loss",
            cfg.keyspace,
            dc.unwrap_or("?"),
            cfg.min_replication_factor
        )));
    }
    Ok(rf)
}

/// The replication factor of a keyspace in a DC, from its replication map.
pub(super) fn replication_factor(replication: &HashMap<String, String>, dc: Option<&str>) -> Option<u32> {
    let class = replication.get("class")?;
    if class.ends_with("SimpleStrategy") {
        return replication.get("replication_factor")?.parse().ok();
    }
    match dc {
        Some(dc) => replication.get(dc)?.parse().ok(),
        // one DC, name unknown: the only numeric entry
        None => {
            let mut rfs =
                replication.iter().filter(|(k, _)| k.as_str() != "class").filter_map(|(_, v)| v.parse::<u32>().ok());
            let first = rfs.next()?;
            rfs.next().is_none().then_some(first)
        }
    }
}

/// Checks that the schema this build needs is applied; returns when version 1 was.
async fn check_schema(session: &Session, keyspace: &str) -> Result<Timestamp, StoreError> {
    let applied = schema::applied_versions(session, keyspace).await?;
    let need = schema::required_version();
    if !applied.contains_key(&need) {
        return Err(StoreError::Invalid(format!(
            "keyspace {keyspace} has schema versions {:?}; this build needs version {need}: \
             run the schema migration",
            applied.keys().collect::<Vec<_>>()
        )));
    }
    let mut s =
        Statement::new(format!("SELECT applied_at FROM {keyspace}.schema_version WHERE shard = 0 AND version = 1"));
    s.set_consistency(Consistency::LocalQuorum);
    let rows = session
        .query_unpaged(s, ())
        .await
        .map_err(|e| errors::from_execution(&e))?
        .into_rows_result()
        .map_err(|e| errors::from_into_rows(&e))?;
    let at = rows
        .maybe_first_row::<(Option<CqlTimestamp>,)>()
        .map_err(|e| errors::from_maybe_first_row(&e))?
        .and_then(|(t,)| t)
        .map(super::rows::from_ts)
        .ok_or_else(|| StoreError::Corrupt("schema version 1 has no applied_at".into()))?;
    Ok(at)
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
        match self.health.recent_error() {
            Some(e) => Health::Degraded(e),
            None => Health::Ok,
        }
    }

    /// Stops serving: every later call fails with `Closed`. The session's connections
    /// close when the last `Arc` of the store (and of the session) is dropped. Nothing is
    /// buffered in the store, so there is nothing to flush.
    async fn close(&self) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

/// TTLs of directory entries (seconds; 0 = none).
pub(super) mod dir_ttl {
    use super::keys::RETENTION_SECS;

    fn secs(v: i64) -> i32 {
        i32::try_from(v).unwrap_or(i32::MAX)
    }

    /// FD buckets of an FN: an FN lives at most ~3 years, so its last documents expire
    /// within retention + 3 years of its first.
    pub fn fn_docs() -> i32 {
        secs(RETENTION_SECS + 4 * 365 * 86_400)
    }
    /// Days of a register's time index.
    pub fn reg_docs() -> i32 {
        secs(RETENTION_SECS + 2 * 86_400)
    }
    /// Days of the audit log.
    pub fn audit() -> i32 {
        secs(RETENTION_SECS + 2 * 86_400)
    }
    /// Days of notifications (their rows live 366 days).
    pub fn notes() -> i32 {
        secs(368 * 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_factor_from_maps() {
        let nts = HashMap::from([
            ("class".to_owned(), "org.apache.cassandra.locator.NetworkTopologyStrategy".to_owned()),
            ("dc1".to_owned(), "3".to_owned()),
            ("dc2".to_owned(), "2".to_owned()),
        ]);
        assert_eq!(replication_factor(&nts, Some("dc1")), Some(3));
        assert_eq!(replication_factor(&nts, Some("dc2")), Some(2));
        assert_eq!(replication_factor(&nts, Some("dc3")), None);
        assert_eq!(replication_factor(&nts, None), None, "ambiguous");
        let one = HashMap::from([
            ("class".to_owned(), "NetworkTopologyStrategy".to_owned()),
            ("datacenter1".to_owned(), "1".to_owned()),
        ]);
        assert_eq!(replication_factor(&one, None), Some(1));
        let simple = HashMap::from([
            ("class".to_owned(), "org.apache.cassandra.locator.SimpleStrategy".to_owned()),
            ("replication_factor".to_owned(), "3".to_owned()),
        ]);
        assert_eq!(replication_factor(&simple, Some("dc1")), Some(3));
        assert_eq!(replication_factor(&HashMap::new(), Some("dc1")), None);
    }

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

    #[test]
    fn dir_cache_is_bounded() {
        let c = DirCache::default();
        c.insert("a".into());
        assert!(c.contains("a"));
        for i in 0..DirCache::MAX {
            c.insert(i.to_string());
        }
        assert!(!c.contains("a"), "cleared when full");
    }
}
