//! The byte samples of `shared/reference/samples.md`, decoded and rebuilt.

use bytes::Bytes;
use ffd::ack::{AckFields, AckSignature, AckSigner, ResponseCode, build_ack_container, wrap_reply};
use ffd::container::{Container, MSG_FROM_FN, MSG_FROM_OFD};
use ffd::crc::{container_crc, crc16};
use ffd::document::{Document, Value};
use ffd::session::{CrcMode, Flags, SessionHeader};
use ffd::{AckView, Body, FfdVersion, FnNumber, Limits, Message, inspect};

const S1: &[u8] = include_bytes!("samples/S1.bin");
const S2A: &[u8] = include_bytes!("samples/S2a.bin");
const S2B: &[u8] = include_bytes!("samples/S2b.bin");
const S4: &[u8] = include_bytes!("samples/S4.bin");
const S5: &[u8] = include_bytes!("samples/S5.bin");
const S6: &[u8] = include_bytes!("samples/S6.bin");

fn text(doc: &Document, tag: u16) -> String {
    doc.get(tag).and_then(Value::text).unwrap_or_else(|| panic!("tag {tag} missing or not text"))
}

fn int(doc: &Document, tag: u16) -> u64 {
    doc.get(tag).and_then(Value::as_u64).unwrap_or_else(|| panic!("tag {tag} missing or not an integer"))
}

#[test]
fn s1_session_header() {
    let h = SessionHeader::parse(S1).expect("valid header");
    assert_eq!(h.p_version, [0x00, 0x01]);
    assert_eq!(&h.fn_number, b"9999078900005488");
    assert_eq!(h.body_len, 436);
    assert_eq!(h.flags, Flags(0x0014));
    assert_eq!(h.flags.crc_mode(), Some(CrcMode::None));
    assert!(h.flags.has_container());
    assert_eq!(h.crc, 0);
    assert_eq!(h.ffd_hint(), Some(FfdVersion::V1_0), "P-version 00 01 is the legacy 1.0 code");
    assert_eq!(h.to_bytes(), S1[..30]);
}

#[test]
fn s1_container_and_document() {
    let c = Container::parse(Bytes::from_static(&S1[30..]), MSG_FROM_FN).expect("valid container");
    let h = c.header();
    assert_eq!((h.len, h.crc, h.msg_type, h.doc_type, h.version), (436, 0x7825, 0xA5, 11, 1));
    assert_eq!(h.service1, [0x10, 0x09]);
    assert_eq!(h.fn_number, FnNumber::parse_strict("9999078900005488").expect("fn"));
    assert_eq!(h.fd, 1);
    assert_eq!(h.declared_tlv_len(), 394);

    let (doc, trailer) = Document::decode(&c.data(), &Limits::default()).expect("decodes");
    assert_eq!(doc.doc_type, 11);
    assert_eq!(doc.fields.len(), 29);
    assert_eq!(text(&doc, 1041), "9999078900005488");
    assert_eq!(text(&doc, 1037), "0000000005008570");
    assert_eq!(text(&doc, 1018), "7702203276");
    assert_eq!(int(&doc, 1040), 1);
    assert_eq!(int(&doc, 1012), 1_488_541_080);
    assert_eq!(int(&doc, 1062), 6);
    assert_eq!(int(&doc, 1101), 1);
    assert_eq!(int(&doc, 1209), 2);
    assert_eq!(int(&doc, 1189), 2);
    assert_eq!(text(&doc, 1013), "000000000002");
    assert_eq!(text(&doc, 1048), "ООО РАПКАТ-центр");
    assert_eq!(text(&doc, 1009), "111141 г.Москва, ул. Кусковская д.20А офис В-202");
    assert_eq!(text(&doc, 1017), "7704358518");
    assert_eq!(text(&doc, 1060), "nalog.ru");
    assert_eq!(text(&doc, 1117), "example@example.com");
    assert_eq!(text(&doc, 1021), "Шеннон К.");
    assert_eq!(text(&doc, 1046), "OOO TAXCOM");
    assert_eq!(text(&doc, 1188), "2.0");
    assert_eq!(text(&doc, 1187), "111141 г.Москва, ул. Кусковская\r\nд.20А офис В-202");
    assert_eq!(text(&doc, 1203), "771234567890");
    assert_eq!(int(&doc, 1207), 1);
    let fs = doc.get(1077).and_then(Value::bytes).expect("1077");
    assert_eq!(&fs[..], &[0x21, 0x04, 0xaa, 0x10, 0x75, 0x41]);
    assert_eq!(&trailer[..], &[0x81, 0x06, 0xa5, 0x5a, 0xe1, 0x0c, 0x4d, 0x75, 0x00, 0x00]);

    // the encoder reproduces the document TLV byte for byte (wire order is kept)
    assert_eq!(doc.encode(), S1[30 + 32..30 + 32 + 394]);
}

