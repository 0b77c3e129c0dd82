//! Registers: put and get, the FN index, conflicts that change nothing, listing with
//! filters, changes since a time; and the onboarding backlog of unknown FNs.

use super::Harness;
use super::fixtures::{collect_pages, fn_no, is_conflict, other_owner, register, rnm, t};
use crate::ids::{Rnm, Timestamp};
use crate::model::{FnRecord, RegisterStatus, UnknownFnSighting};
use crate::store::RegisterFilter;

/// Put, get and the FN index (current and historical FNs; dropped FNs leave the index).
pub async fn registers_put_get_and_fn_index(h: &dyn Harness) {
    let s = h.fresh().await;
    let mut a = register(1, fn_no(11));
    a.fn_history = vec![FnRecord { fn_number: fn_no(10), active_from: Some(t(-1000)), replaced_at: t(0) }];
    a.group = Some("north".into());
    let b = register(2, fn_no(20));
    s.put_registers(vec![a.clone(), b.clone()], vec![None, None]).await.expect("put");
    assert_eq!(s.get_register(&a.rnm).await.expect("get"), Some(a.clone()));
    assert_eq!(s.get_register(&rnm(3)).await.expect("get"), None);
    assert_eq!(s.register_by_fn(&fn_no(11)).await.expect("fn"), Some(a.clone()));
    assert_eq!(s.register_by_fn(&fn_no(10)).await.expect("fn"), Some(a.clone()));
    assert_eq!(s.register_by_fn(&fn_no(20)).await.expect("fn"), Some(b.clone()));
    assert_eq!(s.register_by_fn(&fn_no(99)).await.expect("fn"), None);

    // FN replacement: 11 moves to history, 12 is current, 10 is dropped.
    let mut a2 = a.clone();
    a2.fn_number = fn_no(12);
    a2.fn_history = vec![FnRecord { fn_number: fn_no(11), active_from: Some(t(0)), replaced_at: t(500) }];
    a2.version = 2;
    a2.updated_at = t(500);
    s.put_registers(vec![a2.clone()], vec![Some(1)]).await.expect("replace");
    assert_eq!(s.get_register(&a.rnm).await.expect("get"), Some(a2.clone()));
    assert_eq!(s.register_by_fn(&fn_no(12)).await.expect("fn"), Some(a2.clone()));
    assert_eq!(s.register_by_fn(&fn_no(11)).await.expect("fn"), Some(a2.clone()));
    assert_eq!(s.register_by_fn(&fn_no(10)).await.expect("fn"), None);
    // The dropped FN is free for another register now.
    let c = register(3, fn_no(10));
    s.put_registers(vec![c.clone()], Vec::new()).await.expect("put");
    assert_eq!(s.register_by_fn(&fn_no(10)).await.expect("fn"), Some(c));
}

/// An FN owned by another register is a `Conflict`, and the whole call changes nothing.
pub async fn registers_fn_clash_changes_nothing(h: &dyn Harness) {
    let s = h.fresh().await;
    let mut a = register(1, fn_no(1));
    a.fn_history = vec![FnRecord { fn_number: fn_no(5), active_from: None, replaced_at: t(0) }];
    s.put_registers(vec![a.clone()], vec![None]).await.expect("put");

    let b = register(2, fn_no(2));
    let thief = register(3, fn_no(1));
    let r = s.put_registers(vec![b.clone(), thief.clone()], vec![None, None]).await;
    assert!(is_conflict(r), "current FN of another register");
    let mut historic_thief = register(4, fn_no(4));
    historic_thief.fn_history = vec![FnRecord { fn_number: fn_no(5), active_from: None, replaced_at: t(0) }];
    let r = s.put_registers(vec![historic_thief.clone()], vec![None]).await;
    assert!(is_conflict(r), "historical FN of another register");
    let r = s.put_registers(vec![register(6, fn_no(6)), register(7, fn_no(6))], vec![]).await;
    assert!(is_conflict(r), "two registers of one call claim one FN");

    for gone in [&b.rnm, &thief.rnm, &historic_thief.rnm, &rnm(6), &rnm(7)] {
        assert_eq!(s.get_register(gone).await.expect("get"), None, "{gone}");
    }
    assert_eq!(s.register_by_fn(&fn_no(1)).await.expect("fn"), Some(a.clone()));
    assert_eq!(s.register_by_fn(&fn_no(5)).await.expect("fn"), Some(a.clone()));
    assert_eq!(s.register_by_fn(&fn_no(2)).await.expect("fn"), None);
    assert_eq!(s.register_by_fn(&fn_no(6)).await.expect("fn"), None);
    let no_filter = RegisterFilter::default();
    let all = collect_pages(100, |p| s.list_registers(&no_filter, p)).await;
    assert_eq!(all, vec![a]);
}

