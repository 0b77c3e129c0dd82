//! Grouping and time-zone placement on hand-made buckets; expected numbers written by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ffd::FnNumber;
use ffd::figures::Amounts;
use storage::model::{Line, ShiftSummary};
use storage::{Inn, Rnm, Timestamp};

use super::*;

fn register(inn: &str, serial: &str, fn_number: &str) -> Register {
    let inn = Inn::parse(inn).unwrap();
    Register {
        name: format!("till {serial}"),
        ..Register::new(
            Rnm::compose(5, &inn, serial),
            serial.into(),
            inn,
            FnNumber::parse_strict(fn_number).unwrap(),
            Timestamp::from_unix_secs(0),
        )
    }
}

fn sales(n: u64, total: u64) -> Totals {
    let mut t = Totals { documents: n, ..Totals::default() };
    t.kinds[0] = Line { count: n, amounts: Amounts { total, cash: total, ..Amounts::default() } };
    t
}

fn opaque(n: u64) -> Totals {
    Totals { documents: n, unreadable: n, ..Totals::default() }
}

fn date(s: &str) -> i32 {
    day_number(s.parse().unwrap()).unwrap()
}

fn bucket(r: &Register, bucket: Bucket, totals: Totals) -> BucketTotals {
    BucketTotals { fn_number: r.fn_number, bucket, totals }
}

/// Hours since the epoch of a UTC time.
fn utc_hour(rfc3339: &str) -> Bucket {
    Bucket::UtcHour(Timestamp::parse_rfc3339(rfc3339).unwrap().unix_secs() / 3600)
}

#[test]
fn days_and_dates() {
    assert_eq!(date("1970-01-01"), 0);
    assert_eq!(date("2026-11-23"), 20_780);
    assert_eq!(date_of(20_780).unwrap().to_string(), "2026-11-23");
    assert_eq!(GroupKey::of_day(Grouping::Week, date("2026-11-23")).unwrap().label(), "2026-W48");
    // 2027-01-01 is a Friday: ISO week 53 of 2026
    assert_eq!(GroupKey::of_day(Grouping::Week, date("2027-01-01")).unwrap().label(), "2026-W53");
    assert_eq!(GroupKey::of_day(Grouping::Month, date("2026-11-30")).unwrap().label(), "2026-11");
    for name in Grouping::NAMES {
        assert_eq!(Grouping::parse(name).unwrap().as_str(), name);
    }
    assert!(Grouping::parse("year").is_none());
}

#[test]
fn utc_hours_fall_on_the_registers_local_day() {
    let moscow = TimeZone::get("Europe/Moscow").unwrap(); // UTC+3
    let vladivostok = TimeZone::get("Asia/Vladivostok").unwrap(); // UTC+10
    // 2026-11-23 20:00 UTC is 23:00 in Moscow, 06:00 on the 24th in Vladivostok
    let h = utc_hour("2026-11-23T20:00:00Z");
    assert_eq!(local_day(h, &moscow), Some(date("2026-11-23")));
    assert_eq!(local_day(h, &vladivostok), Some(date("2026-11-24")));
    // 21:00 UTC is midnight in Moscow: the next day
    assert_eq!(local_day(utc_hour("2026-11-23T21:00:00Z"), &moscow), Some(date("2026-11-24")));
    // 13:00 UTC is 23:00 in Vladivostok, 14:00 UTC its midnight
    assert_eq!(local_day(utc_hour("2026-11-23T13:00:00Z"), &vladivostok), Some(date("2026-11-23")));
    assert_eq!(local_day(utc_hour("2026-11-23T14:00:00Z"), &vladivostok), Some(date("2026-11-24")));
    // day buckets are local days already, whatever the zone
    assert_eq!(local_day(Bucket::Day(7), &vladivostok), Some(7));
}

