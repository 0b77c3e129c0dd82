//! The hostile catalogue: named malformed inputs built from valid builder-made messages,
//! each with the exact outcome the gateway must produce (see the parent module).

use bytes::Bytes;

use super::{Expect, HostileCase, TEST_FD, TEST_FN, TEST_TIME, fn_number, identity, receipt_message, typical_receipt};
use crate::build::{self, Identity};
use crate::container::{CONTAINER_HEADER_LEN, ContainerSpec, MSG_FROM_FN};
use crate::crc::container_crc;
use crate::fn_number::FnNumber;
use crate::frame::Limits;
use crate::session::{CrcMode, SESSION_HEADER_LEN, SIGNATURE_MARKING, SessionHeader, p_version_for};
use crate::tlv::{FfdVersion, Fvln, TlvWriter};

fn base() -> Vec<u8> {
    receipt_message(FfdVersion::V1_2, TEST_FD, 3).to_vec()
}

/// Recomputes the container check code of a whole message in place.
fn reseal(msg: &mut [u8]) {
    if let Some(container) = msg.get_mut(SESSION_HEADER_LEN..)
        && container.len() >= 4
    {
        let crc = container_crc(container);
        container[2..4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Sets the session body length field.
fn set_body_len(msg: &mut [u8], len: u16) {
    msg[24..26].copy_from_slice(&len.to_le_bytes());
}

/// Sets the container length field (and recomputes the container check code).
fn set_container_len(msg: &mut [u8], len: u16) {
    msg[SESSION_HEADER_LEN..SESSION_HEADER_LEN + 2].copy_from_slice(&len.to_le_bytes());
    reseal(msg);
}

/// Gives a message the session check-code mode `mode` with a correct check code.
fn with_session_crc(msg: &[u8], mode: CrcMode) -> Vec<u8> {
    let mut head = [0u8; SESSION_HEADER_LEN];
    head.copy_from_slice(&msg[..SESSION_HEADER_LEN]);
    let mut header = SessionHeader::read(&head);
    header.flags = header.flags.with_crc_mode(mode);
    let header = header.with_crc(&msg[SESSION_HEADER_LEN..]);
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&msg[SESSION_HEADER_LEN..]);
    out
}

/// A register message around arbitrary container data (document TLV and trailer), with
/// container type `doc_type`, the session header naming `session_fn`.
fn raw_message(doc_type: u8, session_fn: &FnNumber, data: &[u8]) -> Vec<u8> {
    let container = ContainerSpec {
        msg_type: MSG_FROM_FN,
        doc_type,
        service1: ContainerSpec::SERVICE1,
        fn_number: fn_number(TEST_FN),
        fd: TEST_FD,
        service2_head: [0, 0, 0, 42, 0, 0, 0, 42, 0, 2],
    }
    .build(data, &[]);
    let len = u16::try_from(container.len()).unwrap_or(u16::MAX);
    let header = SessionHeader::for_register(session_fn, p_version_for(FfdVersion::V1_2), len);
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&container);
    out
}

/// A whole message around a document TLV, by the builder (valid CRC, FN trailer).
fn wrap(doc: &[u8]) -> Vec<u8> {
    build::message(&identity(FfdVersion::V1_2), TEST_FD, doc).to_vec()
}

/// The requisites every test receipt carries apart from the ones a case plays with.
fn receipt_head(w: &mut TlvWriter, fd: u32) {
    let id = identity(FfdVersion::V1_2);
    w.raw(1041, id.fn_number.as_bytes())
        .padded(1037, &id.rnm, 20)
        .padded(1018, &id.user_inn, 12)
        .u32(1040, fd)
        .time(1012, TEST_TIME)
        .raw(1077, &build::fake_fiscal_sign(&id.fn_number, fd, TEST_TIME, 8_990))
        .byte(1209, 4)
        .u32(1038, 17)
        .u32(1042, 5)
        .byte(1054, 1)
        .byte(1055, 1);
}

/// A valid receipt line.
fn item(w: &mut TlvWriter) {
    w.begin(1059)
        .string(1030, "Молоко")
        .vln(1079, 8_990)
        .fvln(1023, Fvln { scale: 3, mantissa: 1_000 })
        .vln(1043, 8_990)
        .byte(1199, 1)
        .end();
}

/// A receipt document: the common head, `body` for the case, then 1020 unless `no_total`.
fn receipt_doc(body: impl FnOnce(&mut TlvWriter), no_total: bool) -> Vec<u8> {
    let mut w = TlvWriter::new();
    w.begin(3);
    receipt_head(&mut w, TEST_FD);
    body(&mut w);
    if !no_total {
        w.vln(1020, 8_990);
    }
    w.end();
    w.finish()
}

/// Offset of the first byte of the document TLV within a whole message.
const DOC_AT: usize = SESSION_HEADER_LEN + CONTAINER_HEADER_LEN;

/// Finds the first TLV with `tag` at the top level of the document of a message and
/// returns the offset of its header within the message.
fn find_top_level(msg: &[u8], tag: u16) -> Option<usize> {
    let doc_len = usize::from(u16::from_le_bytes([msg[DOC_AT + 2], msg[DOC_AT + 3]]));
    let mut pos = DOC_AT + 4;
    let end = DOC_AT + 4 + doc_len;
    while pos + 4 <= end {
        let t = u16::from_le_bytes([msg[pos], msg[pos + 1]]);
        let l = usize::from(u16::from_le_bytes([msg[pos + 2], msg[pos + 3]]));
        if t == tag {
            return Some(pos);
        }
        pos += 4 + l;
    }
    None
}

/// Every hostile case. See the module documentation; `docs/ffd-testing.md` lists them.
pub fn hostile_catalogue() -> Vec<HostileCase> {
    let mut cases = Vec::new();
    let mut add = |name: &'static str, bytes: Vec<u8>, expect: Expect| {
        cases.push(HostileCase { name, bytes: Bytes::from(bytes), expect, trailing: None, limits: Limits::default() });
    };
    let valid = base();
    let limits = Limits::default();

    // ---- session level
    let mut m = valid.clone();
    m[0] = 0x2B;
    add("bad_signature", m, Expect::close("bad_signature"));

    let mut m = b"GET / HTTP/1.1\r\nHost: ofd\r\n\r\n".to_vec();
    m.extend_from_slice(&valid);
    add("garbage_prefix_http", m, Expect::close("bad_signature"));

    let mut m = vec![0x2A, 0x08, 0x41];
    m.extend_from_slice(&valid);
    add("partial_signature_then_message", m, Expect::close("bad_signature"));

    add("all_zero_header", vec![0; SESSION_HEADER_LEN], Expect::close("bad_signature"));

    add("ff_64k", vec![0xFF; 64 * 1024], Expect::close("bad_signature"));

    let mut m = valid.clone();
    m[4..6].copy_from_slice(&[0x81, 0xA3]);
    add("unknown_session_version", m, Expect::close("bad_session_version"));

    let mut m = valid.clone();
    m[4..6].copy_from_slice(&[0x82, 0xA2]);
    add("ofd_signature_marking_version", m, Expect::close("bad_session_version"));

    let mut m = valid.clone();
    m[26..28].copy_from_slice(&0x0017u16.to_le_bytes());
    add("crc_mode_3", m, Expect::close("bad_flags"));

    add("truncated_header_1_byte", valid[..1].to_vec(), Expect::CloseOnEof { missing: 29 });
    add("truncated_header_17_bytes", valid[..17].to_vec(), Expect::CloseOnEof { missing: 13 });
    add("truncated_header_29_bytes", valid[..29].to_vec(), Expect::CloseOnEof { missing: 1 });
    add("truncated_body", valid[..valid.len() - 100].to_vec(), Expect::CloseOnEof { missing: 100 });

    let mut m = valid[..SESSION_HEADER_LEN + 40].to_vec();
    set_body_len(&mut m, u16::MAX);
    add("body_len_65535_little_data", m, Expect::close("body_too_large"));

    let mut m = valid.clone();
    let over = u16::try_from(limits.max_body_len + 1).unwrap_or(u16::MAX);
    set_body_len(&mut m, over);
    m.resize(SESSION_HEADER_LEN + usize::from(over), 0);
    add("body_len_one_over_limit", m, Expect::close("body_too_large"));

    let mut m = valid.clone();
    let correct = SessionHeader::read(&head_of(&with_session_crc(&m, CrcMode::Header))).crc;
    m[26..28].copy_from_slice(&0x0015u16.to_le_bytes());
    m[28..30].copy_from_slice(&(correct ^ 0x0001).to_le_bytes());
    add("session_crc_mismatch_mode_1", m, Expect::close("session_crc_mismatch"));

    // mode 2 covers the body: change a document byte but keep the container sealed, so
    // only the session check code can tell
    let mut m = with_session_crc(&valid, CrcMode::HeaderAndBody);
    let at = find_top_level(&m, 1048).unwrap_or(DOC_AT + 8) + 5;
    m[at] ^= 0x20;
    reseal(&mut m);
    add("session_crc_mismatch_mode_2", m, Expect::close("session_crc_mismatch"));

    let mut m = valid.clone();
    m[..4].copy_from_slice(&SIGNATURE_MARKING);
    m[4..6].copy_from_slice(&[0x82, 0xA2]);
    add("marking_channel_with_body", m, Expect::close("unsupported_channel"));

    let mut m = valid.clone();
    m[..4].copy_from_slice(&SIGNATURE_MARKING);
    m[4..6].copy_from_slice(&[0x82, 0xFB]);
    add("reception_check_with_body", m, Expect::close("unsupported_channel"));

    // ---- container level
    let mut m = valid[..SESSION_HEADER_LEN + 20].to_vec();
    set_body_len(&mut m, 20);
    add("container_too_short", m, Expect::close("container_too_short"));

    // the session header and the container agree on a shorter body than the container's
    // own length field claims
    let mut m = valid[..valid.len() - 50].to_vec();
    let len = u16::try_from(m.len() - SESSION_HEADER_LEN).unwrap_or(u16::MAX);
    set_body_len(&mut m, len);
    reseal(&mut m);
    add("body_shorter_than_container_says", m, Expect::close("container_length_mismatch"));

    let mut m = valid.clone();
    let len = u16::try_from(m.len() - SESSION_HEADER_LEN - 10).unwrap_or(u16::MAX);
    set_container_len(&mut m, len);
    add("container_length_below_body_length", m, Expect::close("container_length_mismatch"));

    // the whole message is sent, but the session header frames only part of it
    let mut m = valid.clone();
    let len = u16::try_from(m.len() - SESSION_HEADER_LEN - 64).unwrap_or(u16::MAX);
    set_body_len(&mut m, len);
    add("session_body_len_below_container_len", m, Expect::close("container_length_mismatch"));

    let mut m = valid.clone();
    let last = m.len() - 20;
    m[last] ^= 0x01;
    add("container_crc_mismatch", m, Expect::close("container_crc_mismatch"));

    let mut m = valid.clone();
    m[SESSION_HEADER_LEN + 4] = 0x5A;
    reseal(&mut m);
    add("message_type_5a_from_register", m, Expect::close("bad_message_type"));

    let mut m = valid.clone();
    m[SESSION_HEADER_LEN + 6] = 2;
    reseal(&mut m);
    add("container_version_2", m, Expect::close("bad_container_version"));

    let mut m = valid.clone();
    m[SESSION_HEADER_LEN + 12] = 0x7B; // nibble B
    reseal(&mut m);
    add("fn_bcd_bad_nibble", m, Expect::close("bad_fn_bcd"));

    // ---- document level: 11
    let mut doc = receipt_doc(item, false);
    doc[0] = 99;
    add("unknown_document_type", wrap(&doc), Expect::r11("unknown_document_type"));

    let mut doc = receipt_doc(item, false);
    doc[0] = 7;
    add("operator_ack_form_from_register", wrap(&doc), Expect::r11("unknown_document_type"));

    let own_fn = fn_number(TEST_FN);
    add("empty_container_data", raw_message(3, &own_fn, &[]), Expect::r11("empty_document"));
    add("container_data_1_byte", raw_message(3, &own_fn, &[3]), Expect::r11("empty_document"));
    add("container_data_3_bytes", raw_message(3, &own_fn, &[3, 0, 0]), Expect::r11("empty_document"));

    // ---- the attempt, not the document: the session header names another FN. Refused
    // (closed) for this copy; nothing is stored, so the genuine delivery is judged afresh
    let mut m = valid.clone();
    m[8..24].copy_from_slice(b"9999078902013268");
    add("fn_mismatch_header_container", m, Expect::close("session_fn_mismatch"));

    // ciphertext cannot be looked into, but the header/container FN check still applies
    let mut cipher = vec![0xC3, 0x5E];
    cipher.extend((0u8..=250).map(|b| b.wrapping_mul(151)));
    add(
        "opaque_body_fn_mismatch",
        raw_message(3, &fn_number("9999078902013268"), &cipher),
        Expect::close("session_fn_mismatch"),
    );

    // ---- document level: 14

    let other = Identity { fn_number: fn_number("9999078902013268"), ..identity(FfdVersion::V1_2) };
    add(
        "fn_mismatch_container_1041",
        wrap(&build::receipt(&other, TEST_FD, TEST_TIME, &typical_receipt(2))),
        Expect::r14("flk_fn_mismatch_document"),
    );

    let id = identity(FfdVersion::V1_2);
    add(
        "fd_mismatch_container_1040",
        wrap(&build::receipt(&id, TEST_FD + 1, TEST_TIME, &typical_receipt(2))),
        Expect::r14("flk_fd_mismatch"),
    );

    add(
        "duplicate_1040_conflicting",
        wrap(&receipt_doc(
            |w| {
                item(w);
                w.u32(1040, TEST_FD + 7);
            },
            false,
        )),
        Expect::r14("flk_fd_mismatch"),
    );

    let mut m = valid.clone();
    m[DOC_AT + 2..DOC_AT + 4].copy_from_slice(&0x7FFFu16.to_le_bytes());
    reseal(&mut m);
    add("document_tlv_overruns_container", m, Expect::r14("flk_truncated"));

    let mut m = valid.clone();
    let item_at = find_top_level(&m, 1059).unwrap_or(DOC_AT + 4);
    // the first child of the first item: claim 200 bytes inside a much shorter item
    m[item_at + 6..item_at + 8].copy_from_slice(&200u16.to_le_bytes());
    reseal(&mut m);
    add("requisite_overruns_its_stlv", m, Expect::r14("flk_truncated"));

    add(
        "requisite_header_cut_short",
        wrap(&receipt_doc(
            |w| {
                item(w);
                w.extend(&[0x10, 0x04, 0x04]);
            },
            false,
        )),
        Expect::r14("flk_truncated"),
    );

    add(
        "stlv_depth_exceeded",
        wrap(&receipt_doc(
            |w| {
                for _ in 0..5 {
                    w.begin(1059);
                }
                w.string(1030, "deep");
                for _ in 0..5 {
                    w.end();
                }
            },
            false,
        )),
        Expect::r14("flk_depth_exceeded"),
    );

    add(
        "string_over_dictionary_max",
        wrap(&receipt_doc(
            |w| {
                item(w);
                w.raw(1021, &[b'A'; 65]);
            },
            false,
        )),
        Expect::r14("flk_value_too_long"),
    );

    add(
        "item_name_over_dictionary_max",
        wrap(&receipt_doc(
            |w| {
                w.begin(1059).raw(1030, &[0xE0; 129]).vln(1043, 1).end();
            },
            false,
        )),
        Expect::r14("flk_value_too_long"),
    );

    let mut doc = TlvWriter::new();
    doc.begin(3).raw(1041, b"999907890201326").u32(1040, TEST_FD).end();
    add("fn_1041_15_bytes", wrap(&doc.finish()), Expect::r14("flk_bad_value_length"));

    let mut w = TlvWriter::new();
    w.begin(2);
    receipt_head(&mut w, TEST_FD);
    w.raw(9_999, &[0x20; 4_200]);
    w.end();
    add("document_over_form_max", wrap(&w.finish()), Expect::r14("flk_document_too_large"));

    add("receipt_without_1020", wrap(&receipt_doc(item, true)), Expect::r14("flk_missing_requisite"));

    add(
        "fvln_without_scale_byte",
        wrap(&receipt_doc(
            |w| {
                w.begin(1059).string(1030, "Молоко").raw(1023, &[]).vln(1043, 8_990).end();
            },
            false,
        )),
        Expect::r14("flk_bad_value_length"),
    );

    add(
        "u32_requisite_of_5_bytes",
        wrap(&receipt_doc(
            |w| {
                item(w);
                w.raw(1042, &[1, 0, 0, 0, 0]);
            },
            false,
        )),
        Expect::r14("flk_value_too_long"),
    );

    add(
        "vln_of_7_bytes",
        wrap(&receipt_doc(
            |w| {
                item(w);
                w.raw(1031, &[1, 2, 3, 4, 5, 6, 7]);
            },
            false,
        )),
        Expect::r14("flk_value_too_long"),
    );

    add(
        "byte_requisite_of_2_bytes",
        wrap(&receipt_doc(
            |w| {
                item(w);
                w.raw(1056, &[0, 0]);
            },
            false,
        )),
        Expect::r14("flk_value_too_long"),
    );

    // ---- cases with more than one outcome or non-default limits
    let mut m = valid.clone();
    m.extend_from_slice(b"\x00\x01garbage after a valid message");
    cases.push(HostileCase {
        name: "valid_message_then_garbage",
        bytes: Bytes::from(m),
        expect: Expect::ACCEPTED,
        trailing: Some(Expect::close("bad_signature")),
        limits,
    });

    let mut m = valid.clone();
    m.extend_from_slice(&valid[..10]);
    cases.push(HostileCase {
        name: "valid_message_then_partial_header",
        bytes: Bytes::from(m),
        expect: Expect::ACCEPTED,
        trailing: Some(Expect::CloseOnEof { missing: 20 }),
        limits,
    });

    let mut m = valid.clone();
    m.extend_from_slice(&[0xFF; 64]);
    cases.push(HostileCase {
        name: "valid_message_then_ff",
        bytes: Bytes::from(m),
        expect: Expect::ACCEPTED,
        trailing: Some(Expect::close("bad_signature")),
        limits,
    });

    // 600 empty unknown requisites and no 1020: too many at a limit of 512 — a setting of
    // this server, so the attempt is refused (closed) and nothing stored; at the default
    // limits the document is judged, and refused for the missing total (14)
    let doc = receipt_doc(
        |w| {
            for _ in 0..600 {
                w.raw(9_999, &[]);
            }
        },
        true,
    );
    cases.push(HostileCase {
        name: "too_many_requisites",
        bytes: Bytes::from(wrap(&doc)),
        expect: Expect::close("too_many_requisites"),
        trailing: None,
        limits: Limits { max_requisites: 512, ..Limits::default() },
    });

    cases
}

fn head_of(msg: &[u8]) -> [u8; SESSION_HEADER_LEN] {
    let mut h = [0u8; SESSION_HEADER_LEN];
    h.copy_from_slice(&msg[..SESSION_HEADER_LEN]);
    h
}
