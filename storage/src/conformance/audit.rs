//! The audit log: newest first, filtered, paged.

use super::Harness;
use super::fixtures::{T0, collect_pages, t, v7};
use crate::model::AuditEntry;
use crate::store::AuditFilter;

/// The audit log lists newest first, filtered, paged.
pub async fn audit_newest_first_with_filters(h: &dyn Harness) {
    let s = h.fresh().await;
    let entry = |i: i64, actor: &str, action: &str, target: &str| AuditEntry {
        id: v7(T0 + i * 1000, 0),
        at: t(i * 1000),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        before: None,
        after: Some(serde_json::json!({ "i": i })),
        source: Some("127.0.0.1".into()),
    };
    let entries = vec![
        entry(1, "alice", "register.create", "R1"),
        entry(2, "bob", "register.suspend", "R1"),
        entry(3, "alice", "tariff.create", "OFD-15"),
        entry(4, "alice", "register.suspend", "R2"),
        entry(5, "bob", "rule.delete", "silent"),
    ];
    for e in &entries {
        s.append_audit(e).await.expect("append");
    }
    let ids = |v: Vec<AuditEntry>| v.into_iter().map(|e| e.at.0 - T0).collect::<Vec<_>>();
    let no_filter = AuditFilter::default();
    let all = collect_pages(2, |p| s.list_audit(&no_filter, p)).await;
    assert_eq!(all[0], entries[4]);
    assert_eq!(ids(all), vec![5000, 4000, 3000, 2000, 1000]);
    let f = AuditFilter { actor: Some("alice".into()), ..Default::default() };
    assert_eq!(ids(collect_pages(1, |p| s.list_audit(&f, p)).await), vec![4000, 3000, 1000]);
    let f = AuditFilter { action_prefix: Some("register.".into()), ..Default::default() };
    assert_eq!(ids(collect_pages(5, |p| s.list_audit(&f, p)).await), vec![4000, 2000, 1000]);
    let f = AuditFilter { target: Some("R1".into()), ..Default::default() };
    assert_eq!(ids(collect_pages(5, |p| s.list_audit(&f, p)).await), vec![2000, 1000]);
    let f = AuditFilter { since: Some(t(3000)), actor: Some("bob".into()), ..Default::default() };
    assert_eq!(ids(collect_pages(5, |p| s.list_audit(&f, p)).await), vec![5000]);
}
