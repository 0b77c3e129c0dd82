//! Leases, fencing and the list of live nodes.
//!
//! A lease is a row of `leases` taken and renewed with a lightweight transaction and
//! expiring by TTL. The holder remembers when it sent its last successful take or renewal
//! (`renewed_at`: the server wrote the row no earlier, and its TTL is one second longer
//! than `ttl` because expiry counts from the server's whole second, so the row lives at
//! least until `renewed_at + ttl`). **Fencing:** rows that only a lease holder writes
//! (journal cursors, activity, backlog figures) carry the holder's own write timestamp,
//! and a holder only writes while its clock is before `renewed_at + ttl − margin`, where
//! the margin is the largest clock offset the store tolerates. A successor takes the lease only after the
//! row expired, so every write of the successor has a larger timestamp than any write of
//! a former holder — even one that was paused for a minute and wakes up believing it
//! still holds the lease: its late write loses (last write wins), instead of overwriting
//! newer state.
//!
//! **Nodes:** each store refreshes its row in `nodes` (TTL) every few seconds; the list
//! of live nodes decides each node's fair share of leased partitions (`fair_share`), so
//! work spreads over the nodes instead of going to whichever started first, and a node
//! that joins takes its share as others hand surplus leases back.

use std::time::Duration;

use scylla::value::{CqlTimestamp, Row};

use super::keys;
use super::state::{Held, fair_share};
use super::store::{OpTimer, ScyllaStore};
use crate::error::StoreError;
use crate::store::NodeInfo;

/// How long a node's heartbeat row lives without a refresh.
pub(super) const NODE_TTL: Duration = Duration::from_secs(15);