#[test]
fn s1_inspects_as_accepted_with_summary() {
    let msg = Message::parse(Bytes::from_static(S1), &Limits::default()).expect("frames");
    let insp = inspect(&msg, &Limits::default()).expect("intact");
    assert_eq!(insp.verdict, Ok(()));
    assert_eq!(insp.response_code(), ResponseCode::Accepted);
    assert_eq!(insp.fd(), 1);
    let Body::Plain(s) = insp.body else { panic!("plaintext expected") };
    assert_eq!(s.ffd_version, Some(FfdVersion::V1_05));
    assert_eq!(s.doc_time, Some(1_488_541_080));
    assert_eq!(s.fiscal_sign, Some(2_853_205_313));
    assert_eq!(s.requisites, 29);
    assert!(!s.encrypted_flag);
    assert_eq!(s.rnm.as_ref().map(|r| &r[..16]), Some(&b"0000000005008570"[..]));
}

#[test]
fn s1_fns_json() {
    let c = Container::parse(Bytes::from_static(&S1[30..]), MSG_FROM_FN).expect("container");
    let (doc, trailer) = Document::decode(&c.data(), &Limits::default()).expect("decodes");
    let json = ffd::json::to_fns_json_with_trailer(&doc, &trailer);
    let body = &json["fiscalReportCorrection"];
    assert_eq!(body["code"], 11);
    assert_eq!(body["fiscalDriveNumber"], "9999078900005488");
    assert_eq!(body["fiscalDocumentNumber"], 1);
    // the drive's local wall-clock time, as the FNS writes it
    assert_eq!(body["dateTime"], "2017-03-03T11:38:00");
    assert_eq!(body["fiscalSign"], 2_853_205_313u64);
    // fixed-width fields as sent, padding kept (the FNS keeps it)
    assert_eq!(body["userInn"], "7702203276  ");
    assert_eq!(body["kktRegId"], "0000000005008570    ");
    // the trailer `81 06 a5 5a e1 0c 4d 75 00 00`: its first 8 bytes, big-endian
    assert_eq!(body["messageFiscalSign"], 0x8106_a55a_e10c_4d75u64);
    assert_eq!(body["user"], "ООО РАПКАТ-центр ", "strings keep the spaces the register sent");
    assert_eq!(body["correctionReasonCode"], serde_json::json!([1]));
}

#[test]
fn s2a_header_with_space_padded_fn() {
    let h = SessionHeader::parse(S2A).expect("valid header");
    assert_eq!(&h.fn_number, b"9999078950      ");
    assert_eq!(h.fn_number().to_string(), "9999078950");
    assert_eq!(h.body_len, 305);
    assert_eq!(h.flags, Flags(0x0014));
}

