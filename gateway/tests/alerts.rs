//! Alert rules over real ingested documents: the evaluator is driven with chosen clock
//! values (deterministic, no sleeping for thresholds) against a gateway's store; the
//! notifier delivers to the in-process receiver's webhook sink; and one test runs the
//! whole loop live inside a gateway with short intervals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fns_support;

use std::time::Duration;

use ffd::build::DriveReport;
use fns_support::*;
use gateway::config::AlertsConfig;
use gateway::control::alerts::{Evaluator, Light, Notifier, light_of_states};
use gateway::control::fns::receiver::ReceiverOptions;
use storage::model::{
    AlertCondition, AlertRule, AlertScope, AlertState, AlertStatus, Register, RegisterStatus, Severity,
};
use storage::{AlertFilter, PageRequest, Store, Timestamp};

fn rule(name: &str, condition: AlertCondition, severity: Severity) -> AlertRule {
    let now = Timestamp::now();
    AlertRule {
        name: name.into(),
        condition,
        scope: AlertScope::All,
        severity,
        enabled: true,
        webhook: None,
        created_at: now,
        updated_at: now,
    }
}

fn cfg() -> AlertsConfig {
    AlertsConfig {
        resolve_after: 3,
        webhook_retry_initial: Duration::from_millis(20),
        webhook_retry_max: Duration::from_millis(100),
        ..AlertsConfig::default()
    }
}

async fn states(store: &dyn Store, rule: &str) -> Vec<AlertState> {
    store
        .list_alert_states(&AlertFilter { rule: Some(rule.into()), ..AlertFilter::default() }, PageRequest::first(1000))
        .await
        .unwrap()
        .items
}

async fn one_state(store: &dyn Store, rule: &str, r: &Register) -> Option<AlertState> {
    states(store, rule).await.into_iter().find(|s| s.rnm == r.rnm)
}

fn secs(t: Timestamp, s: u64) -> Timestamp {
    t.plus(Duration::from_secs(s))
}

async fn last_seen(store: &dyn Store, r: &Register) -> Timestamp {
    store.get_activity(&r.rnm).await.unwrap().unwrap().last_seen.unwrap()
}

