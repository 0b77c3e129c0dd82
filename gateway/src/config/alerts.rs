//! `[alerts]` — alert evaluation and webhooks.

use std::time::Duration;

use super::values::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Alert rules: evaluated by one node of a cluster at a time (lease `alerts-evaluator`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Evaluate rules and send webhook notifications on this node.
    pub enabled: bool,
    /// Time between two evaluations of every enabled rule over every register.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub interval: Duration,
    /// A firing alert resolves only after its condition was absent in this many
    /// consecutive evaluations (no flapping on one missed evaluation).
    pub resolve_after: u32,
    /// How often due webhook notifications are sent.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub notify_interval: Duration,
    /// Deadline of one webhook request.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub webhook_timeout: Duration,
    /// Attempts before a notification is abandoned (it stays visible as abandoned).
    pub webhook_max_attempts: u32,
    /// Delay before the first webhook retry; doubles with every attempt (with jitter).
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub webhook_retry_initial: Duration,
    /// Longest delay between two webhook attempts.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub webhook_retry_max: Duration,
    /// The evaluator and notifier leases live this long without renewal.
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub lease_ttl: Duration,
    /// A Prometheus Alertmanager to send the alerts to as well (e.g.
    /// `http://127.0.0.1:9093`): firing and resolved alert states are POSTed to
    /// `<url>/api/v2/alerts` with the labels rule, severity, tariff, owner_inn, rnm, group.
    pub alertmanager_url: Option<String>,
    /// How often the alert states are sent to the Alertmanager (a firing alert is sent
    /// again every time; Alertmanager resolves one that is not repeated within four).
    #[serde(with = "duration")]
    #[schemars(with = "String")]
    pub alertmanager_interval: Duration,
}

impl AlertsConfig {
    /// Checks `alertmanager_url` and `alertmanager_interval`.
    pub fn validate_alertmanager(&self) -> Result<(), (&'static str, String)> {
        if let Some(url) = self.alertmanager_url.as_deref().filter(|u| !u.trim().is_empty()) {
            match reqwest::Url::parse(url.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => return Err(("alerts.alertmanager_url", format!("{url:?} is not an http:// or https:// URL"))),
            }
        }
        if self.alertmanager_interval.is_zero() {
            return Err(("alerts.alertmanager_interval", "must be greater than zero".into()));
        }
        Ok(())
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(60),
            resolve_after: 3,
            notify_interval: Duration::from_secs(1),
            webhook_timeout: Duration::from_secs(5),
            webhook_max_attempts: 10,
            webhook_retry_initial: Duration::from_secs(2),
            webhook_retry_max: Duration::from_secs(600),
            lease_ttl: Duration::from_secs(30),
            alertmanager_url: None,
            alertmanager_interval: Duration::from_secs(30),
        }
    }
}
