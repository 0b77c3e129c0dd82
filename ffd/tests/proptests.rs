//! Properties of the codec (proptest).
//!
//! * (a) `Document::decode(encode(doc)) == doc` for random trees of every form code, with
//!   dictionary tags carrying values of their type and length, unknown tags as raw values,
//!   nesting within the depth limit; the trailer after the document is returned intact.
//! * (b) builder-made receipts, shift and state reports and registration reports are
//!   accepted by `inspect` (code 0) and the summary reproduces FD, FN, total and time.
//! * (c) no decoder panics on arbitrary bytes (up to 70 000) or on arbitrary data inside a
//!   correctly framed and sealed container.
//! * (d) single-byte mutations of valid messages never panic and are never accepted
//!   unless the container the gateway would store is byte-identical to the original.
//!
//! The default run uses a few hundred cases per property; set `PROPTEST_CASES` for longer
//! runs (e.g. `PROPTEST_CASES=10000 cargo test -p ffd --all-features --test proptests`).

use bytes::Bytes;
use ffd::ack::{AckView, build_ack_container, wrap_reply};
use ffd::build::{self, DriveReport, Identity, Item, Receipt};
use ffd::container::{CONTAINER_HEADER_LEN, ContainerSpec, MSG_FROM_FN};
use ffd::document::{Document, Field, Value};
use ffd::json::to_fns_json;
use ffd::session::{CrcMode, Flags, SESSION_HEADER_LEN, SessionHeader, p_version_for};
use ffd::tags::{self, TagInfo, ValueType};
use ffd::testkit::{Expect, replay};
use ffd::tlv::{Fvln, encode_vln, printed_fiscal_sign};
use ffd::{AckFields, Body, FfdVersion, FnNumber, FrameStatus, Limits, Message, SoftwareSigner, check_frame, inspect};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;

/// `cases` unless `PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c
}

// ------------------------------------------------------------------ (a) round trip

