//! For random documents the builders make — every form they build, FFD 1.0 to 1.2, with
//! the optional FFD 1.2 requisites and every VAT code — the validator accepts the message,
//! and bytes → document → FNS JSON → document → bytes is the identity where the JSON
//! carries everything: requisites come back in tag order (JSON objects have no order) and
//! quantities with their significant digits, so both sides are compared in that canonical
//! form, value for value and byte for byte.

use bytes::Bytes;
use ffd::build::{self, Correction, DriveReport, Identity, Item, Mark, Receipt, ReceiptExtras};
use ffd::document::{Document, Field, Value};
use ffd::json::{from_fns_json, message_fiscal_sign, to_fns_json_with_trailer};
use ffd::tags;
use ffd::testkit::identity;
use ffd::tlv::{FfdVersion, Fvln};
use ffd::{Limits, Message, inspect};
use proptest::collection::vec;
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Text of up to `max` characters from CP866 letters (Cyrillic, Latin, digits, signs).
fn text(max: usize) -> impl Strategy<Value = String> {
    let alphabet: Vec<char> =
        "АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдежзийклмнопрстуфхцчшщъыьэюяЁёABCXYZabcxyz0123456789 .,%№\"-/()"
            .chars()
            .collect();
    vec(prop::sample::select(alphabet), 1..=max).prop_map(|c| c.into_iter().collect())
}

fn version() -> impl Strategy<Value = FfdVersion> {
    prop::sample::select(vec![FfdVersion::V1_0, FfdVersion::V1_05, FfdVersion::V1_1, FfdVersion::V1_2])
}

fn item() -> impl Strategy<Value = Item> {
    (text(40), 1u64..5_000_000, (0u8..4, 1u64..100_000), 1u8..=12, prop::sample::select(vec![1u8, 4, 33]), 1u8..=7)
        .prop_map(|(name, price, (scale, mantissa), vat, subject, method)| Item {
            name,
            price,
            quantity: Fvln { scale, mantissa },
            vat,
            subject,
            method,
        })
}

fn receipt() -> impl Strategy<Value = Receipt> {
    (1u8..=4, vec(item(), 1..6), any::<u32>(), any::<u32>(), 1u8..=32, 0u64..1_000_000).prop_map(
        |(operation, items, shift, number, taxation, cash)| Receipt { operation, items, cash, shift, number, taxation },
    )
}

fn mark(items: usize) -> impl Strategy<Value = Mark> {
    let code_tags: Vec<u16> = (1300..=1309).chain(1320..=1325).collect();
    (0..items, prop::sample::select(code_tags), "[0-9A-Za-z>!*]{1,8}").prop_map(|(item, tag, code)| {
        let max = usize::from(tags::lookup(tag).map_or(8, |t| t.max_len));
        let code = if tag == 1305 { format!("0104605035006964{}", code) } else { code };
        Mark { item, tag, code: code.chars().take(max).collect() }
    })
}

fn extras(items: usize) -> impl Strategy<Value = ReceiptExtras> {
    (
        prop::option::of((0u8..=1, any::<u32>(), text(20))),
        vec(mark(items), 0..3),
        prop::option::of((text(30), text(60))),
        prop::option::of(text(30)),
        prop::option::of((text(40), "[0-9]{10,12}")),
        vec((1u64..1_000_000, 1u8..=3, text(30)), 0..3),
        any::<bool>(),
    )
        .prop_map(|(correction, marks, property, buyer_contact, buyer, cashless, internet)| ReceiptExtras {
            correction: correction.map(|(kind, date, order)| Correction { kind, date, order }),
            marks,
            property,
            buyer_contact,
            buyer,
            industry: None,
            cashless,
            internet,
        })
}

fn drive() -> impl Strategy<Value = DriveReport> {
    (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), 0u8..16, any::<u16>())
        .prop_map(|(shift, d, r, unsent, t, f, warnings, key)| DriveReport {
            shift,
            documents_in_shift: d,
            receipts_in_shift: r,
            unsent_documents: unsent,
            first_unsent_time: t,
            first_unsent_fd: f,
            warnings,
            key_resource_days: key,
        })
}

