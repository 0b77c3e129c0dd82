//! Alerts to a Prometheus Alertmanager (`alerts.alertmanager_url`), beside the webhooks:
//! every `alerts.alertmanager_interval`, one node (lease `alerts-alertmanager`) POSTs the
//! alert states to `<url>/api/v2/alerts`, as Prometheus itself does —
//!
//! * a firing state is sent with `endsAt` a few intervals ahead, again at every push (so
//!   Alertmanager keeps it firing while the gateway says so, and resolves it by itself if
//!   the gateway goes silent);
//! * a state resolved within the last [`RESOLVED_RESEND`] pushes' worth of time is sent
//!   with `endsAt` = its resolve time, which resolves it in Alertmanager.
//!
//! Labels for routing: `alertname` and `rule` (the rule's name), `severity`, `tariff`
//! (when the register has one), `owner_inn`, `rnm` (the alert's identity), `group` (when
//! set) and `source="ofd-gateway"`; annotations `summary` (the rule's condition in words)
//! and `description` (why it fired). Alertmanager groups, silences and routes from there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use storage::model::{AlertState, AlertStatus, Register};
use storage::{AlertFilter, PageRequest, Rnm, Store, Timestamp};
use tokio_util::sync::CancellationToken;

use super::condition;
use crate::config::AlertsConfig;
use crate::metrics as m;

/// The lease of the pusher.
pub const LEASE: &str = "alerts-alertmanager";

/// A resolved state is sent again for this many intervals (a push that failed is made up
/// by the next).
pub const RESOLVED_RESEND: u32 = 10;

/// Pushes alert states to an Alertmanager.
pub struct Pusher {
    store: Arc<dyn Store>,
    http: reqwest::Client,
    url: reqwest::Url,
    cfg: AlertsConfig,
    node: String,
}

impl Pusher {
    /// A pusher for `cfg.alertmanager_url` (None when it is not set).
    pub fn new(store: Arc<dyn Store>, cfg: AlertsConfig, node: String) -> anyhow::Result<Option<Self>> {
        let Some(base) = cfg.alertmanager_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let base = if base.ends_with('/') { base.to_owned() } else { format!("{base}/") };
        let url = reqwest::Url::parse(&base)
            .and_then(|u| u.join("api/v2/alerts"))
            .map_err(|e| anyhow::anyhow!("alerts.alertmanager_url {base:?}: {e}"))?;
        crate::control::fns::client::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(cfg.webhook_timeout)
            .user_agent(concat!("ofd-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("building the Alertmanager HTTP client: {e}"))?;
        Ok(Some(Self { store, http, url, cfg, node }))
    }

    /// The alerts of one push: firing states, and states resolved recently.
    pub async fn alerts(&self, now: Timestamp) -> Result<Vec<Value>, storage::StoreError> {
        let rules: HashMap<String, String> = self
            .store
            .list_rules()
            .await?
            .into_iter()
            .map(|r| (r.name.clone(), condition::describe(&r.condition)))
            .collect();
        let resend_since = now.minus(self.cfg.alertmanager_interval * RESOLVED_RESEND);
        let mut states: Vec<AlertState> = Vec::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let p = self.store.list_alert_states(&AlertFilter::default(), page.clone()).await?;
            states.extend(
                p.items
                    .into_iter()
                    .filter(|s| s.status == AlertStatus::Firing || s.resolved_at.is_some_and(|t| t >= resend_since)),
            );
            match p.next {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let mut registers: HashMap<Rnm, Option<Register>> = HashMap::new();
        let mut out = Vec::with_capacity(states.len());
        let firing_until = now.plus(self.cfg.alertmanager_interval * 4);
        for s in states {
            if !registers.contains_key(&s.rnm) {
                let r = self.store.get_register(&s.rnm).await?;
                registers.insert(s.rnm.clone(), r);
            }
            let reg = registers.get(&s.rnm).and_then(Option::as_ref);
            let mut labels = Map::new();
            labels.insert("alertname".into(), json!(s.rule));
            labels.insert("rule".into(), json!(s.rule));
            labels.insert("severity".into(), json!(s.severity.as_str()));
            labels.insert("rnm".into(), json!(s.rnm.as_str()));
            labels.insert("source".into(), json!("ofd-gateway"));
            if let Some(r) = reg {
                labels.insert("owner_inn".into(), json!(r.owner_inn.to_string()));
                if let Some(t) = &r.tariff {
                    labels.insert("tariff".into(), json!(t));
                }
                if let Some(g) = &r.group {
                    labels.insert("group".into(), json!(g));
                }
            }
            let ends = match (s.status, s.resolved_at) {
                (AlertStatus::Resolved, Some(t)) => t,
                _ => firing_until,
            };
            let summary = rules.get(&s.rule).cloned().unwrap_or_else(|| format!("alert rule {}", s.rule));
            out.push(json!({
                "labels": labels,
                "annotations": {"summary": summary, "description": s.detail},
                "startsAt": s.since.to_rfc3339(),
                "endsAt": ends.to_rfc3339(),
            }));
        }
        Ok(out)
    }

    /// One push; the number of alerts sent.
    pub async fn push_once(&self, now: Timestamp) -> Result<usize, String> {
        let alerts = self.alerts(now).await.map_err(|e| format!("reading alert states: {e}"))?;
        if alerts.is_empty() {
            return Ok(0);
        }
        let n = alerts.len();
        let resp = self.http.post(self.url.clone()).json(&alerts).send().await.map_err(|e| {
            let mut cur: &dyn std::error::Error = &e;
            while let Some(next) = cur.source() {
                cur = next;
            }
            cur.to_string()
        })?;
        if resp.status().is_success() {
            Ok(n)
        } else {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            Err(format!("HTTP {status}: {}", body.chars().take(300).collect::<String>()))
        }
    }

    /// Runs until `stop`: every `alertmanager_interval`, while holding the lease, pushes.
    pub async fn run(self, stop: CancellationToken) {
        let renew_every = (self.cfg.lease_ttl / 3).max(Duration::from_millis(10));
        let mut renewed: Option<Instant> = None;
        let mut pushed: Option<Instant> = None;
        loop {
            if renewed.is_none_or(|t| t.elapsed() >= renew_every) {
                renewed = match self.store.try_lease(LEASE, &self.node, self.cfg.lease_ttl).await {
                    Ok(true) => Some(Instant::now()),
                    Ok(false) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing the Alertmanager lease");
                        None
                    }
                };
            }
            if renewed.is_some() && pushed.is_none_or(|t| t.elapsed() >= self.cfg.alertmanager_interval) {
                pushed = Some(Instant::now());
                match self.push_once(Timestamp::now()).await {
                    Ok(n) => {
                        metrics::counter!(m::ALERTMANAGER_PUSHES, "result" => "ok").increment(1);
                        tracing::debug!(alerts = n, "alerts pushed to Alertmanager");
                    }
                    Err(e) => {
                        metrics::counter!(m::ALERTMANAGER_PUSHES, "result" => "error").increment(1);
                        tracing::warn!(url = %self.url, error = %e, "pushing alerts to Alertmanager");
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.cfg.alertmanager_interval.min(renew_every)) => {}
            }
        }
        if renewed.is_some() {
            let _ = self.store.release_lease(LEASE, &self.node).await;
        }
    }
}