#[test]
fn s2b_container_with_f_nibble() {
    let c = Container::parse(Bytes::from_static(S2B), MSG_FROM_FN).expect("valid container");
    assert_eq!(c.header().crc, 0xEC03);
    assert_eq!(c.header().doc_type, 1);
    assert_eq!(c.header().fn_number.as_bytes(), b"999907891234567 ");
    assert_eq!(c.header().declared_tlv_len(), 263);
    let (doc, trailer) = Document::decode(&c.data(), &Limits::default()).expect("decodes");
    assert_eq!(text(&doc, 1041), "999907891234567");
    assert_eq!(text(&doc, 1037), "120000130000");
    assert_eq!(text(&doc, 1018), "112233445566");
    assert_eq!(int(&doc, 1012), 1_460_556_840);
    assert_eq!(text(&doc, 1048), "ООО \"МММ\"");
    assert_eq!(text(&doc, 1009), "Москва, Зеленый проспект, д.66 корп. 2");
    assert_eq!(text(&doc, 1046), "ОФД-тест");
    assert_eq!(text(&doc, 1021), "СИС. АДМИНИСТРАТОР");
    assert_eq!(text(&doc, 1013), "0620000001");
    assert_eq!(text(&doc, 1049), "111234");
    let fs = doc.get(1077).and_then(Value::bytes).expect("1077");
    assert_eq!(ffd::tlv::printed_fiscal_sign(fs), Some(476_807_588));
    assert_eq!(&trailer[..], &[0x81, 0x06, 0x73, 0xfc, 0xa3, 0x4b, 0x28, 0x72, 0x00, 0x00]);
}

fn decode_ack(bytes: &'static [u8]) -> AckView {
    AckView::parse_container(Bytes::from_static(bytes)).expect("valid ack")
}

#[test]
fn s4_s5_decode() {
    let fn_ = FnNumber::parse_strict("9999078902013267").expect("fn");
    let a = decode_ack(S4);
    assert_eq!((a.fn_number, a.fd, a.doc_fd), (fn_, 1, Some(1)));
    assert_eq!(a.doc_fn, Some(fn_));
    assert_eq!(a.code, Some(ResponseCode::FlkError));
    assert_eq!(a.time, Some(1_726_400_816));
    assert_eq!(a.ofd_inn.as_deref(), Some("7704211201"));
    assert_eq!(a.operator_sign.as_deref(), Some(&[0x88, 0x06, 0x86, 0xce, 0x88, 0x30, 0x00, 0x03][..]));
    let b = decode_ack(S5);
    assert_eq!((b.fd, b.code, b.time), (2, Some(ResponseCode::Accepted), Some(1_726_403_103)));
    assert_eq!(&b.trailer[..], &[0x82, 0x06, 0xe1, 0x97, 0x19, 0xdc, 0x04, 0x53, 0x00, 0x00]);
}

/// A signer that returns the signature bytes of a captured acknowledgment.
#[derive(Debug)]
struct Replay(AckSignature);

impl AckSigner for Replay {
    fn sign(&self, _: &AckFields) -> AckSignature {
        self.0
    }
}

fn replay_signature(ack: &[u8]) -> AckSignature {
    let mut s = AckSignature { service2_head: [0; 8], operator_sign: [0; 8], trailer: [0; 10] };
    s.service2_head.copy_from_slice(&ack[20..28]);
    s.operator_sign.copy_from_slice(&ack[56..64]);
    s.trailer.copy_from_slice(&ack[ack.len() - 10..]);
    s
}

#[test]
fn ack_builder_reproduces_real_operator_layout() {
    for (sample, fd, code, time) in
        [(S4, 1, ResponseCode::FlkError, 1_726_400_816), (S5, 2, ResponseCode::Accepted, 1_726_403_103)]
    {
        let fields = AckFields {
            fn_number: FnNumber::parse_strict("9999078902013267").expect("fn"),
            fd,
            code,
            time,
            ofd_inn: AckFields::pad_inn("7704211201"),
            service1: [0x10, 0x09],
        };
        let built = build_ack_container(&fields, &Replay(replay_signature(sample)));
        assert_eq!(built, sample, "ack for FD {fd} differs from the captured one");
    }
}

