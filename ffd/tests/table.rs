//! The tag table against its own rules and against the table it replaced (issue 16): a
//! value the former table accepted is still accepted — by the row's current meaning, or by
//! the withdrawn meaning of a reassigned tag.

use ffd::tags::{self, TagClass, ValueType};
use ffd::vat;
use ffd::{FfdVersion, json};

/// `tag<TAB>type<TAB>max_len` of the table at commit 690fec7.
const BEFORE: &str = include_str!("data/tags_before_16.tsv");

fn ty(name: &str) -> ValueType {
    match name {
        "Byte" => ValueType::Byte,
        "U16" => ValueType::U16,
        "U32" => ValueType::U32,
        "Vln" => ValueType::Vln,
        "Fvln" => ValueType::Fvln,
        "UnixTime" => ValueType::UnixTime,
        "Str" => ValueType::Str,
        "Bytes" => ValueType::Bytes,
        "Stlv" => ValueType::Stlv,
        other => panic!("unknown type {other}"),
    }
}

/// Every value `(old_ty, old_max)` allows is allowed by `(new_ty, new_max)`.
fn covers(new_ty: ValueType, new_max: u16, old_ty: ValueType, old_max: u16) -> bool {
    new_max >= old_max && (new_ty == old_ty || matches!((old_ty, new_ty), (ValueType::U16, ValueType::U32)))
}

#[test]
fn nothing_the_former_table_accepted_is_refused_now() {
    let mut rows = 0;
    for line in BEFORE.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let tag: u16 = cols[0].parse().expect("tag");
        let (old_ty, old_max) = (ty(cols[1]), cols[2].parse::<u16>().expect("max"));
        let now = tags::lookup(tag).unwrap_or_else(|| panic!("tag {tag} left the table"));
        let by_current = covers(now.ty, now.max_len, old_ty, old_max);
        let by_legacy = tags::legacy(tag).is_some_and(|l| covers(l.ty, l.max_len, old_ty, old_max));
        assert!(
            by_current || by_legacy,
            "tag {tag}: was {old_ty:?} ≤ {old_max}, now {:?} ≤ {} without a legacy meaning that covers it",
            now.ty,
            now.max_len
        );
        rows += 1;
    }
    assert_eq!(rows, 266, "the former table had 266 rows");
    assert!(tags::all().len() > rows);
}

#[test]
fn reassigned_tags_have_their_current_meaning_and_keep_the_old_one() {
    let expect = [
        (1115, ValueType::Stlv, "amountsReceiptNds"),
        (1119, ValueType::Stlv, "amountsNds"),
        (1120, ValueType::Vln, "ndsSum"),
        (1125, ValueType::Byte, "internetPayment"),
        (1082, ValueType::Vln, "ecashSum"),
    ];
    for (tag, t, name) in expect {
        let info = tags::lookup(tag).expect("in the table");
        assert_eq!((info.ty, info.json, info.deprecated), (t, Some(name), false), "{tag}");
        assert_eq!(info.since, FfdVersion::V1_2, "{tag}");
        assert!(tags::legacy(tag).is_some(), "{tag} keeps its withdrawn meaning");
    }
    assert!(tags::lookup(1119).is_some_and(|t| t.repeatable), "one 1119 per rate");
}

#[test]
fn new_rows_are_described() {
    for tag in [1147, 1148, 1149, 1150, 1151, 1152, 1153, 1154, 1155, 1177, 1184, 1234, 1235, 1236, 1237, 1238] {
        let info = tags::lookup(tag).unwrap_or_else(|| panic!("{tag} missing"));
        assert!(info.max_len > 0 && !info.name.is_empty(), "{tag}");
    }
    assert_eq!(tags::lookup(1084).map(|t| (t.max_len, t.repeatable)), Some((328, false)));
    assert_eq!(tags::lookup(2107).map(|t| t.repeatable), Some(false));
    for counter_sum in [1136, 1138, 1139, 1140, 1141, 1142, 1143, 1183, 1201, 1218, 1219, 1220] {
        assert_eq!(tags::lookup(counter_sum).map(|t| t.max_len), Some(8), "{counter_sum}");
    }
}

#[test]
fn json_names_resolve_back_to_their_tag_in_context() {
    for t in tags::all() {
        let Some(name) = t.json else { continue };
        // some parent where this tag is the one the name means
        let parents: Vec<u16> = [1u16, 3, 5, 11, 21, 31, 1059, 1119, 1129, 1163, 1235, 1270]
            .into_iter()
            .filter(|p| tags::by_json_name(name, *p) == Some(t.tag))
            .collect();
        assert!(!parents.is_empty(), "{} ({name}) is never what its name resolves to", t.tag);
    }
    assert_eq!(tags::by_json_name("totalSum", 3), Some(1020));
    assert_eq!(tags::by_json_name("totalSum", 1129), Some(1201));
    assert_eq!(tags::by_json_name("ndsSum", 1059), Some(1200));
    assert_eq!(tags::by_json_name("ndsSum", 1119), Some(1120));
    assert_eq!(tags::by_json_name("dateTime", 3), Some(1012));
    assert_eq!(tags::by_json_name("dateTime", 1270), Some(1273));
    assert_eq!(tags::by_json_name("9999", 3), Some(9999));
}

#[test]
fn tag_buckets_are_bounded() {
    let labels: std::collections::BTreeSet<&str> = (0..=u16::MAX).map(tags::tag_bucket).collect();
    assert_eq!(labels.len(), 21);
    assert_eq!(tags::tag_bucket(1234), "1200-1299");
    assert_eq!(tags::tag_bucket(2299), "2200-2299");
    assert_eq!(tags::tag_bucket(999), "other");
    assert_eq!(TagClass::of(2050), TagClass::Marking);
    assert_eq!(TagClass::of(9999), TagClass::Other);
}

#[test]
fn every_vat_code_in_force_is_named() {
    let names: Vec<(u8, &str)> = vat::RATES.iter().map(|r| (r.code, r.name)).collect();
    assert_eq!(names.len(), 12);
    assert_eq!(names[10], (11, "НДС 22%"));
    assert_eq!(names[11], (12, "НДС расч. 22/122"));
    // codes 1–6 sum into their flat receipt tags, the others only through 1115
    for r in vat::RATES {
        assert_eq!(r.receipt_tag.is_some(), r.code <= 6, "{}", r.code);
    }
    assert_eq!(json::parse_local_date_time("2026-01-01T00:00:00"), Some(1_767_225_600));
}