#[test]
fn by_day_keeps_the_range_and_places_opaque_hours() {
    let msk = register("7702203276", "000000000001", "9999078900000001");
    let vvo = register("7702203276", "000000000002", "9999078900000002");
    let (tz_msk, tz_vvo) = (TimeZone::get("Europe/Moscow").unwrap(), TimeZone::get("Asia/Vladivostok").unwrap());
    let (d23, d24) = (date("2026-11-23"), date("2026-11-24"));
    let mut acc = Accumulator::new(Grouping::Day, d23..=d24);
    assert!(acc.add(&msk, &tz_msk, &bucket(&msk, Bucket::Day(d23), sales(2, 1_000))));
    assert!(acc.add(&msk, &tz_msk, &bucket(&msk, Bucket::Day(d24), sales(1, 500))));
    assert!(!acc.add(&msk, &tz_msk, &bucket(&msk, Bucket::Day(d24 + 1), sales(9, 9))), "after the range");
    // received 2026-11-22 20:00 UTC: the 22nd in Moscow (left out), the 23rd in Vladivostok
    let late = utc_hour("2026-11-22T20:00:00Z");
    assert!(!acc.add(&msk, &tz_msk, &bucket(&msk, late, opaque(4))));
    assert!(acc.add(&vvo, &tz_vvo, &bucket(&vvo, late, opaque(3))));
    // received 2026-11-24 15:00 UTC: the 24th in Moscow, the 25th in Vladivostok (left out)
    let h = utc_hour("2026-11-24T15:00:00Z");
    assert!(acc.add(&msk, &tz_msk, &bucket(&msk, h, opaque(1))));
    assert!(!acc.add(&vvo, &tz_vvo, &bucket(&vvo, h, opaque(5))));
    let rows: Vec<&Row> = acc.rows().collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].key.label(), "2026-11-23");
    assert_eq!((rows[0].totals.documents, rows[0].totals.unreadable, rows[0].totals.receipts()), (5, 3, 2));
    assert_eq!(rows[0].totals.kinds[0].amounts.total, 1_000);
    assert_eq!(rows[1].key.label(), "2026-11-24");
    assert_eq!((rows[1].totals.documents, rows[1].totals.unreadable, rows[1].totals.receipts()), (2, 1, 1));
    assert_eq!(acc.total().documents, 7);
    assert_eq!(acc.total().kinds[0].amounts.total, 1_500);
}

#[test]
fn empty_periods_get_rows_and_weeks_and_months_add_days() {
    let r = register("7702203276", "000000000001", "9999078900000001");
    let tz = TimeZone::get("Europe/Moscow").unwrap();
    // Sunday 2026-11-29 and Monday 2026-11-30 are in different weeks, the same month
    let range = date("2026-11-28")..=date("2026-12-01");
    let mut weeks = Accumulator::new(Grouping::Week, range.clone());
    let mut months = Accumulator::new(Grouping::Month, range.clone());
    let mut days = Accumulator::new(Grouping::Day, range);
    for acc in [&mut weeks, &mut months, &mut days] {
        acc.add(&r, &tz, &bucket(&r, Bucket::Day(date("2026-11-29")), sales(1, 100)));
        acc.add(&r, &tz, &bucket(&r, Bucket::Day(date("2026-11-30")), sales(2, 250)));
        acc.add(&r, &tz, &bucket(&r, Bucket::Day(date("2026-12-01")), sales(4, 1_000)));
    }
    let got = |acc: &Accumulator| -> Vec<(String, u64, u64)> {
        acc.rows().map(|r| (r.key.label(), r.totals.receipts(), r.totals.kinds[0].amounts.total)).collect()
    };
    assert_eq!(
        got(&days),
        vec![
            ("2026-11-28".into(), 0, 0),
            ("2026-11-29".into(), 1, 100),
            ("2026-11-30".into(), 2, 250),
            ("2026-12-01".into(), 4, 1_000)
        ]
    );
    assert_eq!(got(&weeks), vec![("2026-W48".into(), 1, 100), ("2026-W49".into(), 6, 1_250)]);
    assert_eq!(got(&months), vec![("2026-11".into(), 3, 350), ("2026-12".into(), 4, 1_000)]);
}

