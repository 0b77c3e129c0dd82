//! The evaluator: every `[alerts] interval`, on the one node holding the lease
//! `alerts-evaluator`, every enabled rule is evaluated over every register in its scope
//! (registers read page by page with their activities, and with the FD continuity of their
//! FNs when an `fd_gaps` rule is enabled), and the (rule, register) states
//! are advanced:
//!
//! | state before | condition | state after | notification |
//! |---|---|---|---|
//! | none / resolved | holds | firing since now | firing |
//! | firing | holds | firing (streak reset, detail updated) | — |
//! | firing | absent | firing, `clear_streak + 1`; at `resolve_after`: resolved at now | resolved |
//! | none / resolved | absent | unchanged (not written) | — |
//!
//! So a resolve needs the condition gone in `resolve_after` consecutive evaluations, and
//! one missed or odd evaluation does not flap. A suspended register's conditions count as
//! absent (its alerts resolve; its light is grey). A firing state whose register is gone
//! or out of scope counts as absent too; one whose rule was disabled resolves at once,
//! without a notification (the admin switched it off on purpose).
//!
//! Transitions create [`AlertNotification`]s for the rule's webhook, which the notifier
//! delivers. The firing gauge is set by (rule, severity) after every evaluation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffd::FnNumber;
use serde_json::json;
use storage::model::{
    AlertCondition, AlertNotification, AlertRule, AlertState, AlertStatus, FnContinuity, Register, RegisterActivity,
    RegisterStatus, Severity,
};
use storage::{AlertFilter, PageRequest, RegisterFilter, Rnm, Store, StoreError, Timestamp};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::condition;
use crate::config::AlertsConfig;
use crate::metrics as m;

/// The evaluator lease.
pub const LEASE: &str = "alerts-evaluator";

/// Registers read per page.
const PAGE: u32 = 500;

/// What one evaluation did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EvalStats {
    /// Registers read.
    pub registers: usize,
    /// (rule, register) pairs evaluated.
    pub evaluated: usize,
    /// Newly firing.
    pub fired: usize,
    /// Resolved.
    pub resolved: usize,
    /// Firing after the evaluation.
    pub firing: usize,
    /// Notifications created.
    pub notifications: usize,
}

/// Why an evaluation stopped.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The lease went to another node during the evaluation (nothing was written).
    #[error("the evaluator lease was lost")]
    LeaseLost,
}

type Key = (String, Rnm);

/// The register facts a notification carries.
#[derive(Clone)]
struct RegisterInfo {
    owner_inn: String,
    name: String,
    group: Option<String>,
}

/// Evaluates rules and advances alert states.
pub struct Evaluator {
    store: Arc<dyn Store>,
    cfg: AlertsConfig,
    node: String,
    /// (rule, severity) pairs whose firing gauge was set, to zero them when they vanish.
    gauges: HashSet<(String, Severity)>,
    lease_renewed: Option<Instant>,
}

impl Evaluator {
    /// An evaluator for this node.
    pub fn new(store: Arc<dyn Store>, cfg: AlertsConfig, node: String) -> Self {
        Self { store, cfg, node, gauges: HashSet::new(), lease_renewed: None }
    }

    fn renew_every(&self) -> Duration {
        (self.cfg.lease_ttl / 3).max(Duration::from_millis(10))
    }

