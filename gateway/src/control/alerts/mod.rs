//! Alert rules: conditions ([`condition`]), continuous evaluation into per-(rule,
//! register) states without flapping ([`evaluator`]), webhook delivery with retries
//! ([`notifier`]), the states pushed to a Prometheus Alertmanager ([`alertmanager`]) and
//! the per-register traffic light ([`light`]).
//!
//! Both loops run on one node of a cluster at a time, by store leases
//! (`alerts-evaluator`, `alerts-notifier`); if that node dies another takes over when the
//! lease expires. Metrics count by rule and severity, never by register.

pub mod alertmanager;
pub mod condition;
pub mod evaluator;
pub mod gaps;
pub mod light;
pub mod notifier;

use std::time::Duration;

use storage::model::{AlertCondition, AlertRule, AlertScope, RegisterActivity};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use evaluator::Evaluator;
pub use light::{Light, light, light_of_states};
pub use notifier::Notifier;

use crate::state::Shared;

/// Spawns the evaluator and the notifier (unless `[alerts] enabled = false`).
pub fn spawn(shared: &Shared, tasks: &TaskTracker, stop: &CancellationToken) -> anyhow::Result<()> {
    let cfg = &shared.config.alerts;
    if !cfg.enabled {
        tracing::info!("alert evaluation is off on this node ([alerts] enabled = false)");
        return Ok(());
    }
    let evaluator = Evaluator::new(shared.store.clone(), cfg.clone(), shared.node_id.clone());
    let notifier = Notifier::new(shared.store.clone(), cfg.clone(), shared.node_id.clone())?;
    tasks.spawn(evaluator.run(stop.clone()));
    tasks.spawn(notifier.run(stop.clone()));
    if let Some(pusher) = alertmanager::Pusher::new(shared.store.clone(), cfg.clone(), shared.node_id.clone())? {
        tasks.spawn(pusher.run(stop.clone()));
    }
    Ok(())
}

/// Checks a rule an admin submits; `Err` names the field and the problem.
pub fn validate_rule(rule: &AlertRule) -> Result<(), String> {
    let name_ok = !rule.name.is_empty()
        && rule.name.len() <= 64
        && rule.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !name_ok {
        return Err("name: must be 1 to 64 ASCII letters, digits, '-', '_' or '.'".into());
    }
    if let Some(w) = rule.webhook.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
        match reqwest::Url::parse(w) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return Err(format!("webhook: {w:?} is not an http:// or https:// URL")),
        }
    }
    if let AlertScope::Registers(list) = &rule.scope
        && list.is_empty()
    {
        return Err("scope: a register list must name at least one register".into());
    }
    match &rule.condition {
        AlertCondition::Silent { for_secs } => {
            if *for_secs == 0 {
                return Err("condition.for_secs: must be greater than zero".into());
            }
        }
        AlertCondition::FnEndOfLife { within_days, fn_term_days } => {
            if *within_days > 3660 || *fn_term_days > 3660 {
                return Err("condition: days must be at most 3660".into());
            }
        }
        AlertCondition::PaidPeriodEnding { within_days } => {
            if *within_days > 3660 {
                return Err("condition.within_days: must be at most 3660".into());
            }
        }
        AlertCondition::UnsentBacklog { count_above, older_than_secs } => {
            if count_above.is_none() && older_than_secs.is_none() {
                return Err("condition: an unsent-backlog rule needs count_above or older_than_secs".into());
            }
            if *older_than_secs == Some(0) {
                return Err("condition.older_than_secs: must be greater than zero".into());
            }
        }
        AlertCondition::FdGaps { missing_above, older_than_secs } => {
            if missing_above.is_none() && older_than_secs.is_none() {
                return Err("condition: an fd-gaps rule needs missing_above or older_than_secs".into());
            }
            if *older_than_secs == Some(0) {
                return Err("condition.older_than_secs: must be greater than zero".into());
            }
        }
        AlertCondition::FnWarnings { mask } => {
            if *mask > 0x0F {
                return Err("condition.mask: bits 0-3 stand for tags 1050-1053 (0 = any)".into());
            }
        }
        AlertCondition::FlkErrors { above, window_secs } => {
            if *window_secs == 0 {
                return Err("condition.window_secs: must be greater than zero".into());
            }
            if *above as usize >= RegisterActivity::RECENT_FLK {
                return Err(format!(
                    "condition.above: must be below {} (the receive times kept per register)",
                    RegisterActivity::RECENT_FLK
                ));
            }
        }
    }
    Ok(())
}

/// A duration as people write it: `45 s`, `5 min`, `36 h`, `1 day`, `2 days 5 h` — whole
/// days as days, under three days in hours (and minutes), seconds only under an hour.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, mins, s) = (secs / 86_400, secs / 3_600, secs / 60 % 60, secs % 60);
    let unit = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if secs == 0 {
        "0 s".to_owned()
    } else if secs.is_multiple_of(86_400) {
        unit(days, "day", "days")
    } else if secs < 60 {
        format!("{s} s")
    } else if secs < 3_600 {
        if s == 0 { format!("{mins} min") } else { format!("{mins} min {s} s") }
    } else if secs < 3 * 86_400 {
        if mins == 0 { format!("{hours} h") } else { format!("{hours} h {mins} min") }
    } else {
        let h = hours % 24;
        let d = unit(days, "day", "days");
        if h == 0 { d } else { format!("{d} {h} h") }
    }
}
