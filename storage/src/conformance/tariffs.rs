//! Tariff plans: create, read, list; a taken name is a conflict.

use super::Harness;
use super::fixtures::{is_conflict, t};
use crate::model::TariffPlan;

/// Tariffs: create, read, list; a taken name is a `Conflict` that changes nothing.
pub async fn tariffs_create_get_list(h: &dyn Harness) {
    let s = h.fresh().await;
    let plan = |name: &str, days: u32| TariffPlan {
        name: name.to_owned(),
        period_days: days,
        price_kopecks: 150_000,
        description: "a year".into(),
        created_at: t(0),
    };
    s.create_tariff(&plan("OFD-15", 365)).await.expect("create");
    s.create_tariff(&plan("OFD-36", 1095)).await.expect("create");
    assert!(is_conflict(s.create_tariff(&plan("OFD-15", 30)).await));
    assert_eq!(s.get_tariff("OFD-15").await.expect("get"), Some(plan("OFD-15", 365)));
    assert_eq!(s.get_tariff("nope").await.expect("get"), None);
    let mut names: Vec<_> = s.list_tariffs().await.expect("list").into_iter().map(|p| p.name).collect();
    names.sort();
    assert_eq!(names, vec!["OFD-15", "OFD-36"]);
}
