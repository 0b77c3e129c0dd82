//! Golden FNS JSON: documents of FFD 1.05, 1.1 and 1.2 built with the project's builders
//! (and one captured document), framed as a register sends them, decoded and rendered, and
//! compared with hand-checked files in `tests/golden/` — then read back from the file and
//! compared with the decoded document (the round trip where the JSON carries everything).
//!
//! `FFD_UPDATE_GOLDEN=1 cargo test -p ffd --test golden` rewrites the files; every rewrite
//! must be checked by hand against the rules in `ffd/src/json.rs` before it is committed.

use std::path::PathBuf;

use bytes::Bytes;
use ffd::ack::{AckFields, ResponseCode, SoftwareSigner, build_ack_container};
use ffd::build::{self, Correction, DriveReport, Identity, Item, Mark, Receipt, ReceiptExtras, operation, vat};
use ffd::container::{Container, MSG_FROM_OFD};
use ffd::document::{Document, Field, Value};
use ffd::json::{from_fns_json, to_fns_json_with_trailer};
use ffd::testkit::{SAMPLE_S1, identity};
use ffd::tlv::{FfdVersion, Fvln};
use ffd::{Limits, Message, inspect};

/// 2026-01-05T09:15:00 on the drive's clock.
const T: u32 = 1_767_604_500;

fn item(name: &str, price: u64, quantity: (u8, u64), vat: u8) -> Item {
    Item {
        name: name.to_owned(),
        price,
        quantity: Fvln { scale: quantity.0, mantissa: quantity.1 },
        vat,
        subject: 1,
        method: 4,
    }
}

fn receipt(operation: u8, items: Vec<Item>, cash: u64) -> Receipt {
    Receipt { operation, items, cash, shift: 12, number: 34, taxation: 1 }
}

fn drive(warnings: u8, unsent: u32) -> DriveReport {
    DriveReport {
        shift: 12,
        documents_in_shift: 57,
        receipts_in_shift: 51,
        unsent_documents: unsent,
        first_unsent_time: if unsent > 0 { T - 7_200 } else { 0 },
        first_unsent_fd: if unsent > 0 { 140 } else { 0 },
        warnings,
        key_resource_days: 389,
    }
}

fn with(ffd: FfdVersion) -> Identity {
    identity(ffd)
}