    /// Takes or renews the lease; true when held.
    pub async fn lease(&mut self) -> bool {
        match self.store.try_lease(LEASE, &self.node, self.cfg.lease_ttl).await {
            Ok(true) => {
                self.lease_renewed = Some(Instant::now());
                true
            }
            Ok(false) => {
                self.lease_renewed = None;
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "renewing the alert evaluator lease");
                self.lease_renewed = None;
                false
            }
        }
    }

    async fn keep_lease(&mut self) -> Result<(), EvalError> {
        if self.lease_renewed.is_some_and(|t| t.elapsed() < self.renew_every()) {
            return Ok(());
        }
        if self.lease().await { Ok(()) } else { Err(EvalError::LeaseLost) }
    }

    /// Evaluates every enabled rule over every register once, at time `now`, and writes
    /// the changed states and the notifications. The caller holds the lease (it is
    /// renewed as the evaluation goes).
    pub async fn evaluate_once(&mut self, now: Timestamp) -> Result<EvalStats, EvalError> {
        let started = Instant::now();
        let mut stats = EvalStats::default();
        let rules = self.store.list_rules().await?;
        let by_name: HashMap<&str, &AlertRule> = rules.iter().map(|r| (r.name.as_str(), r)).collect();
        let enabled: Vec<&AlertRule> = rules.iter().filter(|r| r.enabled).collect();

        let mut states: HashMap<Key, AlertState> = HashMap::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        loop {
            let p = self.store.list_alert_states(&AlertFilter::default(), page.clone()).await?;
            for s in p.items {
                states.insert((s.rule.clone(), s.rnm.clone()), s);
            }
            match p.next {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }

        let mut changed: HashSet<Key> = HashSet::new();
        let mut seen: HashSet<Key> = HashSet::new();
        let mut notes: Vec<AlertNotification> = Vec::new();
        let mut infos: HashMap<Rnm, RegisterInfo> = HashMap::new();

        let wants_continuity = enabled.iter().any(|r| matches!(r.condition, AlertCondition::FdGaps { .. }));
        if !enabled.is_empty() {
            let mut page = PageRequest::first(PAGE);
            loop {
                self.keep_lease().await?;
                let p = self.store.list_registers(&RegisterFilter::default(), page.clone()).await?;
                let rnms: Vec<Rnm> = p.items.iter().map(|r| r.rnm.clone()).collect();
                let activities: HashMap<Rnm, RegisterActivity> =
                    self.store.get_activities(&rnms).await?.into_iter().collect();
                // FD continuity only when a rule asks for it (one read per page)
                let continuity: HashMap<FnNumber, FnContinuity> = if wants_continuity {
                    let fns: Vec<FnNumber> = p.items.iter().flat_map(|r| r.all_fns().copied()).collect();
                    self.store.continuity(&fns).await?.into_iter().map(|c| (c.fn_number, c)).collect()
                } else {
                    HashMap::new()
                };
                stats.registers += p.items.len();
                for r in &p.items {
                    let activity = activities.get(&r.rnm);
                    let gaps: Vec<FnContinuity> = r.all_fns().filter_map(|f| continuity.get(f)).cloned().collect();
                    let mut info = None;
                    for rule in &enabled {
                        if !condition::in_scope(&rule.scope, r) {
                            continue;
                        }
                        stats.evaluated += 1;
                        let holds = if r.status == RegisterStatus::Suspended {
                            None
                        } else {
                            condition::evaluate_with(&rule.condition, r, activity, &gaps, now)
                        };
                        let key = (rule.name.clone(), r.rnm.clone());
                        // only registers with something to say need their facts kept
                        if holds.is_some() || states.contains_key(&key) {
                            infos
                                .entry(r.rnm.clone())
                                .or_insert_with(|| info.get_or_insert_with(|| register_info(r)).clone());
                        }
                        seen.insert(key.clone());
                        self.step(rule, key, holds, now, &mut states, &mut changed, &mut notes, &infos, &mut stats);
                    }
                }
                match p.next {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
        }

        // Firing states not evaluated this time.
        let unseen: Vec<Key> = states
            .iter()
            .filter(|(k, s)| s.status == AlertStatus::Firing && !seen.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in unseen {
            match by_name.get(key.0.as_str()) {
                None => {} // rule deleted (its states go with it)
                Some(rule) if !rule.enabled => {
                    if let Some(s) = states.get_mut(&key) {
                        s.status = AlertStatus::Resolved;
                        s.resolved_at = Some(now);
                        s.last_evaluated = now;
                        s.clear_streak = 0;
                        s.detail = format!("rule disabled; was: {}", s.detail);
                        changed.insert(key.clone());
                        stats.resolved += 1;
                        metrics::counter!(m::ALERT_TRANSITIONS, "rule" => rule.name.clone(), "severity" => s.severity.as_str(), "status" => "resolved").increment(1);
                    }
                }
                Some(rule) => {
                    self.step(rule, key, None, now, &mut states, &mut changed, &mut notes, &infos, &mut stats);
                }
            }
        }

        self.keep_lease().await?;
        let to_write: Vec<AlertState> = changed.iter().filter_map(|k| states.get(k).cloned()).collect();
        for chunk in to_write.chunks(500) {
            self.store.put_alert_states(chunk.to_vec()).await?;
        }
        stats.notifications = notes.len();
        self.store.put_notifications(notes).await?;

        // firing gauge by (rule, severity), for existing enabled rules
        let mut firing: HashMap<(String, Severity), u64> = HashMap::new();
        for s in states.values() {
            if s.status == AlertStatus::Firing && by_name.get(s.rule.as_str()).is_some_and(|r| r.enabled) {
                *firing.entry((s.rule.clone(), s.severity)).or_default() += 1;
                stats.firing += 1;
            }
        }
        for (rule, sev) in self.gauges.difference(&firing.keys().cloned().collect()) {
            metrics::gauge!(m::ALERTS_FIRING, "rule" => rule.clone(), "severity" => sev.as_str()).set(0.0);
        }
        for ((rule, sev), n) in &firing {
            metrics::gauge!(m::ALERTS_FIRING, "rule" => rule.clone(), "severity" => sev.as_str()).set(*n as f64);
        }
        self.gauges = firing.into_keys().collect();
        metrics::histogram!(m::ALERT_EVALUATION_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(stats)
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        rule: &AlertRule,
        key: Key,
        holds: Option<String>,
        now: Timestamp,
        states: &mut HashMap<Key, AlertState>,
        changed: &mut HashSet<Key>,
        notes: &mut Vec<AlertNotification>,
        infos: &HashMap<Rnm, RegisterInfo>,
        stats: &mut EvalStats,
    ) {
        let existing = states.get_mut(&key);
        match (existing, holds) {
            (Some(s), Some(detail)) if s.status == AlertStatus::Firing => {
                s.last_evaluated = now;
                s.clear_streak = 0;
                s.detail = detail;
                changed.insert(key);
            }
            (Some(s), None) if s.status == AlertStatus::Firing => {
                s.last_evaluated = now;
                s.clear_streak = s.clear_streak.saturating_add(1);
                if s.clear_streak >= self.cfg.resolve_after {
                    s.status = AlertStatus::Resolved;
                    s.resolved_at = Some(now);
                    stats.resolved += 1;
                    metrics::counter!(m::ALERT_TRANSITIONS, "rule" => rule.name.clone(), "severity" => s.severity.as_str(), "status" => "resolved").increment(1);
                    tracing::info!(rule = %rule.name, rnm = %s.rnm, "alert resolved");
                    let s = s.clone();
                    if let Some(n) = notification(rule, &s, infos.get(&s.rnm), now) {
                        notes.push(n);
                    }
                }
                changed.insert(key);
            }
            (_, Some(detail)) => {
                let s = AlertState {
                    rule: rule.name.clone(),
                    rnm: key.1.clone(),
                    status: AlertStatus::Firing,
                    since: now,
                    resolved_at: None,
                    last_evaluated: now,
                    clear_streak: 0,
                    detail,
                    severity: rule.severity,
                };
                stats.fired += 1;
                metrics::counter!(m::ALERT_TRANSITIONS, "rule" => rule.name.clone(), "severity" => rule.severity.as_str(), "status" => "firing").increment(1);
                tracing::info!(rule = %rule.name, rnm = %s.rnm, detail = %s.detail, "alert firing");
                if let Some(n) = notification(rule, &s, infos.get(&s.rnm), now) {
                    notes.push(n);
                }
                states.insert(key.clone(), s);
                changed.insert(key);
            }
            (_, None) => {}
        }
    }

    /// Runs until `stop`: renews the lease at a third of its TTL and evaluates every
    /// `interval` while holding it; gives the lease up at the end.
    pub async fn run(mut self, stop: CancellationToken) {
        let tick = self.cfg.interval.min(self.renew_every());
        let mut last_eval: Option<Instant> = None;
        loop {
            let held = if self.lease_renewed.is_some_and(|t| t.elapsed() < self.renew_every()) {
                true
            } else {
                self.lease().await
            };
            if !held && !self.gauges.is_empty() {
                // another node evaluates now: its gauges count, not our stale ones
                for (rule, sev) in std::mem::take(&mut self.gauges) {
                    metrics::gauge!(m::ALERTS_FIRING, "rule" => rule, "severity" => sev.as_str()).set(0.0);
                }
            }
            if held && last_eval.is_none_or(|t| t.elapsed() >= self.cfg.interval) {
                last_eval = Some(Instant::now());
                match self.evaluate_once(Timestamp::now()).await {
                    Ok(s) => {
                        metrics::counter!(m::ALERT_EVALUATIONS, "result" => "ok").increment(1);
                        tracing::debug!(?s, "alert rules evaluated");
                    }
                    Err(e) => {
                        metrics::counter!(m::ALERT_EVALUATIONS, "result" => "error").increment(1);
                        tracing::warn!(error = %e, "evaluating alert rules");
                    }
                }
            }
            // not held (another node evaluates, or the store is unreachable): try again at
            // the next renewal, not at once (a lost quorum must not turn into a busy loop)
            let pause = if held {
                last_eval.map_or(tick, |t| self.cfg.interval.saturating_sub(t.elapsed()).min(tick))
            } else {
                tick
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(pause.max(Duration::from_millis(1))) => {}
            }
        }
        if self.lease_renewed.is_some() {
            let _ = self.store.release_lease(LEASE, &self.node).await;
        }
    }
}

fn register_info(r: &Register) -> RegisterInfo {
    RegisterInfo { owner_inn: r.owner_inn.to_string(), name: r.name.clone(), group: r.group.clone() }
}

/// The notification of a transition, when the rule has a webhook.
fn notification(
    rule: &AlertRule,
    s: &AlertState,
    info: Option<&RegisterInfo>,
    now: Timestamp,
) -> Option<AlertNotification> {
    let webhook = rule.webhook.as_deref().map(str::trim).filter(|w| !w.is_empty())?;
    let id = Uuid::now_v7();
    let status = match s.status {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    };
    let payload = json!({
        "notification_id": id,
        "rule": rule.name,
        "severity": s.severity.as_str(),
        "condition": condition::kind(&rule.condition),
        "condition_text": condition::describe(&rule.condition),
        "status": status,
        "rnm": s.rnm.as_str(),
        "owner_inn": info.map(|i| i.owner_inn.clone()),
        "register_name": info.map(|i| i.name.clone()),
        "group": info.and_then(|i| i.group.clone()),
        "since": s.since.to_rfc3339(),
        "resolved_at": s.resolved_at.map(|t| t.to_rfc3339()),
        "detail": s.detail,
        "at": now.to_rfc3339(),
    });
    Some(AlertNotification {
        id,
        rule: rule.name.clone(),
        rnm: s.rnm.clone(),
        status: s.status,
        webhook: webhook.to_owned(),
        payload,
        created_at: now,
        attempts: 0,
        // due at once (evaluations at a chosen time, in tests, must not delay it)
        next_attempt_at: now.min(Timestamp::now()),
        delivered_at: None,
        abandoned: false,
        last_error: None,
    })
}
