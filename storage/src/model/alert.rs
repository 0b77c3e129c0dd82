//! Alert rules, their states and notifications.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{Inn, Rnm, Timestamp};

/// What an alert rule watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertCondition {
    /// No document received for longer than `for_secs`.
    Silent {
        /// Silence threshold, seconds.
        for_secs: u64,
    },
    /// FN end of life within `within_days`: key resource (1213) or registration date plus
    /// the FN term.
    FnEndOfLife {
        /// Days.
        within_days: u32,
        /// FN term in days, for the registration-date estimate (e.g. 456 or 1110).
        fn_term_days: u32,
    },
    /// Paid period ends within `within_days` (or has ended).
    PaidPeriodEnding {
        /// Days.
        within_days: u32,
    },
    /// The register reports untransmitted documents: count (1097) above `count_above`,
    /// or the first of them (1098) older than `older_than_secs`.
    UnsentBacklog {
        /// Count threshold.
        count_above: Option<u32>,
        /// Age threshold, seconds.
        older_than_secs: Option<u64>,
    },
    /// FD continuity: more than `missing_above` FDs never received (between the lowest
    /// and the highest FD received of each FN of the register, all its FNs together), or
    /// a hole open (known missing) for longer than `older_than_secs`.
    FdGaps {
        /// Count threshold.
        missing_above: Option<u64>,
        /// Age threshold, seconds.
        older_than_secs: Option<u64>,
    },
    /// FN warning flags raised (mask over bits 0–3 = tags 1050–1053; 0 = any).
    FnWarnings {
        /// Mask.
        mask: u8,
    },
    /// More than `above` documents answered with code 14 within `window_secs`.
    FlkErrors {
        /// Count threshold.
        above: u32,
        /// Window, seconds.
        window_secs: u64,
    },
}

/// Which registers a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum AlertScope {
    /// Every register.
    All,
    /// Registers of one owner.
    OwnerInn(Inn),
    /// Registers of one group.
    Group(String),
    /// Listed registers.
    Registers(Vec<Rnm>),
}

/// Severity of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// Needs attention (yellow).
    Warning,
    /// Needs action now (red).
    Critical,
}

impl Severity {
    /// Bounded label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRule {
    /// Unique name (also the metric label `rule`: rules are few).
    pub name: String,
    /// Condition.
    pub condition: AlertCondition,
    /// Scope.
    pub scope: AlertScope,
    /// Severity.
    pub severity: Severity,
    /// Evaluated only when enabled.
    pub enabled: bool,
    /// Webhook URL notified on firing and resolving.
    pub webhook: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// State of one (rule, register) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Condition holds.
    Firing,
    /// Condition no longer holds.
    Resolved,
}

/// Alert state per (rule, register).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// Rule name.
    pub rule: String,
    /// Register.
    pub rnm: Rnm,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Firing since.
    pub since: Timestamp,
    /// Resolved at.
    pub resolved_at: Option<Timestamp>,
    /// Last evaluation.
    pub last_evaluated: Timestamp,
    /// Consecutive evaluations in which the condition was absent while firing (a resolve
    /// needs several, so one missed evaluation does not flap).
    pub clear_streak: u32,
    /// Human-readable reason of the last firing.
    pub detail: String,
    /// Severity copied from the rule at firing time.
    pub severity: Severity,
}

/// A webhook notification and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertNotification {
    /// Id (time-ordered).
    pub id: Uuid,
    /// Rule.
    pub rule: String,
    /// Register.
    pub rnm: Rnm,
    /// The transition notified.
    pub status: AlertStatus,
    /// Target URL.
    pub webhook: String,
    /// JSON payload.
    pub payload: serde_json::Value,
    /// Created.
    pub created_at: Timestamp,
    /// Attempts so far.
    pub attempts: u32,
    /// Next attempt not before.
    pub next_attempt_at: Timestamp,
    /// Delivered at (2xx from the webhook).
    pub delivered_at: Option<Timestamp>,
    /// Gave up after too many attempts.
    pub abandoned: bool,
    /// Last error.
    pub last_error: Option<String>,
}