/// A stale expected version is a `Conflict`, and the whole call changes nothing.
pub async fn registers_version_conflict_changes_nothing(h: &dyn Harness) {
    let s = h.fresh().await;
    let a = register(1, fn_no(1));
    s.put_registers(vec![a.clone()], vec![None]).await.expect("put");
    let mut a2 = a.clone();
    a2.version = 2;
    a2.name = "renamed".into();
    a2.updated_at = t(10);
    let b = register(2, fn_no(2));
    s.put_registers(vec![a2.clone(), b.clone()], vec![Some(1), None]).await.expect("matching version");
    assert_eq!(s.get_register(&a.rnm).await.expect("get"), Some(a2.clone()));

    let mut stale = a.clone();
    stale.version = 2;
    stale.name = "lost update".into();
    let c = register(3, fn_no(3));
    let r = s.put_registers(vec![c.clone(), stale], vec![None, Some(1)]).await;
    assert!(is_conflict(r), "stale version");
    assert_eq!(s.get_register(&a.rnm).await.expect("get"), Some(a2));
    assert_eq!(s.get_register(&c.rnm).await.expect("get"), None);
    assert_eq!(s.register_by_fn(&fn_no(3)).await.expect("fn"), None);
    assert_eq!(s.get_register(&b.rnm).await.expect("get"), Some(b.clone()));

    // expected version 0 = "must not exist": a create never overwrites
    let mut dup = b.clone();
    dup.name = "second create".into();
    let r = s.put_registers(vec![dup], vec![Some(0)]).await;
    assert!(is_conflict(r), "create over an existing register");
    assert_eq!(s.get_register(&b.rnm).await.expect("get"), Some(b));
    let d = register(4, fn_no(4));
    s.put_registers(vec![d.clone()], vec![Some(0)]).await.expect("create of a new register");
    assert_eq!(s.get_register(&d.rnm).await.expect("get"), Some(d));
}

/// Listing: RNM order, every filter, pages.
pub async fn registers_list_filters_and_pages(h: &dyn Harness) {
    let s = h.fresh().await;
    let mut regs = Vec::new();
    for n in 1..=7u64 {
        let mut r = register(n, fn_no(n));
        r.status = if n % 3 == 0 { RegisterStatus::Suspended } else { RegisterStatus::Active };
        r.group = (n % 2 == 0).then(|| "even".to_owned());
        r.tariff = Some(if n <= 2 { "basic" } else { "pro" }.to_owned());
        r.paid_until = Some(t(n as i64 * 1000));
        if n == 7 {
            r.owner_inn = other_owner();
            r.rnm = Rnm::compose(n, &other_owner(), &r.kkt_serial);
        }
        regs.push(r);
    }
    s.put_registers(regs.clone(), Vec::new()).await.expect("put");
    let mut sorted = regs.clone();
    sorted.sort_by(|a, b| a.rnm.cmp(&b.rnm));

    let no_filter = RegisterFilter::default();
    let all = collect_pages(3, |p| s.list_registers(&no_filter, p)).await;
    assert_eq!(all, sorted, "all, in RNM order");

    let rnms = |f: RegisterFilter| {
        let s = s.clone();
        async move {
            let v = collect_pages(2, |p| s.list_registers(&f, p)).await;
            v.into_iter().map(|r| r.name).collect::<Vec<_>>()
        }
    };
    let names = |ns: &[u64]| {
        let mut v: Vec<_> = regs.iter().filter(|r| ns.iter().any(|n| r.name == format!("Shop {n}"))).collect();
        v.sort_by(|a, b| a.rnm.cmp(&b.rnm));
        v.into_iter().map(|r| r.name.clone()).collect::<Vec<_>>()
    };
    let f = RegisterFilter { status: Some(RegisterStatus::Suspended), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[3, 6]));
    let f = RegisterFilter { group: Some("even".into()), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[2, 4, 6]));
    let f = RegisterFilter { tariff: Some("basic".into()), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[1, 2]));
    let f = RegisterFilter { owner_inn: Some(other_owner()), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[7]));
    let f = RegisterFilter { paid_until_before: Some(t(3000)), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[1, 2]));
    let f = RegisterFilter { status: Some(RegisterStatus::Active), group: Some("even".into()), ..Default::default() };
    assert_eq!(rnms(f).await, names(&[2, 4]));
}