/// The golden set: (file name, document TLV as the builder makes it, FFD identity).
fn documents() -> Vec<(&'static str, Identity, Vec<u8>)> {
    use FfdVersion::{V1_1, V1_2, V1_05};
    let milk = item("Молоко 3,2% 1 л", 8_990, (3, 2_000), vat::VAT10);
    let coffee = item("Кофе молотый 250 г", 45_000, (0, 1), vat::VAT20);
    let fd = 150;
    let mut out = Vec::new();
    let mut push = |name: &'static str, ffd: FfdVersion, f: &dyn Fn(&Identity) -> Vec<u8>| {
        let id = with(ffd);
        let doc = f(&id);
        out.push((name, id, doc));
    };
    // FFD 1.05
    push("receipt_1_05", V1_05, &|id| {
        build::receipt(id, fd, T, &receipt(operation::INCOME, vec![milk.clone(), coffee.clone()], 50_000))
    });
    push("receipt_return_1_05", V1_05, &|id| {
        build::receipt(
            id,
            fd,
            T,
            &receipt(operation::INCOME_RETURN, vec![item("Батарейка AA", 12_000, (0, 2), vat::NONE)], 0),
        )
    });
    push("correction_receipt_1_05", V1_05, &|id| {
        let x = ReceiptExtras {
            correction: Some(Correction { kind: 1, date: T - 86_400 * 3, order: "ЕД-12/345".to_owned() }),
            ..ReceiptExtras::default()
        };
        build::receipt_with(id, fd, T, &receipt(operation::INCOME, vec![coffee.clone()], 45_000), &x)
    });
    push("open_shift_1_05", V1_05, &|id| build::open_shift(id, fd, T, 12));
    push("close_shift_1_05", V1_05, &|id| build::close_shift(id, fd, T, &drive(0, 0)));
    push("state_report_1_05", V1_05, &|id| build::state_report(id, fd, T, &drive(0b0001, 3)));
    push("registration_1_05", V1_05, &|id| build::registration(id, 1, T));
    push("registration_change_1_05", V1_05, &|id| build::registration_change(id, fd, T, 0b0101));
    // FFD 1.1
    push("receipt_1_1", V1_1, &|id| {
        build::receipt(
            id,
            fd,
            T,
            &receipt(operation::EXPENSE, vec![item("Лом чёрных металлов, кг", 1_550, (3, 12_500), vat::VAT0)], 0),
        )
    });
    push("close_shift_1_1", V1_1, &|id| build::close_shift(id, fd, T, &drive(0b0110, 5)));
    push("registration_change_1_1", V1_1, &|id| build::registration_change(id, fd, T, 0b1_0000_0001));
    push("fn_close_1_1", V1_1, &|id| build::close_archive(id, fd, T, &drive(0, 0)));
    // FFD 1.2
    push("receipt_marking_1_2", V1_2, &|id| {
        let x = ReceiptExtras {
            marks: vec![
                Mark { item: 0, tag: 1305, code: "0104605035006964215OoyE8qxeIOn>".to_owned() },
                Mark { item: 1, tag: 1303, code: "04627083415024".to_owned() },
                Mark { item: 2, tag: 1302, code: "4607001234567".to_owned() },
            ],
            industry: Some((
                0,
                ["030".into(), "21.11.2023".into(), "1944".into(), "UUID=42a6a883&Time=1785764594397".into()],
            )),
            ..ReceiptExtras::default()
        };
        let items = vec![
            item("Вода минеральная 1 л", 7_699, (0, 1), vat::VAT22),
            item("Пиво светлое 0,5 л", 15_180, (1, 5), vat::VAT22),
            item("Творог 5% 150 г", 4_199, (0, 1), vat::VAT10),
        ];
        build::receipt_with(id, fd, T, &receipt(operation::INCOME, items, 0), &x)
    });
    push("receipt_vat22_1_2", V1_2, &|id| {
        let items = vec![
            item("Порог-угол алюм. 0,9 м", 26_910, (0, 3), vat::VAT22),
            item("Доставка", 50_000, (0, 1), vat::VAT22_122),
        ];
        build::receipt(id, fd, T, &receipt(operation::INCOME, items, 0))
    });
    push("receipt_vat5_7_1_2", V1_2, &|id| {
        let items = vec![
            item("Услуга А", 10_500, (0, 1), vat::VAT5),
            item("Услуга Б", 10_700, (0, 1), vat::VAT7),
            item("Аванс А", 21_000, (0, 1), vat::VAT5_105),
            item("Аванс Б", 21_400, (0, 1), vat::VAT7_107),
            item("Товар 20%", 12_000, (0, 1), vat::VAT20),
        ];
        build::receipt(id, fd, T, &receipt(operation::INCOME, items, 20_000))
    });
    push("receipt_buyer_1_2", V1_2, &|id| {
        let x = ReceiptExtras {
            property: Some(("Номер заказа".to_owned(), "151939ПРИ".to_owned())),
            buyer_contact: Some("buyer@example.com".to_owned()),
            buyer: Some(("ООО \"Покупатель\"".to_owned(), "7707083893".to_owned())),
            internet: true,
            ..ReceiptExtras::default()
        };
        build::receipt_with(id, fd, T, &receipt(operation::INCOME, vec![coffee.clone()], 0), &x)
    });
    push("receipt_cashless_1_2", V1_2, &|id| {
        let x = ReceiptExtras {
            cashless: vec![(30_000, 1, "RRN 123456789012".to_owned()), (15_000, 3, "SBP A1B2C3".to_owned())],
            ..ReceiptExtras::default()
        };
        build::receipt_with(id, fd, T, &receipt(operation::INCOME, vec![coffee.clone()], 0), &x)
    });
    push("correction_receipt_1_2", V1_2, &|id| {
        let x = ReceiptExtras {
            correction: Some(Correction { kind: 0, date: T - 86_400, order: String::new() }),
            ..ReceiptExtras::default()
        };
        build::receipt_with(id, fd, T, &receipt(operation::INCOME_RETURN, vec![milk.clone()], 17_980), &x)
    });
    push("open_shift_1_2", V1_2, &|id| build::open_shift(id, fd, T, 12));
    push("close_shift_1_2", V1_2, &|id| build::close_shift(id, fd, T, &drive(0b1000, 2)));
    push("state_report_1_2", V1_2, &|id| build::state_report(id, fd, T, &drive(0, 0)));
    push("registration_1_2", V1_2, &|id| build::registration(id, 1, T));
    push("fn_close_1_2", V1_2, &|id| build::close_archive(id, fd, T, &drive(0, 1)));
    out
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Fields in tag order at every level (the order FNS JSON gives back), quantities with the
/// fewest digits: what the JSON carries.
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