fn bytes_up_to(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// An unsigned value whose minimal little-endian encoding has at most `max_bytes` bytes.
fn uint_of_at_most(max_bytes: usize) -> impl Strategy<Value = u64> {
    (0..=max_bytes.min(8), any::<u64>()).prop_map(|(n, v)| if n >= 8 { v } else { v & ((1u64 << (8 * n)) - 1) })
}

fn value_len(v: &Value) -> usize {
    match v {
        Value::Byte(_) => 1,
        Value::U16(_) => 2,
        Value::U32(_) | Value::Time(_) => 4,
        Value::Vln(v) => encode_vln(*v).1,
        Value::Fvln(f) => 1 + encode_vln(f.mantissa).1,
        Value::Str(b) | Value::Bytes(b) | Value::Raw(b) => b.len(),
        Value::Stlv(fields) => fields.iter().map(field_len).sum(),
    }
}

fn field_len(f: &Field) -> usize {
    4 + value_len(&f.value)
}

/// Keeps the leading fields that fit in `budget` encoded bytes.
fn fit(fields: Vec<Field>, budget: usize) -> Vec<Field> {
    let mut used = 0;
    fields
        .into_iter()
        .take_while(|f| {
            used += field_len(f);
            used <= budget
        })
        .collect()
}

/// A value of the dictionary type of `info`; STLVs draw their children from `children`
/// (absent at the deepest level, where no STLV may appear).
fn value_for(info: &'static TagInfo, children: Option<BoxedStrategy<Vec<Field>>>) -> BoxedStrategy<Value> {
    let max = usize::from(info.max_len);
    match info.ty {
        ValueType::Byte => any::<u8>().prop_map(Value::Byte).boxed(),
        ValueType::U16 => any::<u16>().prop_map(Value::U16).boxed(),
        ValueType::U32 => any::<u32>().prop_map(Value::U32).boxed(),
        ValueType::UnixTime => any::<u32>().prop_map(Value::Time).boxed(),
        ValueType::Vln => uint_of_at_most(max).prop_map(Value::Vln).boxed(),
        ValueType::Fvln => (any::<u8>(), uint_of_at_most(max.saturating_sub(1)))
            .prop_map(|(scale, mantissa)| Value::Fvln(Fvln { scale, mantissa }))
            .boxed(),
        ValueType::Str if info.tag == 1041 => vec(b'0'..=b'9', 16).prop_map(|d| Value::Str(Bytes::from(d))).boxed(),
        ValueType::Str => bytes_up_to(max).prop_map(Value::Str).boxed(),
        ValueType::Bytes => bytes_up_to(max).prop_map(Value::Bytes).boxed(),
        ValueType::Stlv => match children {
            Some(c) => c.prop_map(move |f| Value::Stlv(fit(f, max))).boxed(),
            None => Just(Value::Raw(Bytes::new())).boxed(), // never selected
        },
    }
}

/// Fields at one nesting level. `level` is the level of the fields themselves (1 = the
/// document's own requisites); STLV tags appear only where their children stay within
/// the depth limit.
fn fields_at(level: u8, max_depth: u8) -> BoxedStrategy<Vec<Field>> {
    let children = (level < max_depth).then(|| fields_at(level + 1, max_depth));
    let known: Vec<BoxedStrategy<Field>> = tags::all()
        .iter()
        .filter(|t| t.ty != ValueType::Stlv || children.is_some())
        .map(|info| value_for(info, children.clone()).prop_map(move |value| Field { tag: info.tag, value }).boxed())
        .collect();
    let unknown = (any::<u16>().prop_filter("unknown tag", |t| tags::lookup(*t).is_none()), bytes_up_to(48))
        .prop_map(|(tag, b)| Field { tag, value: Value::Raw(b) });
    let field = prop_oneof![6 => Union::new(known), 1 => unknown];
    let count = if level == 1 { 0..40usize } else { 0..8 };
    vec(field, count).boxed()
}

fn document() -> impl Strategy<Value = Document> {
    let codes: Vec<u16> = tags::doc_types().iter().map(|d| u16::from(d.code)).collect();
    (prop::sample::select(codes), fields_at(1, Limits::default().max_depth))
        .prop_map(|(doc_type, fields)| Document { doc_type, fields: fit(fields, 60_000) })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn a_encode_decode_round_trip(doc in document(), trailer in bytes_up_to(12)) {
        let limits = Limits::default();
        let encoded = doc.encode();
        prop_assert_eq!(encoded.len(), 4 + doc.fields.iter().map(field_len).sum::<usize>());
        let mut data = encoded.clone();
        data.extend_from_slice(&trailer);
        let data = Bytes::from(data);
        let (back, rest) = Document::decode(&data, &limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &doc);
        prop_assert_eq!(&rest, &trailer, "consumed != encoded length");
        let (lenient, _) = Document::decode_lenient(&data, &limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&lenient, &doc);
        prop_assert_eq!(back.encode(), encoded);
        // the JSON renderer takes every tree
        let json = to_fns_json(&back);
        prop_assert!(json.is_object());
    }
}

// ------------------------------------------------------------------ (b) builders

const ALPHABET: &str = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЭЮЯ\
                        abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-\"№%/";

fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    let chars: Vec<char> = ALPHABET.chars().collect();
    vec(prop::sample::select(chars), min..=max).prop_map(|c| c.into_iter().collect())
}

fn digits(min: usize, max: usize) -> impl Strategy<Value = String> {
    vec(prop::sample::select(b"0123456789".to_vec()), min..=max).prop_map(|d| String::from_utf8(d).unwrap_or_default())
}

fn identity() -> impl Strategy<Value = Identity> {
    (
        digits(16, 16),
        digits(16, 20),
        prop_oneof![digits(10, 10), digits(12, 12)],
        digits(1, 20),
        text(1, 256),
        text(1, 256),
        text(1, 256),
        text(1, 64),
        prop::sample::select(vec![FfdVersion::V1_0, FfdVersion::V1_05, FfdVersion::V1_1, FfdVersion::V1_2]),
    )
        .prop_map(|(fn_digits, rnm, inn, serial, user_name, address, place, cashier, ffd)| Identity {
            fn_number: FnNumber::parse_strict(&fn_digits).unwrap_or_else(|_| FnNumber::from_ascii(b"9999078900005488")),
            rnm,
            user_inn: inn,
            kkt_serial: serial,
            ofd_inn: "7704211201".to_owned(),
            user_name,
            address,
            place,
            cashier,
            ffd,
        })
}