impl ScyllaStore {
    /// Takes or renews `name` for `holder`; records the fencing bound on success.
    pub(super) async fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let _t = OpTimer::start("try_lease");
        if holder == self.node && self.is_closed() {
            return Ok(false);
        }
        // A cell's TTL counts from the server's whole second: a row written at 10.9 s with
        // TTL 2 is gone at 12.0 s. One second more keeps the row alive at least until
        // `renewed_at + ttl`, as fencing assumes (module docs).
        let ttl_s = keys::ttl_secs(ttl).saturating_add(1);
        let sent = keys::now_micros();
        // a lease this node believes it holds is renewed first (one transaction instead
        // of a failed take and a renewal); one that expired meanwhile is taken again
        let believed = holder == self.node && self.leases.holds(name);
        let renewed = if believed {
            let qr = self.exec(&self.st.lease_renew, (ttl_s, holder, name, holder)).await?;
            Some(lwt_result(qr)?)
        } else {
            None
        };
        let ok = match renewed {
            Some((true, _)) => true,
            Some((false, Some(other))) if other != holder => false,
            _ => {
                let qr = self.exec(&self.st.lease_take, (name, holder, ttl_s)).await?;
                let (applied, current) = lwt_result(qr)?;
                if applied {
                    true
                } else if current.as_deref() == Some(holder) && !believed {
                    let qr = self.exec(&self.st.lease_renew, (ttl_s, holder, name, holder)).await?;
                    lwt_result(qr)?.0
                } else {
                    false
                }
            }
        };
        if ok && holder == self.node {
            self.leases.record(name, Held { renewed_at_us: sent, ttl });
            if self.is_closed() {
                // close() ran while this was in flight: give it straight back
                let _ = self.unlease(name, holder).await;
                return Ok(false);
            }
        } else if !ok {
            self.leases.forget(name);
        }
        Ok(ok)
    }

    /// Gives `name` up if `holder` holds it.
    pub(super) async fn unlease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let _t = OpTimer::start("release_lease");
        self.leases.forget(name);
        let qr = self.exec(&self.st.lease_release, (name, holder)).await?;
        // not applied = held by someone else (or expired): nothing to release
        lwt_result(qr).map(|_| ())
    }

    /// Gives up every lease this store took for itself and leaves the list of live nodes
    /// (on close), so that the others take its share at once.
    pub(super) async fn release_all_leases(&self) {
        for name in self.leases.names() {
            let _ = tokio::time::timeout(self.cfg.request_timeout(), self.unlease(&name, &self.node.clone())).await;
        }
        let leave = self.write(&self.st.node_leave, (self.node.as_str(),));
        let _ = tokio::time::timeout(self.cfg.request_timeout(), leave).await;
    }

    /// The fenced write timestamp for a row of lease `name` (see the module docs).
    pub(super) fn fenced(&self, name: &str) -> Result<i64, StoreError> {
        self.leases
            .fenced_ts(name, self.cfg.max_clock_skew())
            .ok_or_else(|| StoreError::Conflict(format!("lease {name} is not held (or about to expire)")))
    }

    /// Refreshes this node's heartbeat row.
    pub(super) async fn heartbeat(&self) -> Result<(), StoreError> {
        let fp = self.leases.fingerprint.lock().map(|f| f.clone()).unwrap_or_default();
        let now = CqlTimestamp(keys::now_micros() / 1000);
        self.write(&self.st.node_beat, (self.node.as_str(), now, fp.as_str(), keys::ttl_secs(NODE_TTL))).await
    }

    /// Sets what this node announces as its signer's fingerprint, and announces it now.
    pub(super) fn announce_fingerprint(&self, fp: &str) {
        if let Ok(mut f) = self.leases.fingerprint.lock() {
            *f = fp.to_owned();
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.heartbeat().await {
                tracing::debug!(error = %e, "announcing this node");
            }
        });
    }

    /// The live nodes (those whose heartbeat row has not expired), this one included.
    pub(super) async fn live_nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        let rows: Vec<(String, Option<String>)> = self.all_rows(&self.st.node_all, ()).await?;
        let mut nodes: Vec<NodeInfo> =
            rows.into_iter().map(|(node, fp)| NodeInfo { node, signer_fingerprint: fp.unwrap_or_default() }).collect();
        if !nodes.iter().any(|n| n.node == self.node) {
            let fp = self.leases.fingerprint.lock().map(|f| f.clone()).unwrap_or_default();
            nodes.push(NodeInfo { node: self.node.clone(), signer_fingerprint: fp });
        }
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }

    /// Keeps this node's fair share of the leases `prefix-0 … prefix-(total-1)`: renews
    /// those held (all at once), hands back a surplus (the highest-numbered first), and
    /// tries free ones while below the share. Returns the groups held afterwards: a
    /// renewal that failed drops its group only; when the list of live nodes cannot be
    /// read, the held ones are renewed and nothing is taken or handed back.
    pub(super) async fn balance_leases(&self, prefix: &str, total: u16, ttl: Duration, held: &[u16]) -> Vec<u16> {
        let share = match self.live_nodes().await {
            Ok(n) => fair_share(usize::from(total), n.len()),
            Err(e) => {
                tracing::debug!(error = %e, "listing the live nodes; keeping the leases held");
                held.len()
            }
        };
        let node = self.node.clone();
        let mut held_sorted = held.to_vec();
        held_sorted.sort_unstable();
        let (keep, surplus) = held_sorted.split_at(share.min(held_sorted.len()));
        for p in surplus {
            let _ = self.unlease(&format!("{prefix}-{p}"), &node).await;
        }
        let mut out = self.lease_many(prefix, keep, ttl).await;
        if out.len() < share {
            // start at a node-specific offset so that nodes do not all race for the same ones
            let start = (keys::fnv1a(self.node.as_bytes()) % u64::from(total.max(1))) as u16;
            let free: Vec<u16> =
                (0..total).map(|k| (start + k) % total).filter(|p| !out.contains(p) && !held.contains(p)).collect();
            let mut free = free.into_iter();
            while out.len() < share {
                let want: Vec<u16> = free.by_ref().take(share - out.len()).collect();
                if want.is_empty() {
                    break;
                }
                out.extend(self.lease_many(prefix, &want, ttl).await);
            }
        }
        out.sort_unstable();
        out
    }

    /// Takes or renews `prefix-<p>` for each of `parts` at once; returns those held.
    async fn lease_many(&self, prefix: &str, parts: &[u16], ttl: Duration) -> Vec<u16> {
        let node = self.node.clone();
        let names: Vec<String> = parts.iter().map(|p| format!("{prefix}-{p}")).collect();
        let results = futures::future::join_all(names.iter().map(|n| self.lease(n, &node, ttl))).await;
        parts
            .iter()
            .zip(names.iter().zip(results))
            .filter_map(|(p, (name, r))| match r {
                Ok(true) => Some(*p),
                Ok(false) => None,
                Err(e) => {
                    tracing::warn!(lease = %name, error = %e, "renewing a lease");
                    None
                }
            })
            .collect()
    }
}