#[derive(Debug, Clone)]
enum Form {
    Receipt(Box<(Receipt, ReceiptExtras)>),
    OpenShift(u32),
    CloseShift(DriveReport),
    State(DriveReport),
    Registration,
    RegistrationChange(u32),
    FnClose(DriveReport),
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![
        5 => receipt().prop_flat_map(|r| { let n = r.items.len(); (Just(r), extras(n)) }).prop_map(|(r, x)| Form::Receipt(Box::new((r, x)))),
        1 => any::<u32>().prop_map(Form::OpenShift),
        1 => drive().prop_map(Form::CloseShift),
        1 => drive().prop_map(Form::State),
        1 => Just(Form::Registration),
        1 => (1u32..256).prop_map(Form::RegistrationChange),
        1 => drive().prop_map(Form::FnClose),
    ]
}

fn build_document(id: &Identity, fd: u32, time: u32, form: &Form) -> Vec<u8> {
    match form {
        Form::Receipt(rx) => build::receipt_with(id, fd, time, &rx.0, &rx.1),
        Form::OpenShift(shift) => build::open_shift(id, fd, time, *shift),
        Form::CloseShift(d) => build::close_shift(id, fd, time, d),
        Form::State(d) => build::state_report(id, fd, time, d),
        Form::Registration => build::registration(id, fd, time),
        Form::RegistrationChange(reasons) => build::registration_change(id, fd, time, *reasons),
        Form::FnClose(d) => build::close_archive(id, fd, time, d),
    }
}

/// What the JSON carries: tag order at every level, quantities with the fewest digits.
fn canonical(fields: &[Field]) -> Vec<Field> {
    let mut out: Vec<Field> = fields
        .iter()
        .map(|f| Field {
            tag: f.tag,
            value: match &f.value {
                Value::Stlv(children) => Value::Stlv(canonical(children)),
                Value::Fvln(v) => {
                    let (mut scale, mut mantissa) = (v.scale, v.mantissa);
                    while scale > 0 && mantissa % 10 == 0 && mantissa != 0 {
                        scale -= 1;
                        mantissa /= 10;
                    }
                    Value::Fvln(Fvln { scale: if mantissa == 0 { 0 } else { scale }, mantissa })
                }
                other => other.clone(),
            },
        })
        .collect();
    out.sort_by_key(|f| f.tag);
    out
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn builder_documents_are_accepted_and_survive_fns_json(
        ffd in version(),
        form in form(),
        fd in 1u32..0x00FF_FFFF,
        time in 946_684_800u32..4_102_444_800,
    ) {
        let id = identity(ffd);
        let tlv = build_document(&id, fd, time, &form);
        let limits = Limits::default();
        let msg = Message::parse(build::message(&id, fd, &tlv), &limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let insp = inspect(&msg, &limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // the validator accepts everything the builders make, for every version
        prop_assert_eq!(&insp.verdict, &Ok(()), "FFD {} {:?}", ffd, form);
        let summary = insp.summary().ok_or_else(|| TestCaseError::fail("opaque"))?;
        prop_assert!(summary.unknown_tags.is_empty());

        let (doc, trailer) = Document::decode(&insp.container.data(), &limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let json = to_fns_json_with_trailer(&doc, &trailer);
        let back = from_fns_json(&json).map_err(|e| TestCaseError::fail(format!("{e}\n{json}")))?;
        let want = Document { doc_type: doc.doc_type, fields: canonical(&doc.fields) };
        prop_assert_eq!(&back.document, &want, "{}", json);
        prop_assert_eq!(back.document.encode(), want.encode());
        prop_assert_eq!(back.message_fiscal_sign, message_fiscal_sign(&trailer));
        // a document already in canonical order survives byte for byte
        let canonical_bytes = Bytes::from(want.encode());
        let (again, _) = Document::decode(&canonical_bytes, &limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let json_again = to_fns_json_with_trailer(&again, &trailer);
        prop_assert_eq!(json_again, json);
    }
}
