//! What the store checks at start-up, before it serves: the local datacenter, the
//! keyspace's replication, the schema version, and whether the cluster's commit log makes
//! an acknowledged write durable (`commitlog_sync`).

use std::collections::{HashMap, HashSet};

use scylla::client::session::Session;
use scylla::statement::{Consistency, Statement};
use scylla::value::CqlTimestamp;

use super::config::ScyllaConfig;
use super::{errors, schema};
use crate::error::StoreError;
use crate::ids::Timestamp;

/// The local datacenter: the configured one (which must exist), or the only one.
pub(super) fn resolve_local_dc(session: &Session, configured: Option<&str>) -> Result<Option<String>, StoreError> {
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
pub(super) async fn check_keyspace(session: &Session, cfg: &ScyllaConfig, dc: Option<&str>) -> Result<u32, StoreError> {
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
pub(super) async fn check_schema(session: &Session, keyspace: &str) -> Result<Timestamp, StoreError> {
    let applied = schema::applied_versions(session, keyspace).await?;
    let need = schema::required_version();
    let missing: Vec<u32> =
        schema::SCHEMA_FILES.iter().map(|f| f.version).filter(|v| !applied.contains_key(v)).collect();
    if !missing.is_empty() {
        return Err(StoreError::Invalid(format!(
            "keyspace {keyspace} has schema versions {:?}; this build needs versions 1 to {need}, \
             missing {missing:?}: run the schema migration",
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

/// How the cluster syncs its commit log, as far as the server says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitlogSync {
    /// `batch` or `group`: a write is answered after its commit log entry is synced.
    Durable(String),
    /// `periodic`: replicas answer from memory and sync every few seconds.
    Periodic,
    /// The server does not expose the setting (ScyllaDB without `system.config` access,
    /// or an older Cassandra).
    Unknown,
}

/// Reads `commitlog_sync` from `system_views.settings` (Apache Cassandra 4+) or
/// `system.config` (ScyllaDB), from the node the driver picks.
pub async fn commitlog_sync(session: &Session) -> CommitlogSync {
    for q in [
        "SELECT value FROM system_views.settings WHERE name = 'commitlog_sync'",
        "SELECT value FROM system.config WHERE name = 'commitlog_sync'",
    ] {
        let mut s = Statement::new(q);
        s.set_consistency(Consistency::One);
        let Ok(r) = session.query_unpaged(s, ()).await else { continue };
        let Ok(rows) = r.into_rows_result() else { continue };
        let Ok(Some((v,))) = rows.maybe_first_row::<(Option<String>,)>() else { continue };
        let v = v.unwrap_or_default();
        let v = v.trim().trim_matches('"').to_ascii_lowercase();
        return match v.as_str() {
            "periodic" => CommitlogSync::Periodic,
            "" => CommitlogSync::Unknown,
            other => CommitlogSync::Durable(other.to_owned()),
        };
    }
    CommitlogSync::Unknown
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
}