fn check(name: &str, doc: &Document, trailer: &[u8]) {
    let json = to_fns_json_with_trailer(doc, trailer);
    let path = golden_dir().join(format!("{name}.json"));
    if std::env::var_os("FFD_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("mkdir");
        std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json") + "\n").expect("write");
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let expected: serde_json::Value = serde_json::from_str(&text).expect("golden file is JSON");
    assert_eq!(json, expected, "{name}: rendered JSON differs from {}", path.display());
    // and back: the hand-checked file reads into the same document
    let back = from_fns_json(&expected).unwrap_or_else(|e| panic!("{name}: {e}"));
    let want = Document { doc_type: doc.doc_type, fields: canonical(&doc.fields) };
    assert_eq!(back.document, want, "{name}: the golden JSON reads back into another document");
    assert_eq!(back.message_fiscal_sign, ffd::json::message_fiscal_sign(trailer), "{name}");
    assert_eq!(back.document.encode(), want.encode(), "{name}");
}

#[test]
fn builder_documents_render_as_the_golden_files() {
    let docs = documents();
    assert!(docs.len() >= 20);
    let limits = Limits::default();
    for (name, id, tlv) in docs {
        let (plain, _) = Document::decode(&Bytes::from(tlv.clone()), &limits).expect("builder output decodes");
        let stated = plain.get(1040).and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok()).expect("1040");
        let msg = build::message(&id, stated, &tlv);
        let msg = Message::parse(msg, &limits).expect("frames");
        let insp = inspect(&msg, &limits).expect("intact");
        let fd = insp.fd();
        assert_eq!(insp.verdict, Ok(()), "{name} (fd {fd}) is accepted");
        let (doc, trailer) = Document::decode(&insp.container.data(), &limits).expect("decodes");
        check(name, &doc, &trailer);
    }
}

#[test]
fn captured_s1_renders_as_its_golden_file() {
    let c = Container::parse(Bytes::from_static(&SAMPLE_S1[30..]), ffd::container::MSG_FROM_FN).expect("container");
    let (doc, trailer) = Document::decode(&c.data(), &Limits::default()).expect("decodes");
    check("sample_s1_registration_change_1_05", &doc, &trailer);
}

#[test]
fn operator_acknowledgment_renders_as_its_golden_file() {
    let fields = AckFields {
        fn_number: with(FfdVersion::V1_2).fn_number,
        fd: 150,
        code: ResponseCode::Accepted,
        time: T + 2,
        ofd_inn: AckFields::pad_inn("7704211201"),
        service1: [0x10, 0x09],
    };
    let container = build_ack_container(&fields, &SoftwareSigner::new(b"golden"));
    let c = Container::parse(Bytes::from(container), MSG_FROM_OFD).expect("ack container");
    let (doc, trailer) = Document::decode(&c.data(), &Limits::default()).expect("decodes");
    check("operator_ack_1_2", &doc, &trailer);
}
