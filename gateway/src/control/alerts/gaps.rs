//! The `fd_gaps` condition: documents a register's FN numbered but the operator never
//! received (holes between the lowest and the highest FD received of each FN, from
//! [`storage::ReportStore::continuity`]). It holds while more than `missing_above` FDs
//! are missing over all the register's FNs, or while a hole has been known for longer
//! than `older_than_secs` (since the first document beyond it arrived); it stops holding
//! once the missing documents arrive (a retransmission fills the hole).

use std::time::Duration;

use storage::Timestamp;
use storage::model::FnContinuity;

use super::human_duration;

/// `Some(detail)` when the condition holds for these FNs.
pub fn evaluate(
    missing_above: Option<u64>,
    older_than_secs: Option<u64>,
    fns: &[FnContinuity],
    now: Timestamp,
) -> Option<String> {
    let missing: u64 = fns.iter().map(|f| f.continuity.missing()).sum();
    if missing == 0 {
        return None;
    }
    let mut reasons = Vec::new();
    if let Some(n) = missing_above
        && missing > n
    {
        reasons.push(format!("{missing} FDs never received ({})", holes_text(fns)));
    }
    if let Some(s) = older_than_secs {
        let oldest = fns
            .iter()
            .filter_map(|f| f.continuity.holes.iter().map(|h| (h.since, f, h)).min_by_key(|x| x.0))
            .min_by_key(|x| x.0);
        if let Some((since, f, h)) = oldest
            && now.since(since) > Duration::from_secs(s)
        {
            reasons.push(format!(
                "FN {} FD {} missing for {} (since {since})",
                f.fn_number,
                run(h.from, h.to),
                human_duration(now.since(since))
            ));
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

fn run(from: u32, to: u32) -> String {
    if from == to { from.to_string() } else { format!("{from}–{to}") }
}

/// The first holes, e.g. `FN 9999078900005488: 12, 15–17`.
fn holes_text(fns: &[FnContinuity]) -> String {
    const SHOWN: usize = 5;
    let mut parts = Vec::new();
    for f in fns.iter().filter(|f| f.continuity.missing() > 0) {
        let mut runs: Vec<String> = f.continuity.holes.iter().take(SHOWN).map(|h| run(h.from, h.to)).collect();
        if f.continuity.holes.len() > SHOWN || f.continuity.forgotten > 0 {
            runs.push("…".into());
        }
        parts.push(format!("FN {}: {}", f.fn_number, runs.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use ffd::FnNumber;
    use storage::Rnm;
    use storage::model::{Continuity, Hole};

    use super::*;

    const NOW: Timestamp = Timestamp(10_000_000_000);

    fn fn_with(holes: Vec<Hole>) -> FnContinuity {
        FnContinuity {
            fn_number: FnNumber::parse_strict("9999078900005488").unwrap(),
            rnm: Rnm::compose(5, &storage::Inn::parse("7702203276").unwrap(), "000000000001"),
            continuity: Continuity { low: Some(1), high: Some(100), received: 90, holes, forgotten: 0, earliest: None },
        }
    }

    fn ago(secs: i64) -> Timestamp {
        Timestamp(NOW.0 - secs * 1000)
    }

    #[test]
    fn count_threshold() {
        let f = fn_with(vec![Hole { from: 12, to: 12, since: ago(10) }, Hole { from: 15, to: 17, since: ago(5) }]);
        assert!(evaluate(Some(4), None, std::slice::from_ref(&f), NOW).is_none(), "4 missing is not more than 4");
        let d = evaluate(Some(3), None, std::slice::from_ref(&f), NOW).expect("4 > 3");
        assert_eq!(d, "4 FDs never received (FN 9999078900005488: 12, 15–17)");
        assert!(evaluate(Some(0), None, &[], NOW).is_none(), "nothing received, nothing missing");
    }

    #[test]
    fn age_threshold_and_resolution() {
        let mut f = fn_with(vec![Hole { from: 12, to: 12, since: ago(7200) }]);
        assert!(evaluate(None, Some(7200), std::slice::from_ref(&f), NOW).is_none(), "exactly the age");
        let d = evaluate(None, Some(3600), std::slice::from_ref(&f), NOW).expect("older than 1 h");
        assert!(d.contains("FD 12 missing for 2 h"), "{d}");
        // the document arrives: the hole is gone, the condition no longer holds
        assert!(f.continuity.record(12, NOW));
        assert!(evaluate(Some(0), Some(1), std::slice::from_ref(&f), NOW).is_none());
    }
}