fn item() -> impl Strategy<Value = Item> {
    (
        text(1, 128),
        0u64..=100_000_000,
        (0u8..=3, 0u64..=100_000),
        prop::sample::select(vec![1u8, 2, 3, 4, 5, 6]),
        1u8..=13,
        1u8..=7,
    )
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
    (1u8..=4, vec(item(), 1..12), any::<u64>(), any::<u32>(), any::<u32>(), any::<u8>()).prop_map(
        |(operation, items, cash, shift, number, taxation)| {
            let total: u64 = items.iter().map(Item::sum).sum();
            Receipt { operation, items, cash: cash % (total + 1), shift, number, taxation }
        },
    )
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

/// Which builder to use.
#[derive(Debug, Clone)]
enum Built {
    Receipt(Receipt),
    OpenShift(u32),
    CloseShift(DriveReport),
    State(DriveReport),
    Registration,
}

fn built() -> impl Strategy<Value = Built> {
    prop_oneof![
        4 => receipt().prop_map(Built::Receipt),
        1 => any::<u32>().prop_map(Built::OpenShift),
        1 => drive().prop_map(Built::CloseShift),
        1 => drive().prop_map(Built::State),
        1 => Just(Built::Registration),
    ]
}

fn accepted(bytes: &Bytes) -> Result<ffd::Inspection, TestCaseError> {
    let limits = Limits::default();
    let msg = Message::parse(bytes.clone(), &limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let insp = inspect(&msg, &limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&insp.verdict, &Ok(()));
    prop_assert_eq!(insp.response_code().value(), 0);
    Ok(insp)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn b_builder_messages_are_accepted_with_their_summary(
        id in identity(),
        fd in 1u32..=0x00FF_FFFF,
        time in any::<u32>(),
        what in built(),
        crc_mode in prop::sample::select(vec![CrcMode::None, CrcMode::Header, CrcMode::HeaderAndBody]),
    ) {
        let (doc, total, form) = match &what {
            Built::Receipt(r) => (build::receipt(&id, fd, time, r), r.total(), 3),
            Built::OpenShift(s) => (build::open_shift(&id, fd, time, *s), 0, 2),
            Built::CloseShift(d) => (build::close_shift(&id, fd, time, d), 0, 5),
            Built::State(d) => (build::state_report(&id, fd, time, d), 0, 21),
            Built::Registration => (build::registration(&id, fd, time), 0, 1),
        };
        let plain = build::message(&id, fd, &doc);
        // the same message with a session check code of each mode
        let mut head = [0u8; SESSION_HEADER_LEN];
        head.copy_from_slice(&plain[..SESSION_HEADER_LEN]);
        let mut header = SessionHeader::read(&head);
        header.flags = header.flags.with_crc_mode(crc_mode);
        let header = header.with_crc(&plain[SESSION_HEADER_LEN..]);
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(&plain[SESSION_HEADER_LEN..]);
        let bytes = Bytes::from(bytes);

        let insp = accepted(&bytes)?;
        prop_assert_eq!(insp.fd(), fd);
        prop_assert_eq!(insp.fn_number(), id.fn_number);
        prop_assert_eq!(insp.header().doc_type, form);
        let Body::Plain(s) = insp.body else {
            return Err(TestCaseError::fail("plaintext expected"));
        };
        prop_assert_eq!(s.doc_time, Some(time));
        let sign = build::fake_fiscal_sign(&id.fn_number, fd, time, total);
        prop_assert_eq!(s.fiscal_sign, printed_fiscal_sign(&sign));
        let expected_ffd = (id.ffd != FfdVersion::V1_0).then_some(id.ffd);
        prop_assert_eq!(s.ffd_version, expected_ffd);
        match &what {
            Built::Receipt(r) => {
                prop_assert_eq!(s.total, Some(r.total()));
                prop_assert_eq!(s.operation, Some(r.operation));
                prop_assert_eq!(s.shift, Some(r.shift));
            }
            Built::OpenShift(shift) => prop_assert_eq!(s.shift, Some(*shift)),
            Built::CloseShift(d) | Built::State(d) => {
                prop_assert_eq!(s.shift, Some(d.shift));
                prop_assert_eq!(s.telemetry.unsent_documents, Some(d.unsent_documents));
                prop_assert_eq!(s.telemetry.warnings.0, d.warnings);
                let first_time = (d.first_unsent_time != 0).then_some(d.first_unsent_time);
                prop_assert_eq!(s.telemetry.first_unsent_time, first_time);
                let key = (id.ffd >= FfdVersion::V1_1).then_some(u32::from(d.key_resource_days));
                prop_assert_eq!(s.telemetry.key_resource_days, key);
            }
            Built::Registration => {
                prop_assert_eq!(s.rnm.map(|r| r[..id.rnm.len()].to_vec()), Some(id.rnm.as_bytes().to_vec()));
            }
        }
        // the tree decoder and the renderer agree with the inspector
        let (tree, _) = Document::decode(&insp.container.data(), &Limits::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(tree.get(1040).and_then(Value::as_u64), Some(u64::from(fd)));
        let json = to_fns_json(&tree);
        let name = tags::doc_type(form).map(|d| d.json).unwrap_or_default();
        prop_assert_eq!(&json[name]["fiscalDocumentNumber"], &serde_json::json!(fd));
        // and the reply the gateway would send parses back with the same FN and FD
        let fields = AckFields {
            fn_number: insp.fn_number(),
            fd,
            code: insp.response_code(),
            time,
            ofd_inn: AckFields::pad_inn("7704211201"),
            service1: insp.header().service1,
        };
        let reply = wrap_reply(&header, &build_ack_container(&fields, &SoftwareSigner::new(b"k")));
        let (rh, view) = AckView::parse_reply(reply).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(rh.flags.crc_mode(), Some(crc_mode));
        prop_assert_eq!((view.fn_number, view.fd, view.doc_fd), (id.fn_number, fd, Some(fd)));
    }
}

// ------------------------------------------------------------------ (c) never panics

/// Mostly short inputs, sometimes up to 70 000 bytes.
fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => vec(any::<u8>(), 0..64),
        3 => vec(any::<u8>(), 0..4_096),
        1 => vec(any::<u8>(), 0..70_000),
    ]
}

/// TLV soup: tags from the dictionary or not, lengths that may lie, nested at random.
fn tlv_soup() -> impl Strategy<Value = Vec<u8>> {
    let dict: Vec<u16> = tags::all().iter().map(|t| t.tag).collect();
    let tag = prop_oneof![3 => prop::sample::select(dict), 1 => any::<u16>()];
    let leaf = (tag, bytes_up_to(40), prop_oneof![8 => Just(None), 1 => any::<u16>().prop_map(Some)]).prop_map(
        |(tag, value, lie)| {
            let len = lie.unwrap_or(u16::try_from(value.len()).unwrap_or(u16::MAX));
            let mut out = tag.to_le_bytes().to_vec();
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&value);
            out
        },
    );
    leaf.prop_recursive(6, 256, 8, |inner| {
        (prop::sample::select(vec![1059u16, 1084, 1223, 1224, 1163, 1068, 1174, 9999]), vec(inner, 0..8)).prop_map(
            |(tag, kids)| {
                let body: Vec<u8> = kids.concat();
                let mut out = tag.to_le_bytes().to_vec();
                out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_le_bytes());
                out.extend_from_slice(&body);
                out
            },
        )
    })
}

