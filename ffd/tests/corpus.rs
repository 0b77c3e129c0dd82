//! The stored bytes of the existing test corpus, re-judged and re-decoded with the current
//! tag table (issue 16): the captured samples, every committed fuzz input
//! (`ffd/fuzz/corpus`), and the seed bytes that were in the corpus before the builders
//! changed (`ffd/tests/corpus_before_16`).
//!
//! * No document the former table accepted is refused now: `data/corpus_verdicts_before_16.tsv`
//!   holds, per input (by SHA-256), the outcomes under the table at commit 690fec7 (computed
//!   once with that commit's `testkit::replay` and `inspect`).
//! * Every intact container decodes (leniently), renders as FNS JSON, and that JSON reads
//!   back — nothing stored becomes unreadable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ffd::container::{Container, ContainerSpec, MSG_FROM_FN, MSG_FROM_OFD};
use ffd::document::{Document, Value};
use ffd::json::{from_fns_json, to_fns_json_with_trailer};
use ffd::session::{SESSION_HEADER_LEN, SessionHeader};
use ffd::testkit::{Expect, replay};
use ffd::{Body, FlkError, FnNumber, Limits, Message, inspect};
use sha2::{Digest, Sha256};

const BEFORE: &str = include_str!("data/corpus_verdicts_before_16.tsv");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.map(|e| e.path()).unwrap_or_default())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// A stored document must decode (leniently), render and read back — unless its own
/// top-level TLV structure is broken, which no table could read (and none did before).
fn readable(data: &Bytes, what: &str, accepted: bool) {
    let (doc, trailer) = match Document::decode_lenient(data, &Limits::default()) {
        Ok(d) => d,
        Err(FlkError::Truncated { .. }) if !accepted => return,
        Err(e) => panic!("{what}: stored document no longer decodes: {e}"),
    };
    let json = to_fns_json_with_trailer(&doc, &trailer);
    let back = from_fns_json(&json).unwrap_or_else(|e| panic!("{what}: its FNS JSON does not read back: {e}\n{json}"));
    assert_eq!(back.document.doc_type, doc.doc_type, "{what}");
}

fn outcome(e: &Expect) -> String {
    match e {
        Expect::Close { code } => format!("close:{code}"),
        Expect::CloseOnEof { .. } => "eof".into(),
        Expect::Respond { response_code: 0, .. } => "accepted".into(),
        Expect::Respond { code, .. } => (*code).into(),
        Expect::Ping => "ping".into(),
    }
}

/// A session stream: the outcome of every frame, and each answered container re-decoded.
fn session_stream(bytes: &[u8], what: &str) -> Vec<String> {
    let limits = Limits::default();
    let steps = replay(bytes, &limits);
    for step in &steps {
        if let Expect::Respond { .. } = step.outcome {
            let msg = Message::parse(Bytes::copy_from_slice(&bytes[step.range.clone()]), &limits).expect("framed");
            let insp = inspect(&msg, &limits).expect("answered");
            if insp.summary().is_some() {
                readable(&insp.container.data(), what, insp.verdict.is_ok());
            }
        }
    }
    steps.iter().map(|s| outcome(&s.outcome)).collect()
}