#[test]
fn ack_builder_differs_from_sample_only_in_signer_bytes() {
    let fields = AckFields {
        fn_number: FnNumber::parse_strict("9999078902013267").expect("fn"),
        fd: 1,
        code: ResponseCode::FlkError,
        time: 1_726_400_816,
        ofd_inn: AckFields::pad_inn("7704211201"),
        service1: [0x10, 0x09],
    };
    let signer = ffd::SoftwareSigner::new(b"test key");
    let built = build_ack_container(&fields, &signer);
    assert_eq!(built.len(), S4.len());
    let signer_bytes = |i: usize| {
        (2..4).contains(&i)
            || (20..28).contains(&i)
            || (58..62).contains(&i)
            || (S4.len() - 8..S4.len() - 2).contains(&i)
    };
    for (i, (a, b)) in built.iter().zip(S4).enumerate() {
        if !signer_bytes(i) {
            assert_eq!(a, b, "byte {i} differs");
        }
    }
    // deterministic for the same inputs, different for another key
    assert_eq!(build_ack_container(&fields, &signer), built);
    assert_ne!(build_ack_container(&fields, &ffd::SoftwareSigner::new(b"other")), built);
    // it verifies as an ack
    let view = AckView::parse_container(Bytes::from(built)).expect("parses");
    assert_eq!(view.code, Some(ResponseCode::FlkError));
}

#[test]
fn s6_mock_ack_is_rejected_as_from_fn_type() {
    // the mock writes A5 in its reply; a strict reader of operator acks refuses it
    assert!(AckView::parse_container(Bytes::from_static(S6)).is_err());
    assert!(Container::parse(Bytes::from_static(S6), MSG_FROM_OFD).is_err());
    assert_eq!(container_crc(S6), 0x66F9);
}

#[test]
fn s7_session_crc_vectors() {
    assert_eq!(crc16(b"123456789"), 0x29B1);
    let mut h = SessionHeader::parse(S1).expect("header");
    let body = &S1[30..];
    h.flags = Flags(0x0015);
    assert_eq!(h.compute_crc(body), 0xD06F);
    let mode1 = h.with_crc(body).to_bytes();
    assert_eq!(&mode1[26..30], &[0x15, 0x00, 0x6f, 0xd0]);
    h.flags = Flags(0x0016);
    assert_eq!(h.compute_crc(body), 0xB371);
    let mode2 = h.with_crc(body);
    assert_eq!(&mode2.to_bytes()[26..30], &[0x16, 0x00, 0x71, 0xb3]);
    assert!(mode2.verify_crc(body).is_ok());
    let mut corrupted = body.to_vec();
    corrupted[100] ^= 1;
    assert!(mode2.verify_crc(&corrupted).is_err(), "mode 2 covers the body");
    assert!(SessionHeader::read(&mode1).verify_crc(&corrupted).is_ok(), "mode 1 does not");
}

#[test]
fn replies_carry_header_and_container_in_one_buffer() {
    let req = SessionHeader::parse(S1).expect("header");
    let reply = wrap_reply(&req, S5);
    assert_eq!(reply.len(), 30 + S5.len());
    let (h, view) = AckView::parse_reply(reply).expect("valid reply");
    assert_eq!(h.fn_number, req.fn_number);
    assert_eq!(h.p_version, req.p_version);
    assert_eq!(view.fd, 2);
    // a request with CRC mode 2 gets a reply with CRC mode 2
    let req2 = SessionHeader { flags: Flags(0x0016), ..req }.with_crc(&S1[30..]);
    let (h2, _) = AckView::parse_reply(wrap_reply(&req2, S5)).expect("valid reply");
    assert_eq!(h2.flags.crc_mode(), Some(CrcMode::HeaderAndBody));
    assert_ne!(h2.crc, 0);
}

#[test]
fn s8_pings_are_answered_with_flags_cleared() {
    let ping = hex_literal("dd80caa182a10001393939393939393939393939393939390000100000 00");
    let h = SessionHeader::parse(&ping).expect("valid ping header");
    assert!(h.is_ping());
    let reply = ffd::ack::ping_reply(&h);
    assert_eq!(&reply[..], &hex_literal("dd80caa182a100013939393939393939393939393939393900000000 0000")[..]);
}

fn hex_literal(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}