/// Container data: a document TLV of form `doc_type` around TLV soup (or random bytes),
/// then a trailer.
fn container_data() -> impl Strategy<Value = (u8, Vec<u8>)> {
    let codes: Vec<u8> = tags::doc_types().iter().map(|d| d.code).chain([0, 99, 255]).collect();
    (
        prop::sample::select(codes),
        prop_oneof![3 => vec(tlv_soup(), 0..24).prop_map(|v| v.concat()), 1 => arbitrary_bytes()],
        any::<bool>(),
        bytes_up_to(12),
    )
        .prop_map(|(code, body, wrap, trailer)| {
            let mut data = Vec::new();
            if wrap {
                data.extend_from_slice(&u16::from(code).to_le_bytes());
                data.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_le_bytes());
            }
            data.extend_from_slice(&body);
            data.extend_from_slice(&trailer);
            data.truncate(32_000); // within the default body limit
            (code, data)
        })
}

/// A correctly framed and sealed message around container data, so the inspector and the
/// document decoders are reached.
fn sealed_message(code: u8, data: &[u8], flags: u16) -> Vec<u8> {
    let fn_ = FnNumber::from_ascii(b"9999078900005488");
    let container = ContainerSpec {
        msg_type: MSG_FROM_FN,
        doc_type: code,
        service1: ContainerSpec::SERVICE1,
        fn_number: fn_,
        fd: 7,
        service2_head: [0; 10],
    }
    .build(data, &[]);
    let mut header = SessionHeader::for_register(
        &fn_,
        p_version_for(FfdVersion::V1_2),
        u16::try_from(container.len()).unwrap_or(u16::MAX),
    );
    header.flags = Flags(flags & !0x3).with_crc_mode(match flags & 0x3 {
        1 => CrcMode::Header,
        2 => CrcMode::HeaderAndBody,
        _ => CrcMode::None,
    });
    let mut out = header.with_crc(&container).to_bytes().to_vec();
    out.extend_from_slice(&container);
    out
}

