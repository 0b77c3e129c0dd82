//! Document bytes: the tree decoders (strict and lenient), FNS JSON, re-encoding, and the
//! hot-path walker of `inspect` reached through a crafted, correctly sealed container.
//!
//! Input: byte 0 is the container's form code, the rest is the container data (document
//! TLV, then trailer). The two validators — `Document::decode` and `inspect` — must agree.
#![no_main]

use bytes::Bytes;
use ffd::container::{ContainerSpec, MSG_FROM_FN};
use ffd::document::{Document, Field, Value};
use ffd::json::to_fns_json;
use ffd::session::{SESSION_HEADER_LEN, SessionHeader};
use ffd::{Body, FnNumber, Limits, Message, inspect};
use libfuzzer_sys::fuzz_target;

fn count(fields: &[Field]) -> u32 {
    fields.iter().map(|f| 1 + f.value.fields().map_or(0, count)).sum()
}

fuzz_target!(|input: &[u8]| {
    let Some((&code, data)) = input.split_first() else {
        return;
    };
    let limits = Limits::default();
    let data = Bytes::copy_from_slice(&data[..data.len().min(limits.max_body_len - 32)]);

    let strict = Document::decode(&data, &limits);
    let lenient = Document::decode_lenient(&data, &limits);
    if let Ok((doc, trailer)) = &strict {
        assert!(trailer.len() <= data.len());
        assert_eq!(lenient.as_ref().map(|(d, _)| d), Ok(doc), "strict ok => lenient same");
        let _ = to_fns_json(doc);
        if let Some(again) = doc.try_encode() {
            let (doc2, rest) = Document::decode(&Bytes::from(again), &limits)
                .expect("a decoded tree re-encodes into a decodable document");
            assert_eq!(&doc2, doc);
            assert!(rest.is_empty());
        }
    }
    if let Ok((doc, _)) = &lenient {
        let _ = to_fns_json(doc);
        for f in &doc.fields {
            if let Value::Str(_) = f.value {
                let _ = f.value.text();
            }
        }
    }

    // the same bytes inside a sealed container from the FN the session header names; FN
    // and FD are taken from the document when it states them, so the accepting path is
    // reachable
    let stated = lenient.as_ref().ok().map(|(d, _)| d);
    let fn_ = stated
        .and_then(|d| d.get(1041))
        .and_then(Value::bytes)
        .and_then(|b| <[u8; 16]>::try_from(&b[..]).ok())
        .map(|raw| FnNumber::from_ascii(&raw))
        .filter(|f| FnNumber::from_bcd(&f.to_bcd()).is_ok_and(|back| back == *f))
        .unwrap_or_else(|| FnNumber::from_ascii(b"9999078900005488"));
    let fd = stated.and_then(|d| d.get(1040)).and_then(Value::as_u64).map_or(1, |v| (v & 0x00FF_FFFF) as u32);
    let container = ContainerSpec {
        msg_type: MSG_FROM_FN,
        doc_type: code,
        service1: ContainerSpec::SERVICE1,
        fn_number: fn_,
        fd,
        service2_head: [0; 10],
    }
    .build(&data, &[]);
    let header = SessionHeader::for_register(&fn_, [1, 5], container.len() as u16);
    let mut frame = header.to_bytes().to_vec();
    frame.extend_from_slice(&container);
    let msg = Message::parse(Bytes::from(frame), &limits).expect("a sealed message frames");
    assert_eq!(msg.frame().len(), SESSION_HEADER_LEN + container.len());
    let insp = inspect(&msg, &limits).expect("an intact container is never closed on");
    if let (Body::Plain(summary), Ok(())) = (&insp.body, &insp.verdict) {
        // what the hot path accepts, the tree decoder decodes, requisite for requisite
        let (doc, _) = strict.as_ref().expect("inspect accepted what decode refused");
        assert_eq!(summary.requisites, count(&doc.fields));
        assert_eq!(doc.doc_type, u16::from(code));
    }
});
