//! Rule conditions as pure functions of a register, what ingestion recorded about it
//! ([`RegisterActivity`]) and the time: `Some(detail)` when the condition holds.
//!
//! * **silent**: no document received for longer than the threshold — counted from the
//!   last document, or from onboarding (`created_at`) for a register never heard from.
//! * **FN end of life**: days left from the key resource (tag 1213) of the newest drive
//!   report, less the days since that report; without 1213 (FFD 1.05 drives), the FN
//!   activation date (`fn_since`, else the newest registration report) plus the FN term.
//!   Fires at or below the threshold, and for an exhausted drive.
//! * **paid period ending**: `paid_until` within the threshold, or past. Registers without
//!   a paid period never fire.
//! * **unsent backlog**: from the newest shift/state report: 1097 above the count, or the
//!   first unsent document (1098) older than the age while 1097 is not 0.
//! * **FD gaps**: more than N FDs never received between the lowest and highest FD
//!   received of the register's FNs, or a hole known for longer than the age
//!   ([`super::gaps`]; the evaluator reads the continuity only when such a rule exists).
//! * **FN warnings**: any of the masked flags 1050–1053 (mask 0 = any) in the newest
//!   report.
//! * **ФЛК errors**: more than N documents answered with code 14 within the window (from
//!   the receive times ingestion keeps, [`RegisterActivity::RECENT_FLK`] at most).

use std::time::Duration;

use storage::Timestamp;
use storage::model::{AlertCondition, AlertScope, FnContinuity, Register, RegisterActivity};

const DAY_MS: i64 = 86_400_000;

/// Whether a rule's scope covers a register.
pub fn in_scope(scope: &AlertScope, r: &Register) -> bool {
    match scope {
        AlertScope::All => true,
        AlertScope::OwnerInn(inn) => &r.owner_inn == inn,
        AlertScope::Group(g) => r.group.as_deref() == Some(g.as_str()),
        AlertScope::Registers(list) => list.contains(&r.rnm),
    }
}

/// Short stable name of a condition kind (payloads, tables).
pub fn kind(c: &AlertCondition) -> &'static str {
    match c {
        AlertCondition::Silent { .. } => "silent",
        AlertCondition::FnEndOfLife { .. } => "fn_end_of_life",
        AlertCondition::PaidPeriodEnding { .. } => "paid_period_ending",
        AlertCondition::UnsentBacklog { .. } => "unsent_backlog",
        AlertCondition::FdGaps { .. } => "fd_gaps",
        AlertCondition::FnWarnings { .. } => "fn_warnings",
        AlertCondition::FlkErrors { .. } => "flk_errors",
    }
}

/// A human description of a condition, e.g. "silent for more than 1 day".
pub fn describe(c: &AlertCondition) -> String {
    match c {
        AlertCondition::Silent { for_secs } => format!("silent for more than {}", human(*for_secs)),
        AlertCondition::FnEndOfLife { within_days, fn_term_days } => {
            format!("FN end of life within {} (FN term {})", days(*within_days), days(*fn_term_days))
        }
        AlertCondition::PaidPeriodEnding { within_days } => {
            format!("paid period ends within {}", days(*within_days))
        }
        AlertCondition::UnsentBacklog { count_above, older_than_secs } => {
            let mut parts = Vec::new();
            if let Some(n) = count_above {
                parts.push(format!("more than {n} unsent documents"));
            }
            if let Some(s) = older_than_secs {
                parts.push(format!("an unsent document older than {}", human(*s)));
            }
            parts.join(" or ")
        }
        AlertCondition::FdGaps { missing_above, older_than_secs } => {
            let mut parts = Vec::new();
            if let Some(n) = missing_above {
                parts.push(format!("more than {n} FDs never received"));
            }
            if let Some(s) = older_than_secs {
                parts.push(format!("an FD missing for longer than {}", human(*s)));
            }
            parts.join(" or ")
        }
        AlertCondition::FnWarnings { mask } => {
            let m = effective_mask(*mask);
            format!("FN warning flags {}", flag_tags(m).join(", "))
        }
        AlertCondition::FlkErrors { above, window_secs } => {
            format!("more than {above} format-logic errors within {}", human(*window_secs))
        }
    }
}

