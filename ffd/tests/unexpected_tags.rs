//! What the validator does with requisites it does not expect (issue 16): a tag newer than
//! the document's FFD version, a reassigned tag in its withdrawn meaning, and a tag the
//! table does not know are all accepted — the drive signed the document — and reported in
//! the summary so that the gateway can count them; FLK failures name their tag.

use bytes::Bytes;
use ffd::build;
use ffd::document::{Document, Value};
use ffd::json::{from_fns_json, to_fns_json};
use ffd::testkit::{identity, typical_receipt};
use ffd::tlv::{FfdVersion, TlvWriter};
use ffd::{FfdError, FlkError, Inspection, Limits, Message, inspect};

/// A receipt of `ffd` with `extra` appended to the document's own requisites.
fn receipt_with_extra(ffd: FfdVersion, extra: impl Fn(&mut TlvWriter)) -> (Bytes, Inspection) {
    let id = identity(ffd);
    let plain = build::receipt(&id, 42, 1_767_604_500, &typical_receipt(2));
    // reopen the document TLV: drop its 4-byte header, append, close again
    let mut w = TlvWriter::new();
    w.begin(3).extend(&plain[4..]);
    extra(&mut w);
    w.end();
    let tlv = w.finish();
    let limits = Limits::default();
    let msg = Message::parse(build::message(&id, 42, &tlv), &limits).expect("frames");
    let insp = inspect(&msg, &limits).expect("intact");
    (Bytes::from(tlv), insp)
}

fn receipt_of(tlv: &Bytes) -> Document {
    Document::decode(tlv, &Limits::default()).expect("decodes").0
}

#[test]
fn a_1_2_tag_in_a_1_05_document_is_accepted_and_reported() {
    let (_, insp) = receipt_with_extra(FfdVersion::V1_05, |w| {
        w.byte(1125, 1);
    });
    assert_eq!(insp.verdict, Ok(()));
    let s = insp.summary().expect("plain");
    assert!(s.newer_tags, "1125 is an FFD 1.2 requisite, the document says 1.05");
    let (_, insp) = receipt_with_extra(FfdVersion::V1_2, |w| {
        w.byte(1125, 1);
    });
    assert!(!insp.summary().expect("plain").newer_tags);
}

#[test]
fn a_reassigned_tag_in_its_withdrawn_meaning_is_accepted_and_kept_verbatim() {
    // 1115 was "адрес сайта для проверки ФП", a string; it is an STLV now
    let site = b"www.nalog.gov.ru/check";
    let (tlv, insp) = receipt_with_extra(FfdVersion::V1_05, |w| {
        w.raw(1115, site);
    });
    assert_eq!(insp.verdict, Ok(()), "an older register's 1115 is not a format error");
    let doc = receipt_of(&tlv);
    assert_eq!(doc.get(1115), Some(&Value::Raw(Bytes::from_static(site))));
    let json = to_fns_json(&doc);
    assert_eq!(json["receipt"]["1115"], serde_json::json!(hex::encode(site)), "written verbatim under its number");
    assert!(json["receipt"].get("amountsReceiptNds").is_none());
    let back = from_fns_json(&json).expect("reads back");
    assert_eq!(back.document.get(1115), doc.get(1115));
    // a value that fits neither meaning is a format error that names the tag
    let (_, insp) = receipt_with_extra(FfdVersion::V1_05, |w| {
        w.raw(1125, &[b'x'; 300]);
    });
    match insp.verdict {
        Err(FfdError::Flk(e)) => assert_eq!(e.tag(), Some(1125), "{e}"),
        other => panic!("expected code 14, got {other:?}"),
    }
}

#[test]
fn unknown_tags_are_accepted_and_counted() {
    let (tlv, insp) = receipt_with_extra(FfdVersion::V1_2, |w| {
        w.raw(2050, b"x").raw(2050, b"y").raw(9_999, &[1, 2, 3]).begin(1084).raw(2299, b"").end();
    });
    assert_eq!(insp.verdict, Ok(()));
    let unknown = insp.summary().expect("plain").unknown_tags;
    assert_eq!(unknown.count(), 4);
    assert_eq!(unknown.tags(), &[2050, 9_999, 2299]);
    let json = to_fns_json(&receipt_of(&tlv));
    assert_eq!(json["receipt"]["2050"], serde_json::json!(["78", "79"]));
}

#[test]
fn format_errors_name_their_tag() {
    let (_, insp) = receipt_with_extra(FfdVersion::V1_2, |w| {
        w.raw(1021, &[b'A'; 65]);
    });
    let Err(FfdError::Flk(e)) = &insp.verdict else { panic!("{:?}", insp.verdict) };
    assert_eq!(e.tag(), Some(1021));
    assert!(e.to_string().contains("1021"), "{e}");
    // a cut-short requisite names the tag whose header could still be read
    let cut = FlkError::Truncated { offset: 12, tag: Some(1059) };
    assert_eq!(cut.to_string(), "truncated requisite 1059 at offset 12");
}