#[tokio::test]
async fn silent_rule_fires_then_resolves_only_after_consecutive_clear_evaluations() {
    let rx = TestReceiver::start(ReceiverOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_on(fast_config(dir.path(), None)).await;
    let store = gw.shared.store.clone();
    let r = register(100, INN_A);
    onboard(&gw, std::slice::from_ref(&r)).await;
    let mut silent = rule("silent-60s", AlertCondition::Silent { for_secs: 60 }, Severity::Critical);
    silent.webhook = Some(rx.alerts_url());
    store.put_rule(&silent).await.unwrap();
    let mut ev = Evaluator::new(store.clone(), cfg(), "node-a".into());
    assert!(ev.lease().await);

    send(gw.tcp.unwrap(), &open_shift(&r, 1)).await;
    let t0 = last_seen(store.as_ref(), &r).await;
    ev.evaluate_once(secs(t0, 30)).await.unwrap();
    assert!(one_state(store.as_ref(), "silent-60s", &r).await.is_none());

    let fired_at = secs(t0, 120);
    let s = ev.evaluate_once(fired_at).await.unwrap();
    assert_eq!((s.fired, s.firing, s.notifications), (1, 1, 1), "{s:?}");
    let st = one_state(store.as_ref(), "silent-60s", &r).await.unwrap();
    assert_eq!(st.status, AlertStatus::Firing);
    assert_eq!(st.since, fired_at);
    assert_eq!(st.severity, Severity::Critical);
    assert!(st.detail.contains("no document for 2 min"), "{}", st.detail);

    // the register speaks again: two clear evaluations are not enough ...
    send(gw.tcp.unwrap(), &receipt(&r, 2)).await;
    let t1 = last_seen(store.as_ref(), &r).await;
    ev.evaluate_once(secs(t1, 1)).await.unwrap();
    ev.evaluate_once(secs(t1, 2)).await.unwrap();
    let st = one_state(store.as_ref(), "silent-60s", &r).await.unwrap();
    assert_eq!((st.status, st.clear_streak), (AlertStatus::Firing, 2));
    assert_eq!(st.last_evaluated, secs(t1, 2));
    // ... and the condition coming back resets the streak (no flapping, no new firing)
    ev.evaluate_once(secs(t1, 200)).await.unwrap();
    let st = one_state(store.as_ref(), "silent-60s", &r).await.unwrap();
    assert_eq!((st.status, st.clear_streak, st.since), (AlertStatus::Firing, 0, fired_at));

    send(gw.tcp.unwrap(), &receipt(&r, 3)).await;
    let t2 = last_seen(store.as_ref(), &r).await;
    for i in 1..=2 {
        ev.evaluate_once(secs(t2, i)).await.unwrap();
    }
    let s = ev.evaluate_once(secs(t2, 3)).await.unwrap();
    assert_eq!((s.resolved, s.firing), (1, 0), "{s:?}");
    let st = one_state(store.as_ref(), "silent-60s", &r).await.unwrap();
    assert_eq!(st.status, AlertStatus::Resolved);
    assert_eq!(st.resolved_at, Some(secs(t2, 3)));
    assert_eq!(st.since, fired_at, "since stays the start of the episode");

    // firing and resolved notifications, nothing for the streak changes
    let notes = store.list_notifications(PageRequest::first(100)).await.unwrap().items;
    let mut kinds: Vec<_> = notes.iter().filter(|n| n.rule == "silent-60s").map(|n| n.status).collect();
    kinds.sort_by_key(|s| *s == AlertStatus::Resolved);
    assert_eq!(kinds, vec![AlertStatus::Firing, AlertStatus::Resolved]);

    // and the notifier delivers both
    let notifier = Notifier::new(store.clone(), cfg(), "node-a".into()).unwrap();
    let n = notifier.notify_once(Timestamp::now()).await.unwrap();
    assert_eq!(n.delivered, 2);
    let alerts = rx.rx.alerts();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["status"], "firing");
    assert_eq!(alerts[1]["status"], "resolved");
    assert_eq!(alerts[0]["rule"], "silent-60s");
    assert_eq!(alerts[0]["severity"], "critical");
    assert_eq!(alerts[0]["rnm"], r.rnm.as_str());
    assert_eq!(alerts[0]["owner_inn"], INN_A);
    assert_eq!(alerts[0]["condition"], "silent");
    assert!(alerts[1]["resolved_at"].is_string());
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn backlog_rule_fires_from_a_shift_report_carrying_1097() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_on(fast_config(dir.path(), None)).await;
    let store = gw.shared.store.clone();
    let r = register(101, INN_A);
    onboard(&gw, std::slice::from_ref(&r)).await;
    store
        .put_rule(&rule(
            "backlog-10",
            AlertCondition::UnsentBacklog { count_above: Some(10), older_than_secs: Some(3 * 86_400) },
            Severity::Warning,
        ))
        .await
        .unwrap();
    let mut ev = Evaluator::new(store.clone(), cfg(), "node-a".into());
    assert!(ev.lease().await);

    let two_days_ago = u32::try_from(Timestamp::now().unix_secs() - 2 * 86_400).unwrap();
    let report = |unsent| DriveReport {
        shift: 7,
        unsent_documents: unsent,
        first_unsent_time: if unsent > 0 { two_days_ago } else { 0 },
        first_unsent_fd: if unsent > 0 { 100 } else { 0 },
        key_resource_days: 300,
        ..DriveReport::default()
    };
    send(gw.tcp.unwrap(), &close_shift(&r, 1, report(5))).await;
    ev.evaluate_once(Timestamp::now()).await.unwrap();
    assert!(one_state(store.as_ref(), "backlog-10", &r).await.is_none(), "5 unsent, 2 days old: below both thresholds");

    send(gw.tcp.unwrap(), &close_shift(&r, 2, report(50))).await;
    let s = ev.evaluate_once(Timestamp::now()).await.unwrap();
    assert_eq!(s.fired, 1);
    let st = one_state(store.as_ref(), "backlog-10", &r).await.unwrap();
    assert_eq!(st.status, AlertStatus::Firing);
    assert!(st.detail.contains("50 unsent documents"), "{}", st.detail);
    assert_eq!(st.severity, Severity::Warning);

    // the register catches up: the next report carries 0
    send(gw.tcp.unwrap(), &close_shift(&r, 3, report(0))).await;
    for _ in 0..3 {
        ev.evaluate_once(Timestamp::now()).await.unwrap();
    }
    let st = one_state(store.as_ref(), "backlog-10", &r).await.unwrap();
    assert_eq!(st.status, AlertStatus::Resolved);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn scopes_disabling_and_the_traffic_light() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_on(fast_config(dir.path(), None)).await;
    let store = gw.shared.store.clone();
    // 201 is in shop-1, 202 in shop-0; 203 belongs to another owner, 204 is suspended
    let now = Timestamp::now();
    let mut regs: Vec<Register> =
        vec![register(201, INN_A), register(202, INN_A), register(203, INN_B), register(204, INN_A)];
    regs[0].paid_until = Some(secs(now, 10 * 86_400));
    regs[1].fn_since = Some(now.minus(Duration::from_secs(450 * 86_400)));
    regs[2].paid_until = Some(now.minus(Duration::from_secs(86_400)));
    onboard(&gw, &regs).await;
    let warn = DriveReport { warnings: 0b0010, key_resource_days: 400, ..DriveReport::default() };
    send(gw.tcp.unwrap(), &close_shift(&regs[0], 1, warn)).await;
    // no drive report from 202: its FN end of life comes from its FN activation date
    send(gw.tcp.unwrap(), &receipt(&regs[1], 1)).await;
    regs[3].paid_until = Some(now.minus(Duration::from_secs(86_400)));
    regs[3].status = RegisterStatus::Suspended;
    store.put_registers(vec![regs[3].clone()], vec![None]).await.unwrap();

    let mut warnings = rule("fn-warnings-shop-1", AlertCondition::FnWarnings { mask: 0 }, Severity::Critical);
    warnings.scope = AlertScope::Group("shop-1".into());
    store.put_rule(&warnings).await.unwrap();
    let mut paid = rule("paid-30d-owner-a", AlertCondition::PaidPeriodEnding { within_days: 30 }, Severity::Warning);
    paid.scope = AlertScope::OwnerInn(regs[0].owner_inn.clone());
    store.put_rule(&paid).await.unwrap();
    let mut eol =
        rule("fn-eol-listed", AlertCondition::FnEndOfLife { within_days: 30, fn_term_days: 456 }, Severity::Warning);
    eol.scope = AlertScope::Registers(vec![regs[1].rnm.clone(), regs[2].rnm.clone()]);
    store.put_rule(&eol).await.unwrap();
    let mut off = rule("disabled-silent", AlertCondition::Silent { for_secs: 1 }, Severity::Critical);
    off.enabled = false;
    store.put_rule(&off).await.unwrap();

    let mut ev = Evaluator::new(store.clone(), cfg(), "node-a".into());
    assert!(ev.lease().await);
    ev.evaluate_once(secs(now, 60)).await.unwrap();

    let firing = |v: Vec<AlertState>| -> Vec<String> {
        let mut out: Vec<String> =
            v.into_iter().filter(|s| s.status == AlertStatus::Firing).map(|s| s.rnm.to_string()).collect();
        out.sort();
        out
    };
    let rnm = |i: usize| regs[i].rnm.to_string();
    assert_eq!(firing(states(store.as_ref(), "fn-warnings-shop-1").await), vec![rnm(0)], "only the shop-1 register");
    assert_eq!(
        firing(states(store.as_ref(), "paid-30d-owner-a").await),
        vec![rnm(0)],
        "owner A's register ending in 10 days (the suspended one is grey, not alerted)"
    );
    assert_eq!(
        firing(states(store.as_ref(), "fn-eol-listed").await),
        vec![rnm(1)],
        "456-day FN term from 450 days ago; the other listed register has no dates"
    );
    assert!(states(store.as_ref(), "disabled-silent").await.is_empty());

    // traffic light per register
    let all = store.list_alert_states(&AlertFilter::default(), PageRequest::first(1000)).await.unwrap().items;
    let light = |r: &Register| light_of_states(r.status, all.iter().filter(|s| s.rnm == r.rnm));
    assert_eq!(light(&regs[0]), Light::Red, "critical warnings flag");
    assert_eq!(light(&regs[1]), Light::Yellow, "FN end of life warning");
    assert_eq!(light(&regs[2]), Light::Green);
    assert_eq!(light(&regs[3]), Light::Grey);

    // disabling a rule resolves its alerts at once, without a notification
    warnings.enabled = false;
    store.put_rule(&warnings).await.unwrap();
    let s = ev.evaluate_once(secs(now, 120)).await.unwrap();
    assert_eq!(s.resolved, 1);
    let st = one_state(store.as_ref(), "fn-warnings-shop-1", &regs[0]).await.unwrap();
    assert_eq!(st.status, AlertStatus::Resolved);
    assert!(st.detail.starts_with("rule disabled"), "{}", st.detail);

    // a second node does not evaluate while the first holds the lease
    let mut other = Evaluator::new(store.clone(), cfg(), "node-b".into());
    assert!(!other.lease().await);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn webhooks_are_retried_with_backoff_and_abandoned_after_max_attempts() {
    let flaky = TestReceiver::start(ReceiverOptions { fail_first: 2, ..ReceiverOptions::default() }).await;
    let dead = TestReceiver::start(ReceiverOptions { fail_ratio: 1.0, ..ReceiverOptions::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_on(fast_config(dir.path(), None)).await;
    let store = gw.shared.store.clone();
    let r = register(300, INN_A);
    onboard(&gw, std::slice::from_ref(&r)).await;
    let mut a = rule("hook-flaky", AlertCondition::Silent { for_secs: 1 }, Severity::Warning);
    a.webhook = Some(flaky.alerts_url());
    store.put_rule(&a).await.unwrap();
    let mut b = rule("hook-dead", AlertCondition::Silent { for_secs: 1 }, Severity::Warning);
    b.webhook = Some(dead.alerts_url());
    store.put_rule(&b).await.unwrap();
    let mut ev = Evaluator::new(store.clone(), cfg(), "node-a".into());
    assert!(ev.lease().await);
    ev.evaluate_once(secs(Timestamp::now(), 3600)).await.unwrap();

    let mut c = cfg();
    c.webhook_max_attempts = 4;
    let notifier = Notifier::new(store.clone(), c, "node-a".into()).unwrap();
    wait_for(Duration::from_secs(10), "both notifications settled", || async {
        notifier.notify_once(Timestamp::now()).await.unwrap();
        store.due_notifications(secs(Timestamp::now(), 3600), 10).await.unwrap().is_empty()
    })
    .await;
    let notes = store.list_notifications(PageRequest::first(100)).await.unwrap().items;
    let flaky_note = notes.iter().find(|n| n.rule == "hook-flaky").unwrap();
    assert_eq!(flaky_note.attempts, 3, "two injected failures, then delivered");
    assert!(flaky_note.delivered_at.is_some());
    assert!(!flaky_note.abandoned);
    assert_eq!(flaky.rx.stats().alerts, 1);
    let dead_note = notes.iter().find(|n| n.rule == "hook-dead").unwrap();
    assert_eq!(dead_note.attempts, 4);
    assert!(dead_note.abandoned);
    assert!(dead_note.delivered_at.is_none());
    assert_eq!(dead_note.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(dead.rx.stats().alerts, 0);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn live_evaluation_in_a_running_gateway() {
    let rx = TestReceiver::start(ReceiverOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(dir.path(), None);
    cfg.alerts.enabled = true;
    cfg.alerts.interval = Duration::from_millis(100);
    cfg.alerts.resolve_after = 2;
    cfg.alerts.notify_interval = Duration::from_millis(50);
    let gw = start_on(cfg).await;
    let store = gw.shared.store.clone();
    let r = register(400, INN_B);
    onboard(&gw, std::slice::from_ref(&r)).await;
    send(gw.tcp.unwrap(), &open_shift(&r, 1)).await;
    let mut silent = rule("live-silent-1s", AlertCondition::Silent { for_secs: 1 }, Severity::Critical);
    silent.webhook = Some(rx.alerts_url());
    store.put_rule(&silent).await.unwrap();

    wait_for(Duration::from_secs(10), "the silent alert firing", || async {
        one_state(store.as_ref(), "live-silent-1s", &r).await.is_some_and(|s| s.status == AlertStatus::Firing)
    })
    .await;
    // the evaluator sets the gauge after it has stored the states and notifications
    gateway::control::fns::client::install_crypto_provider();
    let scrape = || async {
        reqwest::get(format!("http://{}/metrics", gw.metrics.unwrap())).await.unwrap().text().await.unwrap()
    };
    let firing = "ofd_gateway_alerts_firing{rule=\"live-silent-1s\",severity=\"critical\"} 1";
    wait_for(Duration::from_secs(10), "the firing gauge", || async { scrape().await.contains(firing) }).await;
    let metrics = scrape().await;
    assert!(
        metrics.contains(firing),
        "{}",
        metrics.lines().filter(|l| l.contains("alert")).collect::<Vec<_>>().join("\n")
    );
    assert!(!metrics.contains(r.rnm.as_str()), "no register in any label");

    send(gw.tcp.unwrap(), &receipt(&r, 2)).await;
    wait_for(Duration::from_secs(10), "the alert resolved", || async {
        one_state(store.as_ref(), "live-silent-1s", &r).await.is_some_and(|s| s.status == AlertStatus::Resolved)
    })
    .await;
    wait_for(Duration::from_secs(10), "both webhooks", || async { rx.rx.stats().alerts >= 2 }).await;
    let statuses: Vec<_> = rx.rx.alerts().iter().map(|a| a["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(&statuses[..2], ["firing", "resolved"]);
    gw.shutdown().await.unwrap();
}