fn days(n: impl Into<u64>) -> String {
    let n = n.into();
    if n == 1 { "1 day".to_owned() } else { format!("{n} days") }
}

fn human(secs: u64) -> String {
    human_duration(Duration::from_secs(secs))
}

pub use super::human_duration;

fn effective_mask(mask: u8) -> u8 {
    if mask & 0x0F == 0 { 0x0F } else { mask & 0x0F }
}

fn flag_tags(bits: u8) -> Vec<&'static str> {
    const NAMES: [&str; 4] = [
        "1050 (FN resource nearly exhausted)",
        "1051 (FN must be replaced urgently)",
        "1052 (FN memory full)",
        "1053 (OFD answer overdue)",
    ];
    (0..4).filter(|b| bits & (1 << b) != 0).map(|b| NAMES[b as usize]).collect()
}

/// Whole days from `now` to `t` (negative when past), rounded down.
fn days_until(now: Timestamp, t: Timestamp) -> i64 {
    t.millis().saturating_sub(now.millis()).div_euclid(DAY_MS)
}

/// Evaluates a condition: `Some(detail)` when it holds (an FD-gaps condition, without the
/// register's continuity, never holds: see [`evaluate_with`]).
pub fn evaluate(c: &AlertCondition, r: &Register, a: Option<&RegisterActivity>, now: Timestamp) -> Option<String> {
    evaluate_with(c, r, a, &[], now)
}

