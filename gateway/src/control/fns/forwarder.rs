//! The forwarder: drains the outbox to the FNS endpoint.
//!
//! Work is split into [`DELIVERY_PARTITIONS`] partitions by FN. A node works only on the
//! partitions whose lease (`fns-partition-<p>`) it holds: its fair share of them among the
//! live nodes sharing the store (the store lists them), renewed at about a third of their
//! TTL with jitter; free partitions are taken while below the share, so a dead node's
//! partitions are taken over once its leases expire, and with one node every partition is
//! its own. The leases are kept by a loop of their own, beside the delivery rounds, so a
//! long round (a large backlog, a slow cluster) never delays a renewal until the lease is
//! lost. Within a node one loop delivers from all its partitions, so no document is in
//! flight twice; between nodes the leases keep a document with one node (a lease that expires
//! during a round can at worst make two nodes send the same document, which the
//! idempotency key covers).
//!
//! A round takes the due deliveries of every owned partition (oldest first, `batch` per
//! partition), sends them with at most `concurrency` requests in flight, marks each
//! success delivered as soon as it is answered (before its request slot is freed: the
//! store's group commit turns the concurrent marks into a few writes) and reschedules
//! each failure with exponential backoff and jitter. So a crash repeats at most the
//! `concurrency` deliveries in flight, never a whole round. When the endpoint is down, a round stops after `concurrency` consecutive
//! failures instead of trying every due document (those stay due and are tried next
//! round). On shutdown the requests in flight finish and their outcome is recorded before
//! the leases are released.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use storage::model::{DELIVERY_PARTITIONS, Delivery, DocumentKey};
use storage::{Store, Timestamp};
use tokio_util::sync::CancellationToken;

use super::backoff;
use super::client::{FnsClient, SendError};
use crate::config::FnsConfig;
use crate::metrics as m;

/// Where in 0..64 a node starts looking for free partitions.
fn node_offset(node: &str) -> u16 {
    let h = node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    (h % u64::from(DELIVERY_PARTITIONS)) as u16
}

/// Partitions whose leases (or due lists) are asked for at once.
const LEASE_CONCURRENCY: usize = 16;

/// The lease name of a delivery partition.
pub fn lease_name(partition: u16) -> String {
    format!("fns-partition-{partition}")
}

/// Drains the outbox of the partitions this node leases.
pub struct Forwarder {
    store: Arc<dyn Store>,
    client: FnsClient,
    cfg: FnsConfig,
    node: String,
    /// Partitions leased (the lease loop writes, the delivery rounds read a copy).
    owned: Mutex<BTreeSet<u16>>,
    /// Live nodes sharing the store, as last listed (kept when the store cannot say).
    live: AtomicUsize,
    /// Once cancelled, no new request is started (those in flight finish).
    stop: CancellationToken,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundStats {
    /// Delivered (2xx).
    pub delivered: usize,
    /// Failed and rescheduled.
    pub failed: usize,
    /// Due but not tried (the endpoint looked down).
    pub skipped: usize,
    /// A partition had more due deliveries than one batch.
    pub more: bool,
    /// Due but not sent: the partition was handed to another node during the round.
    pub handed_over: usize,
}

enum Outcome {
    Delivered,
    Failed,
    Skipped,
    HandedOver,
}

impl Forwarder {
    /// A forwarder for this node.
    pub fn new(store: Arc<dyn Store>, client: FnsClient, cfg: FnsConfig, node: String) -> Self {
        Self {
            store,
            client,
            cfg,
            node,
            owned: Mutex::new(BTreeSet::new()),
            live: AtomicUsize::new(1),
            stop: CancellationToken::new(),
        }
    }