/// `registers_updated_since` returns each changed register once, at or after `since`.
pub async fn registers_updated_since(h: &dyn Harness) {
    let s = h.fresh().await;
    let mut regs = Vec::new();
    for n in 1..=5u64 {
        let mut r = register(n, fn_no(n));
        r.updated_at = t(n as i64 * 10);
        regs.push(r);
    }
    s.put_registers(regs.clone(), Vec::new()).await.expect("put");
    let since = |ts: Timestamp| {
        let s = s.clone();
        async move {
            let v = collect_pages(2, |p| s.registers_updated_since(ts, p)).await;
            let mut names: Vec<_> = v.into_iter().map(|r| r.name).collect();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), n, "a register listed twice");
            names
        }
    };
    assert_eq!(since(t(30)).await, vec!["Shop 3", "Shop 4", "Shop 5"]);
    assert_eq!(since(t(51)).await, Vec::<String>::new());
    let mut r1 = regs[0].clone();
    r1.updated_at = t(100);
    r1.version = 2;
    s.put_registers(vec![r1], vec![Some(1)]).await.expect("update");
    assert_eq!(since(t(30)).await, vec!["Shop 1", "Shop 3", "Shop 4", "Shop 5"]);
    assert_eq!(since(t(60)).await, vec!["Shop 1"]);
    assert_eq!(since(t(0)).await.len(), 5);
}

/// Unknown FNs aggregate attempts and first/last sighting; removal drops them.
pub async fn unknown_fns_aggregate_and_remove(h: &dyn Harness) {
    let s = h.fresh().await;
    let sight = |n: u64, at: i64, attempts: u64, peer: &str| UnknownFnSighting {
        fn_number: fn_no(n),
        at: t(at),
        attempts,
        claimed_rnm: Some(format!("claimed-{n}")),
        claimed_inn: None,
        peer: Some(peer.to_owned()),
    };
    s.record_unknown_fns(vec![sight(2, 100, 2, "10.0.0.1:1"), sight(1, 50, 1, "10.0.0.9:9")]).await.expect("record");
    s.record_unknown_fns(vec![sight(2, 300, 3, "10.0.0.2:2"), sight(2, 10, 1, "10.0.0.3:3")]).await.expect("record");
    let all = collect_pages(1, |p| s.list_unknown_fns(p)).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].fn_number, fn_no(1), "FN order");
    let u = &all[1];
    assert_eq!(u.fn_number, fn_no(2));
    assert_eq!(u.attempts, 6);
    assert_eq!(u.first_seen, t(10));
    assert_eq!(u.last_seen, t(300));
    assert_eq!(u.last_peer.as_deref(), Some("10.0.0.2:2"));
    assert_eq!(u.claimed_rnm.as_deref(), Some("claimed-2"));
    s.remove_unknown_fn(&fn_no(2)).await.expect("remove");
    let all = collect_pages(10, |p| s.list_unknown_fns(p)).await;
    assert_eq!(all.iter().map(|u| u.fn_number).collect::<Vec<_>>(), vec![fn_no(1)]);
    s.remove_unknown_fn(&fn_no(77)).await.expect("removing an absent FN is fine");
}
