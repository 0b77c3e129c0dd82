//! Alerts: rules with their states, and webhook notifications (due, retried, listed).

use uuid::Uuid;

use super::Harness;
use super::fixtures::{T0, collect_pages, rnm, rule, t, v7};
use crate::error::StoreError;
use crate::model::{AlertNotification, AlertState, AlertStatus, Severity};
use crate::store::AlertFilter;

fn state(rule: &str, n: u64, status: AlertStatus) -> AlertState {
    AlertState {
        rule: rule.to_owned(),
        rnm: rnm(n),
        status,
        since: t(0),
        resolved_at: None,
        last_evaluated: t(10),
        clear_streak: 0,
        detail: format!("register {n}"),
        severity: Severity::Warning,
    }
}

/// Rules: put/get/list/replace/delete (with their states); states filtered and ordered
/// by (rule, register).
pub async fn alert_rules_and_states(h: &dyn Harness) {
    let s = h.fresh().await;
    s.put_rule(&rule("silent")).await.expect("put");
    s.put_rule(&rule("silent-2")).await.expect("put");
    let mut changed = rule("silent");
    changed.enabled = false;
    s.put_rule(&changed).await.expect("replace");
    assert_eq!(s.get_rule("silent").await.expect("get"), Some(changed));
    assert_eq!(s.get_rule("none").await.expect("get"), None);
    assert_eq!(s.list_rules().await.expect("list").len(), 2);

    let mut rnm_order = [1u64, 2, 3];
    rnm_order.sort_by_key(|n| rnm(*n));
    s.put_alert_states(vec![
        state("silent", 3, AlertStatus::Firing),
        state("silent-2", 1, AlertStatus::Firing),
        state("silent", 1, AlertStatus::Resolved),
        state("silent", 2, AlertStatus::Firing),
    ])
    .await
    .expect("states");
    // Overwrite one state.
    s.put_alert_states(vec![state("silent", 2, AlertStatus::Resolved)]).await.expect("states");
    let list = |f: AlertFilter| {
        let s = s.clone();
        async move {
            collect_pages(1, |p| s.list_alert_states(&f, p))
                .await
                .into_iter()
                .map(|st| (st.rule, st.rnm, st.status))
                .collect::<Vec<_>>()
        }
    };
    let all = list(AlertFilter::default()).await;
    let mut expected: Vec<_> = rnm_order
        .iter()
        .map(|n| {
            let st = if *n == 3 { AlertStatus::Firing } else { AlertStatus::Resolved };
            ("silent".to_owned(), rnm(*n), st)
        })
        .collect();
    expected.push(("silent-2".to_owned(), rnm(1), AlertStatus::Firing));
    assert_eq!(all, expected, "ordered by (rule, register)");
    let f = AlertFilter { rule: Some("silent".into()), status: Some(AlertStatus::Firing), rnm: None };
    assert_eq!(list(f).await, vec![("silent".to_owned(), rnm(3), AlertStatus::Firing)]);
    let f = AlertFilter { rnm: Some(rnm(1)), ..Default::default() };
    assert_eq!(list(f).await.len(), 2);

    s.delete_rule("silent").await.expect("delete");
    assert_eq!(s.get_rule("silent").await.expect("get"), None);
    assert_eq!(
        list(AlertFilter::default()).await,
        vec![("silent-2".to_owned(), rnm(1), AlertStatus::Firing)],
        "the rule's states went with it"
    );
    let r = s.delete_rule("silent").await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

fn note(i: i64, next_at: i64) -> AlertNotification {
    AlertNotification {
        id: v7(T0 + i * 1000, 0),
        rule: "silent".into(),
        rnm: rnm(1),
        status: AlertStatus::Firing,
        webhook: "http://127.0.0.1:9/hook".into(),
        payload: serde_json::json!({ "n": i }),
        created_at: t(i * 1000),
        attempts: 0,
        next_attempt_at: t(next_at),
        delivered_at: None,
        abandoned: false,
        last_error: None,
    }
}

/// Notifications: due = pending and next attempt passed, oldest first; delivered or
/// abandoned are never due; listing is newest first.
pub async fn alert_notifications_due_and_list(h: &dyn Harness) {
    let s = h.fresh().await;
    let n1 = note(1, 1_000);
    let n2 = note(2, 20_000);
    let mut n3 = note(3, 0);
    n3.delivered_at = Some(t(500));
    let mut n4 = note(4, 0);
    n4.abandoned = true;
    s.put_notifications(vec![n2.clone(), n1.clone(), n3.clone(), n4.clone()]).await.expect("put");
    let due = |at: i64| {
        let s = s.clone();
        async move { s.due_notifications(t(at), 100).await.expect("due").into_iter().map(|n| n.id).collect::<Vec<_>>() }
    };
    assert_eq!(due(5_000).await, vec![n1.id]);
    assert_eq!(due(30_000).await, vec![n1.id, n2.id], "oldest first");
    assert_eq!(s.due_notifications(t(30_000), 1).await.expect("due").len(), 1);

    // A retry moves n1 later; delivery of n2 removes it.
    let mut n1b = n1.clone();
    n1b.attempts = 1;
    n1b.next_attempt_at = t(40_000);
    let mut n2b = n2.clone();
    n2b.delivered_at = Some(t(25_000));
    s.put_notifications(vec![n1b.clone(), n2b.clone()]).await.expect("update");
    assert_eq!(due(30_000).await, Vec::<Uuid>::new());
    assert_eq!(due(40_000).await, vec![n1.id]);

    let all = collect_pages(3, |p| s.list_notifications(p)).await;
    assert_eq!(all, vec![n4, n3, n2b, n1b], "newest first, latest versions");
}