    /// Partitions currently leased.
    pub fn owned(&self) -> BTreeSet<u16> {
        self.owned.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Keeps this node's fair share of the partition leases: renews those held, hands
    /// back a surplus when more nodes share the store (the highest first), and takes free
    /// ones while below the share. With one node that is every partition; with N, about
    /// 64/N each, so a node that joins takes its share as the others give theirs up.
    pub async fn renew_leases(&self) {
        let live = match self.store.cluster_nodes().await {
            Ok(nodes) => nodes.len().max(1),
            Err(e) => {
                // unknown: keep the last count rather than grabbing (or dropping) shares
                tracing::debug!(error = %e, "listing the nodes sharing the store");
                self.live.load(Ordering::Relaxed)
            }
        };
        self.live.store(live, Ordering::Relaxed);
        let share = usize::from(DELIVERY_PARTITIONS).div_ceil(live);
        let held: Vec<u16> = self.owned().into_iter().collect();
        let (keep, surplus) = held.split_at(share.min(held.len()));
        for p in surplus {
            if let Err(e) = self.store.release_lease(&lease_name(*p), &self.node).await {
                tracing::debug!(partition = p, error = %e, "handing an FNS partition lease back");
            }
            self.lose(*p);
            tracing::info!(partition = p, live, "FNS partition handed back to share the work");
        }
        // renewals at once (one lightweight transaction each; one after the other they
        // could outlast the lease itself on a loaded cluster)
        self.lease_all(keep.to_vec()).await;
        // free partitions, starting at a node-specific offset so nodes do not race for the
        // same ones, as many at a time as are missing
        let start = node_offset(&self.node);
        let owned = self.owned();
        let free: Vec<u16> = (0..DELIVERY_PARTITIONS)
            .map(|k| (start + k) % DELIVERY_PARTITIONS)
            .filter(|p| !owned.contains(p))
            .collect();
        let mut candidates = free.into_iter();
        loop {
            let missing = share.saturating_sub(self.owned().len());
            let want: Vec<u16> = candidates.by_ref().take(missing).collect();
            if want.is_empty() {
                break;
            }
            self.lease_all(want).await;
        }
        metrics::gauge!(m::FNS_PARTITIONS).set(self.owned().len() as f64);
    }

    /// Takes or renews the leases of `parts`, concurrently.
    async fn lease_all(&self, parts: Vec<u16>) {
        let (store, node, ttl) = (&self.store, &self.node, self.cfg.lease_ttl);
        let results = futures::stream::iter(parts)
            .map(|p| async move { (p, store.try_lease(&lease_name(p), node, ttl).await) })
            .buffer_unordered(LEASE_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        for (p, r) in results {
            match r {
                Ok(true) => {
                    if self.owned.lock().is_ok_and(|mut o| o.insert(p)) {
                        // another node may have delivered from it since this one last did
                        self.store.forget_partition(p);
                        tracing::debug!(partition = p, "FNS partition lease taken");
                    }
                }
                Ok(false) => {
                    if self.lose(p) {
                        tracing::warn!(partition = p, "FNS partition lease lost to another node");
                    }
                }
                Err(e) => {
                    // Unknown: stop working on it until a renewal succeeds (another node
                    // may take it when our lease runs out).
                    self.lose(p);
                    tracing::warn!(partition = p, error = %e, "renewing an FNS partition lease");
                }
            }
        }
    }

    /// No longer works on `p`; true if it did.
    fn lose(&self, p: u16) -> bool {
        let had = self.owned.lock().is_ok_and(|mut o| o.remove(&p));
        if had {
            self.store.forget_partition(p);
        }
        had
    }

    /// Releases every lease held.
    pub async fn release_leases(&self) {
        let owned = self.owned.lock().map(|mut o| std::mem::take(&mut *o)).unwrap_or_default();
        for p in owned {
            self.store.forget_partition(p);
            if let Err(e) = self.store.release_lease(&lease_name(p), &self.node).await {
                tracing::debug!(partition = p, error = %e, "releasing an FNS partition lease");
            }
        }
        metrics::gauge!(m::FNS_PARTITIONS).set(0.0);
    }

    /// One round over the owned partitions.
    pub async fn round(&self) -> RoundStats {
        let now = Timestamp::now();
        let mut due: Vec<Delivery> = Vec::new();
        let mut stats = RoundStats::default();
        let lists = futures::stream::iter(self.owned())
            .map(|p| async move { (p, self.store.due_deliveries(p, now, self.cfg.batch).await) })
            .buffer_unordered(LEASE_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        for (p, r) in lists {
            match r {
                Ok(list) => {
                    stats.more |= list.len() >= self.cfg.batch as usize;
                    due.extend(list);
                }
                Err(e) => tracing::warn!(partition = p, error = %e, "reading due FNS deliveries"),
            }
        }
        if due.is_empty() {
            return stats;
        }
        let consecutive_failures = AtomicUsize::new(0);
        let limit = self.cfg.concurrency.max(1);
        let mut outcomes = futures::stream::iter(due)
            .map(|d| self.deliver_one(d, &consecutive_failures, limit))
            .buffer_unordered(limit);
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Outcome::Delivered => stats.delivered += 1,
                Outcome::Failed => stats.failed += 1,
                Outcome::Skipped => stats.skipped += 1,
                Outcome::HandedOver => stats.handed_over += 1,
            }
        }
        if stats.skipped > 0 {
            // The endpoint looks down: do not come straight back for the rest.
            stats.more = false;
        }
        stats
    }

    /// Records a delivery (durably, before the caller frees its request slot).
    async fn mark(&self, key: DocumentKey, queued_at: Timestamp) {
        let at = Timestamp::now();
        match self.store.mark_delivered(&[key], at).await {
            Ok(()) => metrics::histogram!(m::FNS_DELIVERY_DELAY).record(at.since(queued_at).as_secs_f64()),
            // Delivered but not recorded: it stays due and is sent again (the receiver
            // deduplicates by the idempotency key).
            Err(e) => {
                tracing::warn!(fn_number = %key.fn_number, fd = key.fd, error = %e, "marking an FNS delivery")
            }
        }
    }

    async fn deliver_one(&self, d: Delivery, consecutive_failures: &AtomicUsize, limit: usize) -> Outcome {
        if consecutive_failures.load(Ordering::Relaxed) >= limit || self.stop.is_cancelled() {
            return Outcome::Skipped;
        }
        if !self.owned.lock().is_ok_and(|o| o.contains(&d.partition)) {
            // the partition was handed over (or its lease lost) during this round: its new
            // holder sends what is still due, so sending it here too would duplicate it
            return Outcome::HandedOver;
        }
        let result = match self.store.get_document(&d.key).await {
            Ok(Some(doc)) => self.client.deliver(&doc, None).await,
            Ok(None) => Err(SendError::Other("document missing from the store".into())),
            Err(e) => {
                tracing::warn!(fn_number = %d.key.fn_number, fd = d.key.fd, error = %e, "reading a document to forward");
                return Outcome::Skipped;
            }
        };
        match result {
            Ok(()) => {
                consecutive_failures.store(0, Ordering::Relaxed);
                metrics::counter!(m::FNS_DELIVERIES, "result" => "delivered").increment(1);
                self.mark(d.key, d.queued_at).await;
                Outcome::Delivered
            }
            Err(e) => {
                consecutive_failures.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(m::FNS_DELIVERIES, "result" => e.label()).increment(1);
                let delay = backoff(self.cfg.retry_initial, self.cfg.retry_max, d.attempts);
                let next = Timestamp::now().plus(delay);
                tracing::debug!(
                    fn_number = %d.key.fn_number, fd = d.key.fd, attempts = d.attempts + 1,
                    error = %e, retry_in = ?delay, "FNS delivery failed"
                );
                if let Err(se) = self.store.record_delivery_failure(&d.key, &e.to_string(), next).await {
                    tracing::warn!(error = %se, "recording an FNS delivery failure");
                }
                Outcome::Failed
            }
        }
    }

    /// Runs until `stop`: keeps the leases (a loop of its own, renewing at a third of
    /// their TTL with jitter) while delivering round after round (at once while there is
    /// more, else after `poll_interval`); releases the leases at the end.
    pub async fn run(mut self, stop: CancellationToken) {
        self.stop = stop.clone();
        let renew_every = (self.cfg.lease_ttl / 3).max(Duration::from_millis(10));
        let this = &self;
        let leases = async {
            loop {
                this.renew_leases().await;
                // jittered, so that nodes started together do not renew in lockstep
                let jitter = Duration::from_millis(rand::random::<u64>() % (renew_every.as_millis() as u64 / 5).max(1));
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(renew_every.saturating_sub(jitter)) => {}
                }
            }
        };
        let deliveries = async {
            let mut last_failure_log: Option<Instant> = None;
            loop {
                if stop.is_cancelled() {
                    return;
                }
                let stats = this.round().await;
                if stats.failed > 0 && last_failure_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                    tracing::warn!(
                        url = %this.client.url(),
                        failed = stats.failed,
                        delivered = stats.delivered,
                        "FNS deliveries failing; they are retried with backoff"
                    );
                    last_failure_log = Some(Instant::now());
                }
                if stats.more {
                    tokio::task::yield_now().await;
                    continue;
                }
                let pause = this.cfg.poll_interval.min(renew_every);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        };
        tokio::join!(leases, deliveries);
        self.release_leases().await;
    }
}

/// Samples the backlog (size, oldest age) into the metrics every `every`.
pub async fn backlog_loop(store: Arc<dyn Store>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.backlog().await {
            Ok(b) => {
                metrics::gauge!(m::FNS_BACKLOG).set(b.pending as f64);
                let age = b.oldest_queued_at.map_or(0.0, |t| Timestamp::now().since(t).as_secs_f64());
                metrics::gauge!(m::FNS_OLDEST_AGE).set(age);
            }
            Err(e) => tracing::debug!(error = %e, "sampling the FNS backlog"),
        }
    }
}