/// A `tlv_decoder` input (form code, container data) sealed into a container as the fuzz
/// target does, judged, and decoded.
fn sealed(bytes: &[u8], what: &str) -> String {
    let Some((&code, data)) = bytes.split_first() else { return "empty".into() };
    let limits = Limits::default();
    let data = Bytes::copy_from_slice(&data[..data.len().min(limits.max_body_len - 32)]);
    let lenient = Document::decode_lenient(&data, &limits);
    let stated = lenient.as_ref().ok().map(|(d, _)| d);
    let fn_number = stated
        .and_then(|d| d.get(1041))
        .and_then(Value::bytes)
        .and_then(|b| <[u8; 16]>::try_from(&b[..]).ok())
        .map(|raw| FnNumber::from_ascii(&raw))
        .filter(|f| FnNumber::from_bcd(&f.to_bcd()).is_ok_and(|back| back == *f))
        .unwrap_or_else(|| FnNumber::from_ascii(b"9999078900005488"));
    let fd = stated.and_then(|d| d.get(1040)).and_then(Value::as_u64).map_or(1, |v| (v & 0x00FF_FFFF) as u32);
    let spec = ContainerSpec {
        msg_type: MSG_FROM_FN,
        doc_type: code,
        service1: ContainerSpec::SERVICE1,
        fn_number,
        fd,
        service2_head: [0; 10],
    };
    let container = spec.build(&data, &[]);
    let header = SessionHeader::for_register(&fn_number, [1, 5], u16::try_from(container.len()).unwrap_or(u16::MAX));
    let mut frame = header.to_bytes().to_vec();
    frame.extend_from_slice(&container);
    let msg = Message::parse(Bytes::from(frame), &limits).expect("a sealed message frames");
    assert_eq!(msg.frame().len(), SESSION_HEADER_LEN + container.len());
    match inspect(&msg, &limits) {
        Ok(i) => {
            if i.summary().is_some() {
                readable(&i.container.data(), what, i.verdict.is_ok());
            }
            match (&i.body, &i.verdict) {
                (Body::Plain(_), Ok(())) => "accepted".into(),
                (Body::Opaque, Ok(())) => "opaque".into(),
                (_, Err(e)) => e.code().into(),
            }
        }
        Err(e) => format!("close:{}", e.code()),
    }
}

#[test]
fn stored_corpus_is_judged_no_worse_and_stays_readable() {
    let before: HashMap<&str, Vec<&str>> = BEFORE
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut c = l.split('\t');
            let hash = c.next()?;
            let _target = c.next()?;
            Some((hash, c.next()?.split(',').collect()))
        })
        .collect();
    let (mut inputs, mut compared, mut now_accepted) = (0, std::collections::HashSet::new(), 0);
    for target in ["session_frame", "tlv_decoder"] {
        for dir in [root().join("fuzz/corpus").join(target), root().join("tests/corpus_before_16").join(target)] {
            for f in files(&dir) {
                let bytes = std::fs::read(&f).expect("read");
                let what = f.display().to_string();
                let now: Vec<String> =
                    if target == "session_frame" { session_stream(&bytes, &what) } else { vec![sealed(&bytes, &what)] };
                inputs += 1;
                let hash = hex::encode(Sha256::digest(&bytes));
                let Some(old) = before.get(hash.as_str()) else { continue };
                compared.insert(hash.clone());
                assert_eq!(old.len(), now.len(), "{what}: frames {old:?} then, {now:?} now");
                for (o, n) in old.iter().zip(&now) {
                    assert!(
                        *o != "accepted" || n == "accepted",
                        "{what}: accepted before, now {n} ({old:?} → {now:?})"
                    );
                    if *o != "accepted" && n == "accepted" {
                        now_accepted += 1;
                    }
                }
            }
        }
    }
    assert!(inputs >= 850, "{inputs} inputs");
    assert_eq!(compared.len(), before.len(), "every input of the former corpus was found and compared");
    // the maxima raised toward accepting turn some former code-14 inputs into accepted ones
    eprintln!(
        "{inputs} inputs, {} compared with the former table, {now_accepted} frames accepted now that were refused",
        compared.len()
    );
}

#[test]
fn captured_samples_stay_readable() {
    for f in files(&root().join("tests/samples")) {
        let bytes = Bytes::from(std::fs::read(&f).expect("read"));
        let what = f.display().to_string();
        // the samples are whole messages (S1), bare headers (S2a) or containers
        let body = if bytes.len() > SESSION_HEADER_LEN && bytes[..4] == [0x2a, 0x08, 0x41, 0x0a] {
            bytes.slice(SESSION_HEADER_LEN..)
        } else {
            bytes.clone()
        };
        let container = Container::parse(body.clone(), MSG_FROM_FN).or_else(|_| Container::parse(body, MSG_FROM_OFD));
        if let Ok(c) = container {
            readable(&c.data(), &what, true);
        }
    }
}
