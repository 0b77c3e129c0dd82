//! The webhook notifier: delivers due [`AlertNotification`]s (lease `alerts-notifier`, one
//! node at a time). Each is POSTed as JSON with the header `X-Alert-Notification: <id>`
//! (a receiver can deduplicate on it). A 2xx answer marks it delivered; anything else is
//! retried with exponential backoff and jitter, and after `webhook_max_attempts` attempts
//! it is abandoned — kept, with its last error, for the admin API to show.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use storage::model::AlertNotification;
use storage::{Store, StoreError, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::config::AlertsConfig;
use crate::control::fns::backoff;
use crate::control::fns::receiver::NOTIFICATION_ID;
use crate::metrics as m;

/// The notifier lease.
pub const LEASE: &str = "alerts-notifier";

/// Notifications taken per batch.
const BATCH: u32 = 100;
/// Webhook requests in flight.
const CONCURRENCY: usize = 8;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NotifyStats {
    /// Delivered.
    pub delivered: usize,
    /// Failed, to be retried.
    pub failed: usize,
    /// Failed for the last time.
    pub abandoned: usize,
}

/// Delivers webhook notifications.
pub struct Notifier {
    store: Arc<dyn Store>,
    http: reqwest::Client,
    cfg: AlertsConfig,
    node: String,
}

impl Notifier {
    /// A notifier for this node.
    pub fn new(store: Arc<dyn Store>, cfg: AlertsConfig, node: String) -> anyhow::Result<Self> {
        crate::control::fns::client::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(cfg.webhook_timeout)
            .connect_timeout(cfg.webhook_timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("ofd-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("building the webhook HTTP client: {e}"))?;
        Ok(Self { store, http, cfg, node })
    }

    async fn post(&self, n: &AlertNotification) -> Result<(), String> {
        let resp = self
            .http
            .post(&n.webhook)
            .header(NOTIFICATION_ID, n.id.to_string())
            .json(&n.payload)
            .send()
            .await
            .map_err(|e| {
            if e.is_timeout() {
                "timeout".to_owned()
            } else {
                let mut cur: &dyn std::error::Error = &e;
                while let Some(next) = cur.source() {
                    cur = next;
                }
                cur.to_string()
            }
        })?;
        if resp.status().is_success() { Ok(()) } else { Err(format!("HTTP {}", resp.status().as_u16())) }
    }

    async fn attempt(&self, mut n: AlertNotification) -> (AlertNotification, &'static str) {
        let result = self.post(&n).await;
        let now = Timestamp::now();
        n.attempts = n.attempts.saturating_add(1);
        let outcome = match result {
            Ok(()) => {
                n.delivered_at = Some(now);
                n.last_error = None;
                "delivered"
            }
            Err(e) => {
                tracing::debug!(id = %n.id, rule = %n.rule, attempts = n.attempts, error = %e, "webhook delivery failed");
                n.last_error = Some(e);
                if n.attempts >= self.cfg.webhook_max_attempts {
                    n.abandoned = true;
                    tracing::warn!(id = %n.id, rule = %n.rule, attempts = n.attempts, "webhook notification abandoned");
                    "abandoned"
                } else {
                    n.next_attempt_at =
                        now.plus(backoff(self.cfg.webhook_retry_initial, self.cfg.webhook_retry_max, n.attempts - 1));
                    "failed"
                }
            }
        };
        metrics::counter!(m::ALERT_NOTIFICATIONS, "result" => outcome).increment(1);
        (n, outcome)
    }

    /// Sends every notification due at `now` (batch after batch) and records the
    /// outcomes.
    pub async fn notify_once(&self, now: Timestamp) -> Result<NotifyStats, StoreError> {
        let mut stats = NotifyStats::default();
        loop {
            let due = self.store.due_notifications(now, BATCH).await?;
            let full = due.len() >= BATCH as usize;
            if due.is_empty() {
                break;
            }
            let done: Vec<(AlertNotification, &'static str)> =
                futures::stream::iter(due).map(|n| self.attempt(n)).buffer_unordered(CONCURRENCY).collect().await;
            let mut updated = Vec::with_capacity(done.len());
            for (n, outcome) in done {
                match outcome {
                    "delivered" => stats.delivered += 1,
                    "abandoned" => stats.abandoned += 1,
                    _ => stats.failed += 1,
                }
                updated.push(n);
            }
            self.store.put_notifications(updated).await?;
            if !full {
                break;
            }
        }
        Ok(stats)
    }

    /// Runs until `stop`: every `notify_interval`, while holding the lease, sends what is
    /// due.
    pub async fn run(self, stop: CancellationToken) {
        let renew_every = (self.cfg.lease_ttl / 3).max(Duration::from_millis(10));
        let mut renewed: Option<Instant> = None;
        loop {
            if renewed.is_none_or(|t| t.elapsed() >= renew_every) {
                renewed = match self.store.try_lease(LEASE, &self.node, self.cfg.lease_ttl).await {
                    Ok(true) => Some(Instant::now()),
                    Ok(false) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing the alert notifier lease");
                        None
                    }
                };
            }
            if renewed.is_some()
                && let Err(e) = self.notify_once(Timestamp::now()).await
            {
                tracing::warn!(error = %e, "sending alert notifications");
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.cfg.notify_interval.min(renew_every)) => {}
            }
        }
        if renewed.is_some() {
            let _ = self.store.release_lease(LEASE, &self.node).await;
        }
    }
}