#[test]
fn by_register_and_owner() {
    let a = register("7702203276", "000000000001", "9999078900000001");
    let b = register("7702203276", "000000000002", "9999078900000002");
    let c = register("7707083893", "000000000003", "9999078900000003");
    let tz = TimeZone::get("Europe/Moscow").unwrap();
    let d = date("2026-11-23");
    let mut regs = Accumulator::new(Grouping::Register, d..=d);
    let mut owners = Accumulator::new(Grouping::Owner, d..=d);
    for acc in [&mut regs, &mut owners] {
        for r in [&a, &b, &c] {
            acc.register(r);
        }
        acc.add(&a, &tz, &bucket(&a, Bucket::Day(d), sales(1, 100)));
        acc.add(&b, &tz, &bucket(&b, Bucket::Day(d), sales(2, 200)));
    }
    let rows: Vec<(String, String, u64)> =
        regs.rows().map(|r| (r.key.label(), r.name.clone(), r.totals.kinds[0].amounts.total)).collect();
    assert_eq!(
        rows,
        vec![
            (a.rnm.to_string(), "till 000000000001".into(), 100),
            (b.rnm.to_string(), "till 000000000002".into(), 200),
            (c.rnm.to_string(), "till 000000000003".into(), 0),
        ]
    );
    let rows: Vec<(String, u64)> = owners.rows().map(|r| (r.key.label(), r.totals.kinds[0].amounts.total)).collect();
    assert_eq!(rows, vec![("7702203276".into(), 300), ("7707083893".into(), 0)]);
    assert_eq!(regs.take_rows().len(), 3);
    assert_eq!(regs.rows().count(), 0);
}

#[test]
fn shifts_are_dated_by_their_open_report_and_kept_whole() {
    let r = register("7702203276", "000000000001", "9999078900000001");
    let d23 = date("2026-11-23");
    let local = |s: &str| s.parse::<jiff::civil::DateTime>().unwrap();
    let secs = |s: &str| TimeZone::UTC.to_timestamp(local(s)).unwrap().as_second();
    let crossing = ShiftSummary {
        shift: 7,
        opened_at: Some(secs("2026-11-23T23:00:00")),
        closed_at: Some(secs("2026-11-24T01:00:00")),
        received: sales(3, 300),
        ..ShiftSummary::default()
    };
    let next = ShiftSummary { shift: 8, opened_at: Some(secs("2026-11-24T09:00:00")), ..ShiftSummary::default() };
    let undated = ShiftSummary { shift: 9, received: sales(1, 1), ..ShiftSummary::default() };
    let mut acc = Accumulator::new(Grouping::Shift, d23..=d23);
    let f = r.fn_number.to_string();
    assert!(acc.add_shift(&r, &f, &crossing));
    assert!(!acc.add_shift(&r, &f, &next));
    assert!(!acc.add_shift(&r, &f, &undated));
    assert_eq!(acc.undated_shifts, 1);
    let rows: Vec<&Row> = acc.rows().collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].key.label(), "9999078900000001/7");
    assert_eq!(rows[0].totals.receipts(), 3);
}

#[test]
fn csv_is_the_full_flat_matrix() {
    let header = render::csv_header();
    let cols: Vec<&str> = header.trim_end().split(',').collect();
    // 7 leading, 2 × 4 kinds × (count + 18 sums), 18 revenue, average
    assert_eq!(cols.len(), 7 + 2 * 4 * 19 + 18 + 1);
    assert!(cols.contains(&"sale_vat11") && cols.contains(&"correction_expense_return_vat12"));
    let mut t = sales(2, 1_001);
    t.kinds[1] = Line { count: 1, amounts: Amounts { total: 1, cashless: 1, ..Amounts::default() } };
    let line = render::csv_row("2026-11-23", None, "a, \"b\"", &t);
    let v: Vec<&str> = line.trim_end().split(',').collect();
    assert_eq!(v[0], "2026-11-23");
    assert_eq!(line.matches("\"a, \"\"b\"\"\"").count(), 1, "{line}");
    // revenue total 1001 - 1 = 1000, average sale round(1001 / 2) = 501
    let revenue_total = cols.iter().position(|c| *c == "revenue_total").unwrap();
    let row = render::csv_row("x", None, "", &t);
    let v: Vec<&str> = row.trim_end().split(',').collect();
    assert_eq!(v.len(), cols.len());
    assert_eq!(v[revenue_total], "1000");
    assert_eq!(*v.last().unwrap(), "501");
    let j = render::totals_json(&t);
    assert_eq!(j["revenue"]["total"], 1000);
    assert_eq!(j["revenue"]["cashless"], -1);
    assert_eq!(j["kinds"]["sale"]["vat"]["12"], 0);
    assert_eq!(j["average_sale"], 501);
}