/// Everything a peer's bytes can reach; the results are checked for internal consistency.
fn exercise(bytes: &[u8]) -> Result<(), TestCaseError> {
    let limits = Limits::default();
    match check_frame(bytes, &limits) {
        Ok(FrameStatus::Complete { len, .. }) => prop_assert!(len <= bytes.len() && len >= 30),
        Ok(FrameStatus::Incomplete(n)) => prop_assert!(n > 0),
        Err(e) => prop_assert!(!e.code().is_empty()),
    }
    // the read loop covers the stream without gaps and stops at the first close
    let steps = replay(bytes, &limits);
    let mut pos = 0;
    for (i, s) in steps.iter().enumerate() {
        prop_assert_eq!(s.range.start, pos);
        prop_assert!(s.range.end <= bytes.len());
        let last = i + 1 == steps.len();
        if !matches!(s.outcome, Expect::Respond { .. } | Expect::Ping) {
            prop_assert!(last);
        }
        pos = s.range.end;
    }
    let b = Bytes::copy_from_slice(bytes);
    if let Ok(msg) = Message::parse(b.clone(), &limits) {
        let _ = msg.verify_session_crc();
        if let Ok(insp) = inspect(&msg, &limits) {
            let rc = insp.response_code().value();
            prop_assert!(rc == 0 || rc == 11 || rc == 14);
            if let Body::Plain(s) = &insp.body {
                prop_assert!(s.requisites <= limits.max_requisites);
            }
            decode_all(&insp.container.data())?;
        }
    }
    let _ = AckView::parse_reply(b.clone());
    let _ = AckView::parse_container(b.clone());
    decode_all(&b)
}

