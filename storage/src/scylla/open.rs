//! Opening the CQL store: connect, check the cluster and the keyspace, prepare every
//! statement, start the store's background work.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use scylla::client::session::Session;
use scylla::statement::Consistency;

use super::checks::{CommitlogSync, check_keyspace, check_schema, commitlog_sync, resolve_local_dc};
use super::config::ScyllaConfig;
use super::state::{ClockState, DirCache, Follow, LeaseBook};
use super::statements::{Profiles, Stmts};
use super::store::{HealthState, Inner, KEY_LOCK_STRIPES, ScyllaStore, connect_session, profile, rand_u64};
use crate::error::StoreError;

impl ScyllaStore {
    /// Validates the configuration, connects (bounded by the connect timeout, naming the
    /// contact points when none answers), checks the keyspace (schema version,
    /// replication factor, datacenter) and the cluster's commit-log mode, prepares every
    /// statement and starts the store's background work.
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
        match commitlog_sync(&session).await {
            CommitlogSync::Durable(mode) => {
                tracing::info!(commitlog_sync = %mode, "the cluster syncs its commit log before answering a write")
            }
            CommitlogSync::Periodic if cfg.allow_periodic_commitlog => tracing::warn!(
                "the cluster's commitlog_sync is periodic: replicas answer writes from memory, so an \
                 acknowledged document can be lost to a power cut of a quorum of replicas \
                 (allowed by storage.allow_periodic_commitlog)"
            ),
            CommitlogSync::Periodic => {
                return Err(StoreError::Invalid(
                    "the cluster's commitlog_sync is periodic: replicas answer writes from memory, so an \
                     acknowledged document could be lost to a power cut; set commitlog_sync: batch (or \
                     group) on every node, or accept the risk with storage.allow_periodic_commitlog = true"
                        .into(),
                ));
            }
            CommitlogSync::Unknown => tracing::warn!(
                "the cluster does not say how it syncs its commit log (system_views.settings / system.config); \
                 make sure every node runs commitlog_sync: batch, or acknowledged documents are not durable \
                 against a power cut"
            ),
        }
        let profiles = Profiles {
            write: profile(&cfg, local_dc.clone(), cfg.consistency.to_driver(), true).into_handle(),
            read: profile(&cfg, local_dc.clone(), cfg.consistency.for_reads().to_driver(), true).into_handle(),
            lwt: profile(&cfg, local_dc.clone(), Consistency::LocalQuorum, false).into_handle(),
        };
        // boxed: ~80 sequential prepares make a large future
        let st = Box::pin(Stmts::prepare(&session, &cfg.keyspace, &profiles)).await?;
        let node = cfg.node_id.clone().unwrap_or_else(|| format!("store-{:016x}", rand_u64()));
        tracing::info!(
            keyspace = %cfg.keyspace,
            local_dc = local_dc.as_deref().unwrap_or("-"),
            replication_factor = local_rf,
            consistency = %cfg.consistency,
            node = %node,
            "scylla store ready"
        );
        let store = Self::from_inner(Arc::new(Inner {
            session,
            st,
            cfg,
            profiles,
            local_dc,
            local_rf,
            schema_epoch,
            dirs: DirCache::default(),
            key_locks: (0..KEY_LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            node,
            leases: LeaseBook::default(),
            follow: Follow::default(),
            clock: ClockState::default(),
            health: HealthState::default(),
            closing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            wake: Arc::new(tokio::sync::Notify::new()),
        }));
        store.measure_clock().await;
        super::background::spawn(Arc::downgrade(store.inner()), store.wake.clone());
        Ok(store)
    }
}