/// Evaluates a condition with the FD continuity of the register's FNs.
pub fn evaluate_with(
    c: &AlertCondition,
    r: &Register,
    a: Option<&RegisterActivity>,
    continuity: &[FnContinuity],
    now: Timestamp,
) -> Option<String> {
    let telemetry = a.and_then(|a| a.telemetry.as_ref());
    match c {
        AlertCondition::Silent { for_secs } => {
            let threshold = Duration::from_secs(*for_secs);
            match a.and_then(|a| a.last_seen) {
                Some(last) => {
                    let quiet = now.since(last);
                    (quiet > threshold)
                        .then(|| format!("no document for {} (last received {last})", human(quiet.as_secs())))
                }
                None => {
                    let quiet = now.since(r.created_at);
                    (quiet > threshold).then(|| {
                        format!("no document since onboarding {} ago ({})", human(quiet.as_secs()), r.created_at)
                    })
                }
            }
        }
        AlertCondition::FnEndOfLife { within_days, fn_term_days } => {
            let within = i64::from(*within_days);
            if let Some(days) = telemetry.and_then(|t| t.key_resource_days) {
                let reported = telemetry.and_then(|t| t.reported_at).unwrap_or(now);
                let elapsed = i64::try_from(now.since(reported).as_secs() / 86_400).unwrap_or(0);
                let left = i64::from(days) - elapsed;
                return (left <= within).then(|| {
                    if left <= 0 {
                        format!("FN key resource exhausted (1213 = {days} reported {reported})")
                    } else {
                        format!("FN key resource: {left} days left (1213 = {days} reported {reported})")
                    }
                });
            }
            if *fn_term_days == 0 {
                return None;
            }
            let start = r.fn_since.or_else(|| a.and_then(|a| a.registered_at))?;
            let end = start.plus(Duration::from_secs(u64::from(*fn_term_days) * 86_400));
            let left = days_until(now, end);
            (left <= within).then(|| {
                if left < 0 {
                    format!("FN term of {fn_term_days} days from {start} ended {end}")
                } else {
                    format!("FN term of {fn_term_days} days from {start} ends {end} ({left} days left)")
                }
            })
        }
        AlertCondition::PaidPeriodEnding { within_days } => {
            let until = r.paid_until?;
            let left = days_until(now, until);
            (until <= now.plus(Duration::from_secs(u64::from(*within_days) * 86_400))).then(|| {
                if until <= now {
                    format!("paid period ended {until}")
                } else {
                    format!("paid period ends {until} ({left} days left)")
                }
            })
        }
        AlertCondition::UnsentBacklog { count_above, older_than_secs } => {
            let t = telemetry?;
            let mut reasons = Vec::new();
            if let (Some(n), Some(count)) = (count_above, t.unsent_documents)
                && count > *n
            {
                reasons.push(format!("{count} unsent documents reported (1097)"));
            }
            if let (Some(s), Some(first)) = (older_than_secs, t.first_unsent_time)
                && t.unsent_documents != Some(0)
                && now.since(first) > Duration::from_secs(*s)
            {
                reasons.push(format!(
                    "oldest unsent document from {first}, {} ago (1098)",
                    human(now.since(first).as_secs())
                ));
            }
            (!reasons.is_empty()).then(|| reasons.join("; "))
        }
        AlertCondition::FdGaps { missing_above, older_than_secs } => {
            super::gaps::evaluate(*missing_above, *older_than_secs, continuity, now)
        }
        AlertCondition::FnWarnings { mask } => {
            let raised = telemetry?.warnings & effective_mask(*mask);
            (raised != 0).then(|| format!("FN warning flags raised: {}", flag_tags(raised).join(", ")))
        }
        AlertCondition::FlkErrors { above, window_secs } => {
            let window = Duration::from_secs(*window_secs);
            let n = a?.recent_flk.iter().filter(|t| now.since(**t) <= window).count();
            (n > *above as usize).then(|| format!("{n} documents answered with code 14 within {}", human(*window_secs)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffd::FnNumber;
    use storage::model::TelemetryRecord;
    use storage::{Inn, Rnm};

    fn reg() -> Register {
        let inn = Inn::parse("7702203276").expect("inn");
        Register {
            name: "t".into(),
            group: Some("shop-1".into()),
            ..Register::new(
                Rnm::compose(5, &inn, "000000000002"),
                "000000000002".into(),
                inn,
                FnNumber::parse_strict("9999078900005488").expect("fn"),
                Timestamp::from_unix_secs(1_000_000),
            )
        }
    }

    const NOW: Timestamp = Timestamp(10_000_000_000);

    #[test]
    fn durations_read_as_people_write_them() {
        let d = |s: u64| human_duration(Duration::from_secs(s));
        assert_eq!(d(0), "0 s");
        assert_eq!(d(45), "45 s");
        assert_eq!(d(300), "5 min");
        assert_eq!(d(330), "5 min 30 s");
        assert_eq!(d(3_600), "1 h");
        assert_eq!(d(86_400), "1 day");
        assert_eq!(d(36 * 3_600), "36 h");
        assert_eq!(d(36 * 3_600 + 120), "36 h 2 min");
        assert_eq!(d(2 * 86_400), "2 days");
        assert_eq!(d(3 * 86_400 + 5 * 3_600), "3 days 5 h");
        assert_eq!(describe(&AlertCondition::Silent { for_secs: 86_400 }), "silent for more than 1 day");
    }

    fn secs_ago(s: i64) -> Timestamp {
        Timestamp(NOW.0 - s * 1000)
    }

    #[test]
    fn silent_from_last_document_or_onboarding() {
        let c = AlertCondition::Silent { for_secs: 3600 };
        let mut r = reg();
        r.created_at = secs_ago(100);
        assert!(evaluate(&c, &r, None, NOW).is_none(), "onboarded recently");
        r.created_at = secs_ago(7200);
        assert!(evaluate(&c, &r, None, NOW).is_some(), "never heard from since onboarding");
        let mut a = RegisterActivity { last_seen: Some(secs_ago(60)), ..RegisterActivity::default() };
        assert!(evaluate(&c, &r, Some(&a), NOW).is_none());
        a.last_seen = Some(secs_ago(3601));
        let d = evaluate(&c, &r, Some(&a), NOW).expect("silent");
        assert!(d.contains("no document for 1 h (last received"), "{d}");
    }

    #[test]
    fn fn_end_of_life_from_key_resource_or_term() {
        let c = AlertCondition::FnEndOfLife { within_days: 30, fn_term_days: 456 };
        let r = reg();
        let tel = |days: u32, reported: Timestamp| RegisterActivity {
            telemetry: Some(TelemetryRecord {
                key_resource_days: Some(days),
                reported_at: Some(reported),
                ..TelemetryRecord::default()
            }),
            ..RegisterActivity::default()
        };
        assert!(evaluate(&c, &r, Some(&tel(100, NOW)), NOW).is_none());
        assert!(evaluate(&c, &r, Some(&tel(30, NOW)), NOW).is_some());
        // reported 80 days ago with 100 left: 20 left now
        assert!(evaluate(&c, &r, Some(&tel(100, secs_ago(80 * 86_400))), NOW).is_some());
        // no telemetry, no dates: unknown
        assert!(evaluate(&c, &r, None, NOW).is_none());
        let mut r2 = reg();
        r2.fn_since = Some(secs_ago(440 * 86_400));
        assert!(evaluate(&c, &r2, None, NOW).is_some(), "16 days of 456 left");
        r2.fn_since = Some(secs_ago(100 * 86_400));
        assert!(evaluate(&c, &r2, None, NOW).is_none());
        let a = RegisterActivity { registered_at: Some(secs_ago(500 * 86_400)), ..RegisterActivity::default() };
        let d = evaluate(&c, &r, Some(&a), NOW).expect("term ended");
        assert!(d.contains("ended"), "{d}");
    }

    #[test]
    fn paid_period() {
        let c = AlertCondition::PaidPeriodEnding { within_days: 30 };
        let mut r = reg();
        assert!(evaluate(&c, &r, None, NOW).is_none(), "no paid period");
        r.paid_until = Some(NOW.plus(Duration::from_secs(40 * 86_400)));
        assert!(evaluate(&c, &r, None, NOW).is_none());
        r.paid_until = Some(NOW.plus(Duration::from_secs(29 * 86_400)));
        assert!(evaluate(&c, &r, None, NOW).is_some());
        r.paid_until = Some(secs_ago(10));
        assert!(evaluate(&c, &r, None, NOW).expect("ended").contains("ended"));
    }

    #[test]
    fn unsent_backlog_count_and_age() {
        let c = AlertCondition::UnsentBacklog { count_above: Some(10), older_than_secs: Some(86_400) };
        let r = reg();
        let a = |count: u32, first: Option<Timestamp>| RegisterActivity {
            telemetry: Some(TelemetryRecord {
                unsent_documents: Some(count),
                first_unsent_time: first,
                ..TelemetryRecord::default()
            }),
            ..RegisterActivity::default()
        };
        assert!(evaluate(&c, &r, None, NOW).is_none(), "no report yet");
        assert!(evaluate(&c, &r, Some(&a(10, None)), NOW).is_none());
        assert!(evaluate(&c, &r, Some(&a(11, None)), NOW).is_some());
        assert!(evaluate(&c, &r, Some(&a(1, Some(secs_ago(3600)))), NOW).is_none());
        assert!(evaluate(&c, &r, Some(&a(1, Some(secs_ago(90_000)))), NOW).is_some());
        assert!(
            evaluate(&c, &r, Some(&a(0, Some(secs_ago(90_000)))), NOW).is_none(),
            "a stale 1098 with nothing unsent"
        );
    }

    #[test]
    fn warnings_and_flk() {
        let r = reg();
        let a = RegisterActivity {
            telemetry: Some(TelemetryRecord { warnings: 0b0100, ..TelemetryRecord::default() }),
            recent_flk: vec![secs_ago(10), secs_ago(20), secs_ago(5000)],
            ..RegisterActivity::default()
        };
        let any = AlertCondition::FnWarnings { mask: 0 };
        assert!(evaluate(&any, &r, Some(&a), NOW).expect("1052").contains("1052"));
        let only_1050 = AlertCondition::FnWarnings { mask: 1 };
        assert!(evaluate(&only_1050, &r, Some(&a), NOW).is_none());
        let flk = |above| AlertCondition::FlkErrors { above, window_secs: 3600 };
        assert!(evaluate(&flk(1), &r, Some(&a), NOW).is_some(), "2 within the hour");
        assert!(evaluate(&flk(2), &r, Some(&a), NOW).is_none());
    }

    #[test]
    fn scopes() {
        let r = reg();
        assert!(in_scope(&AlertScope::All, &r));
        assert!(in_scope(&AlertScope::OwnerInn(r.owner_inn.clone()), &r));
        assert!(!in_scope(&AlertScope::OwnerInn(Inn::parse("7707083893").expect("inn")), &r));
        assert!(in_scope(&AlertScope::Group("shop-1".into()), &r));
        assert!(!in_scope(&AlertScope::Group("shop-2".into()), &r));
        assert!(in_scope(&AlertScope::Registers(vec![r.rnm.clone()]), &r));
        assert!(!in_scope(&AlertScope::Registers(vec![]), &r));
    }
}