/// `[applied]` and the current `holder` of a conditional statement's result.
pub(super) fn lwt_result(
    qr: scylla::response::query_result::QueryResult,
) -> Result<(bool, Option<String>), StoreError> {
    let rows = qr.into_rows_result().map_err(|e| super::errors::from_into_rows(&e))?;
    let specs = rows.column_specs();
    let applied_ix = specs
        .get_by_name("[applied]")
        .map(|(i, _)| i)
        .ok_or_else(|| StoreError::Io("conditional statement without [applied]".into()))?;
    let holder_ix = specs.get_by_name("holder").map(|(i, _)| i);
    let row = rows
        .maybe_first_row::<Row>()
        .map_err(|e| super::errors::from_maybe_first_row(&e))?
        .ok_or_else(|| StoreError::Io("conditional statement without a result row".into()))?;
    let applied = match row.columns.get(applied_ix) {
        Some(Some(v)) => v.as_boolean().ok_or_else(|| StoreError::Corrupt("[applied] is not a boolean".into()))?,
        _ => return Err(StoreError::Corrupt("[applied] is null".into())),
    };
    let holder = holder_ix.and_then(|i| row.columns.get(i).cloned().flatten()).and_then(|v| v.into_string());
    Ok((applied, holder))
}

/// How long ago, in this process, a lease was last renewed (tests).
#[cfg(test)]
fn age(h: &Held) -> Duration {
    Duration::from_micros(u64::try_from(keys::now_micros() - h.renewed_at_us).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scylla::state::LeaseBook;

    #[test]
    fn fair_shares_cover_every_partition() {
        assert_eq!(fair_share(64, 1), 64);
        assert_eq!(fair_share(64, 2), 32);
        assert_eq!(fair_share(64, 3), 22);
        assert_eq!(fair_share(64, 0), 64, "no live node known: this one takes all");
        for live in 1..10 {
            assert!(fair_share(64, live) * live >= 64);
        }
    }

    #[test]
    fn a_holder_stops_writing_before_its_lease_can_have_expired() {
        let book = LeaseBook::default();
        assert_eq!(book.fenced_ts("x", Duration::ZERO), None, "not held");
        let now = keys::now_micros();
        book.record("x", Held { renewed_at_us: now, ttl: Duration::from_secs(30) });
        let ts = book.fenced_ts("x", Duration::from_secs(2)).expect("held");
        assert!(ts >= now);
        // renewed 29 s ago: within 2 s of expiry, no more writes
        book.record("x", Held { renewed_at_us: now - 29_000_000, ttl: Duration::from_secs(30) });
        assert_eq!(book.fenced_ts("x", Duration::from_secs(2)), None);
        assert!(age(&Held { renewed_at_us: now - 29_000_000, ttl: Duration::ZERO }) >= Duration::from_secs(29));
        book.forget("x");
        assert_eq!(book.names(), Vec::<String>::new());
    }
}
