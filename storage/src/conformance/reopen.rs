//! Persistence: everything written is there after a close and reopen.

use super::Harness;
use super::fixtures::{all_due, append_ok, doc, fn_no, job, register, rnm, rule, t};
use crate::model::{AppendOutcome, JobState, TariffPlan};

/// Everything written is there after a close and reopen (skipped, with a message, for
/// backends that cannot reopen).
pub async fn data_survives_reopen(h: &dyn Harness) {
    let s = h.fresh().await;
    let r = rnm(1);
    let reg = register(1, fn_no(1));
    s.put_registers(vec![reg.clone()], vec![None]).await.expect("put");
    let docs: Vec<_> = (1..=50).map(|fd| doc(fn_no(1), fd, &r, t(i64::from(fd)), 0)).collect();
    append_ok(&*s, docs.clone()).await;
    s.mark_delivered(&[docs[0].key()], t(100)).await.expect("mark");
    s.create_tariff(&TariffPlan {
        name: "OFD-15".into(),
        period_days: 365,
        price_kopecks: 1,
        description: String::new(),
        created_at: t(0),
    })
    .await
    .expect("tariff");
    s.put_rule(&rule("silent")).await.expect("rule");
    let j = job(1, JobState::Running);
    s.put_job(&j).await.expect("job");
    s.settle().await.expect("settle");
    let activity = s.get_activity(&r).await.expect("activity");

    let Some(s) = h.reopen(s).await else {
        eprintln!("conformance: data_survives_reopen skipped: the backend cannot reopen");
        return;
    };
    for d in &docs {
        assert_eq!(s.get_document(&d.key()).await.expect("get").as_ref(), Some(d));
    }
    let o = append_ok(&*s, vec![docs[5].clone()]).await;
    assert_eq!(o, vec![AppendOutcome::Duplicate { ack: docs[5].ack.clone(), identical: true }]);
    assert_eq!(s.get_register(&reg.rnm).await.expect("get"), Some(reg.clone()));
    assert_eq!(s.register_by_fn(&fn_no(1)).await.expect("fn"), Some(reg));
    assert_eq!(s.get_activity(&r).await.expect("activity"), activity);
    assert_eq!(all_due(&*s, t(1_000_000)).await.len(), 49);
    let b = s.backlog().await.expect("backlog");
    assert_eq!((b.pending, b.oldest_queued_at), (49, Some(t(2))));
    assert!(s.get_tariff("OFD-15").await.expect("tariff").is_some());
    assert!(s.get_rule("silent").await.expect("rule").is_some());
    assert_eq!(s.get_job(&j.id).await.expect("job"), Some(j));
    // And it keeps working.
    let more = doc(fn_no(1), 51, &r, t(51), 0);
    assert_eq!(append_ok(&*s, vec![more]).await, vec![AppendOutcome::Stored]);
}