/// Strict and lenient tree decoding and JSON; a strict success re-encodes to a tree that
/// decodes the same (encoding normalises, decoding is stable).
fn decode_all(data: &Bytes) -> Result<(), TestCaseError> {
    let limits = Limits::default();
    let strict = Document::decode(data, &limits);
    let lenient = Document::decode_lenient(data, &limits);
    if let Ok((doc, trailer)) = &strict {
        let _ = to_fns_json(doc);
        prop_assert!(trailer.len() <= data.len());
        // a strict success is a lenient success with the same tree
        prop_assert_eq!(lenient.as_ref().map(|(d, _)| d), Ok(doc));
        if let Some(again) = doc.try_encode() {
            let (doc2, _) =
                Document::decode(&Bytes::from(again), &limits).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&doc2, doc);
        }
    }
    if let Ok((doc, _)) = &lenient {
        let _ = to_fns_json(doc);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn c_arbitrary_bytes_never_panic(bytes in arbitrary_bytes()) {
        exercise(&bytes)?;
    }

    #[test]
    fn c_arbitrary_bytes_after_a_valid_header_never_panic(
        body in arbitrary_bytes(), flags in any::<u16>()
    ) {
        let fn_ = FnNumber::from_ascii(b"9999078900005488");
        let mut h = SessionHeader::for_register(&fn_, [1, 5], u16::try_from(body.len()).unwrap_or(u16::MAX));
        h.flags = Flags(flags);
        let mut bytes = h.to_bytes().to_vec();
        bytes.extend_from_slice(&body);
        exercise(&bytes)?;
    }

    #[test]
    fn c_arbitrary_documents_in_sealed_containers_never_panic(
        (code, data) in container_data(), flags in any::<u16>()
    ) {
        let bytes = sealed_message(code, &data, flags);
        exercise(&bytes)?;
        let data = Bytes::from(data);
        decode_all(&data)?;
        // an intact container from the right FN is never closed on: it is answered
        let msg = Message::parse(Bytes::from(bytes), &Limits::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        if flags & 0x3 != 3 {
            let insp = inspect(&msg, &Limits::default());
            prop_assert!(insp.is_ok(), "{:?}", insp.err());
        }
    }
}

// ------------------------------------------------------------------ (d) mutations

#[derive(Debug, Clone, Copy)]
enum Mutation {
    FlipBit(usize, u8),
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn apply(m: Mutation, orig: &[u8]) -> Vec<u8> {
    let mut v = orig.to_vec();
    let at = |i: usize| i % orig.len();
    match m {
        Mutation::FlipBit(i, bit) => v[at(i)] ^= 1 << (bit % 8),
        Mutation::Replace(i, b) => {
            let i = at(i);
            v[i] = if v[i] == b { b.wrapping_add(1) } else { b };
        }
        Mutation::Insert(i, b) => v.insert(at(i), b),
        Mutation::Delete(i) => {
            v.remove(at(i));
        }
        Mutation::Truncate(i) => v.truncate(at(i)),
    }
    v
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<usize>().prop_map(Mutation::Delete),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn valid_base() -> impl Strategy<Value = (Vec<u8>, CrcMode)> {
    let msgs: Vec<Vec<u8>> = ffd::testkit::valid_messages().into_iter().map(|(_, b)| b.to_vec()).collect();
    (prop::sample::select(msgs), prop::sample::select(vec![CrcMode::None, CrcMode::Header, CrcMode::HeaderAndBody]))
        .prop_map(|(m, mode)| {
            let mut head = [0u8; SESSION_HEADER_LEN];
            head.copy_from_slice(&m[..SESSION_HEADER_LEN]);
            let mut h = SessionHeader::read(&head);
            h.flags = h.flags.with_crc_mode(mode);
            let h = h.with_crc(&m[SESSION_HEADER_LEN..]);
            let mut out = h.to_bytes().to_vec();
            out.extend_from_slice(&m[SESSION_HEADER_LEN..]);
            (out, mode)
        })
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn d_mutated_messages_are_never_accepted_with_changed_content(
        (orig, mode) in valid_base(), m in mutation()
    ) {
        let mutated = apply(m, &orig);
        exercise(&mutated)?;
        let steps = replay(&mutated, &Limits::default());
        let orig_container = &orig[SESSION_HEADER_LEN..];
        for s in steps.iter().filter(|s| s.outcome.is_accepted()) {
            let frame = &mutated[s.range.clone()];
            // what would be stored is exactly what the FN sealed
            prop_assert_eq!(&frame[SESSION_HEADER_LEN..], orig_container, "{:?} accepted a changed container", m);
        }
        // a single changed byte in the CRC-covered part is always caught: the container
        // always; the session header too while its check-code mode is not switched off
        if let Mutation::FlipBit(i, _) | Mutation::Replace(i, _) = m {
            let i = i % orig.len();
            let header_covered = mode != CrcMode::None && i < 28 && !(i == 26 && mutated[26] & 0x3 == 0);
            if i >= SESSION_HEADER_LEN || header_covered {
                prop_assert!(steps.iter().all(|s| !s.outcome.is_accepted()), "{:?} at {} accepted: {:?}", m, i, steps);
            }
        }
    }
}

/// Deterministic complement of (d): every single-bit flip of every byte of the container
/// of one receipt is refused.
#[test]
fn every_single_bit_flip_in_a_container_is_refused() {
    let orig = ffd::testkit::receipt_message(FfdVersion::V1_2, 42, 3).to_vec();
    for i in SESSION_HEADER_LEN..orig.len() {
        for bit in 0..8 {
            let mut m = orig.clone();
            m[i] ^= 1 << bit;
            let steps = replay(&m, &Limits::default());
            assert!(steps.iter().all(|s| !s.outcome.is_accepted()), "flip of bit {bit} at {i} accepted");
        }
    }
    assert!(orig.len() > SESSION_HEADER_LEN + CONTAINER_HEADER_LEN);
}
