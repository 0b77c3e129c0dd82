//! The hostile-input catalogue (`ffd::testkit::hostile_catalogue`): every case produces
//! exactly its expected outcome through framing, the session check code and `inspect`,
//! and no hostile input is ever acknowledged with code 0.

use std::collections::HashSet;

use bytes::Bytes;
use ffd::ack::{AckFields, ResponseCode, build_ack_container, wrap_reply};
use ffd::error::Disposition;
use ffd::testkit::{Expect, HostileCase, hostile_catalogue, judge_frame, replay, valid_messages};
use ffd::{AckView, FrameStatus, Limits, Message, SoftwareSigner, check_frame, inspect};

fn catalogue() -> Vec<HostileCase> {
    hostile_catalogue()
}

#[test]
fn catalogue_is_large_and_names_are_unique() {
    let cases = catalogue();
    assert!(cases.len() >= 36, "only {} cases", cases.len());
    let names: HashSet<_> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len(), "duplicate case names");
}

#[test]
fn every_case_has_exactly_its_expected_outcomes() {
    let mut failures = Vec::new();
    for case in catalogue() {
        let got: Vec<Expect> = replay(&case.bytes, &case.limits).into_iter().map(|s| s.outcome).collect();
        if got != case.expectations() {
            failures.push(format!("{}: expected {:?}, got {got:?}", case.name, case.expectations()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same, step by step with the library calls themselves, so the expectation does not
/// rest on `replay` alone: frame the first message, verify, inspect, and check that the
/// error's disposition agrees with the expected class.
#[test]
fn first_frame_through_the_library_calls() {
    for case in catalogue() {
        let limits = case.limits;
        let name = case.name;
        match (check_frame(&case.bytes, &limits), case.expect) {
            (Err(e), Expect::Close { code }) => {
                assert_eq!(e.code(), code, "{name}");
                assert_eq!(e.disposition(), Disposition::Close, "{name}");
            }
            (Ok(FrameStatus::Incomplete(n)), Expect::CloseOnEof { missing }) => {
                assert_eq!(n, missing, "{name}");
                assert!(
                    Message::parse(case.bytes.clone(), &limits).is_err(),
                    "{name}: an incomplete frame must not parse"
                );
            }
            (Ok(FrameStatus::Complete { header, len }), expect) => {
                let msg = Message::new(header, case.bytes.slice(..len));
                let outcome = msg.verify_session_crc().and_then(|()| inspect(&msg, &limits));
                match (outcome, expect) {
                    (Err(e), Expect::Close { code }) => {
                        assert_eq!(e.code(), code, "{name}");
                        assert_eq!(e.disposition(), Disposition::Close, "{name}");
                    }
                    (Ok(insp), Expect::Respond { response_code, code }) => {
                        assert_eq!(insp.response_code().value(), response_code, "{name}");
                        match &insp.verdict {
                            Ok(()) => assert_eq!(code, "accepted", "{name}"),
                            Err(e) => {
                                assert_eq!(e.code(), code, "{name}");
                                assert_eq!(
                                    e.disposition(),
                                    Disposition::Respond(insp.response_code()),
                                    "{name}: disposition and response code disagree"
                                );
                            }
                        }
                    }
                    (got, want) => panic!("{name}: expected {want:?}, got {got:?}"),
                }
            }
            (got, want) => panic!("{name}: expected {want:?}, framing gave {got:?}"),
        }
    }
}

#[test]
fn no_hostile_input_is_accepted() {
    for case in catalogue() {
        // the only code-0 answer allowed is the valid first message of a case whose
        // hostile part follows it
        for (i, e) in case.expectations().iter().enumerate() {
            let hostile_part = i > 0 || case.trailing.is_none();
            assert!(!(hostile_part && e.is_accepted()), "{}: expectation {i} accepts", case.name);
        }
        // and under the default limits too (the gateway might run with them)
        let steps = replay(&case.bytes, &Limits::default());
        let accepted = steps.iter().filter(|s| s.outcome.is_accepted()).count();
        let allowed = usize::from(case.trailing.is_some());
        assert!(accepted <= allowed, "{}: {accepted} frames accepted under default limits", case.name);
        assert!(steps.last().is_some_and(|s| !s.outcome.is_accepted()), "{}: the stream ends accepted", case.name);
    }
}

#[test]
fn every_outcome_class_and_response_code_is_covered() {
    let all: Vec<Expect> = catalogue().iter().flat_map(|c| c.expectations()).collect();
    assert!(all.iter().any(|e| matches!(e, Expect::Close { .. })));
    assert!(all.iter().any(|e| matches!(e, Expect::CloseOnEof { .. })));
    for rc in [11, 14] {
        assert!(
            all.iter().any(|e| matches!(
                e,
                Expect::Respond { response_code, .. } if *response_code == rc
            )),
            "no case answered with {rc}"
        );
    }
    // every error code the crate can return for an FN message appears at least once
    let codes: HashSet<&str> = all
        .iter()
        .filter_map(|e| match e {
            Expect::Close { code } | Expect::Respond { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    for code in [
        "bad_signature",
        "bad_session_version",
        "bad_flags",
        "body_too_large",
        "session_crc_mismatch",
        "unsupported_channel",
        "container_too_short",
        "container_length_mismatch",
        "container_crc_mismatch",
        "bad_message_type",
        "bad_container_version",
        "bad_fn_bcd",
        "unknown_document_type",
        "empty_document",
        "flk_truncated",
        "flk_depth_exceeded",
        "too_many_requisites",
        "flk_document_too_large",
        "flk_value_too_long",
        "flk_bad_value_length",
        "flk_missing_requisite",
        "flk_fd_mismatch",
        "session_fn_mismatch",
        "flk_fn_mismatch_document",
    ] {
        assert!(codes.contains(code), "no case covers {code}");
    }
}

/// Respond-class cases get a well-formed acknowledgment naming the container's FN and FD
/// with the expected code, which the register side parses back.
#[test]
fn respond_cases_get_a_parseable_ack_with_their_code() {
    let signer = SoftwareSigner::new(b"hostile test key");
    for case in catalogue() {
        let Expect::Respond { response_code, .. } = case.expect else {
            continue;
        };
        let msg = Message::parse(case.bytes.slice(..replay(&case.bytes, &case.limits)[0].range.end), &case.limits)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let insp = inspect(&msg, &case.limits).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let fields = AckFields {
            fn_number: insp.fn_number(),
            fd: insp.fd(),
            code: insp.response_code(),
            time: 1_726_400_816,
            ofd_inn: AckFields::pad_inn("7704211201"),
            service1: insp.header().service1,
        };
        let reply = wrap_reply(msg.header(), &build_ack_container(&fields, &signer));
        let (_, view) = AckView::parse_reply(reply).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(view.code, Some(ResponseCode::from_value(response_code)), "{}", case.name);
        assert_eq!((view.fn_number, view.fd), (insp.fn_number(), insp.fd()));
    }
}

#[test]
fn valid_messages_are_accepted() {
    let valid = valid_messages();
    assert!(valid.len() >= 19);
    for (name, bytes) in valid {
        let steps = replay(&bytes, &Limits::default());
        assert_eq!(steps.len(), 1, "{name}");
        assert_eq!(steps[0].range, 0..bytes.len(), "{name}");
        assert!(steps[0].outcome.is_accepted(), "{name}: {:?}", steps[0]);
        let msg = Message::parse(bytes, &Limits::default()).expect("frames");
        let insp = inspect(&msg, &Limits::default()).expect("intact");
        assert!(insp.summary().is_some(), "{name}: plaintext expected");
    }
}

/// Each hostile case as a connection would deliver it: in two reads split at every
/// offset of the first 64 bytes. The read loop's outcome must not depend on the split.
#[test]
fn outcomes_do_not_depend_on_how_reads_split_the_stream() {
    for case in catalogue().into_iter().filter(|c| c.bytes.len() < 4096) {
        for split in 1..case.bytes.len().min(64) {
            let head = &case.bytes[..split];
            match check_frame(head, &case.limits) {
                Ok(FrameStatus::Incomplete(_)) => {}
                // an early verdict on a prefix must be the verdict on the whole
                Err(e) => assert_eq!(Expect::Close { code: e.code() }, case.expect, "{} split at {split}", case.name),
                Ok(FrameStatus::Complete { header, len }) => assert_eq!(
                    judge_frame(Message::new(header, Bytes::copy_from_slice(&head[..len])), &case.limits),
                    case.expect,
                    "{} split at {split}",
                    case.name
                ),
            }
        }
    }
}

// ------------------------------------------------------------------ fuzz corpus

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus");

/// The seeds of both fuzz targets: samples, valid messages (also with session check
/// codes), a ping, and every hostile case. `tlv_decoder` takes the form code byte and the
/// container data of each message long enough to have a container.
fn fuzz_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    use ffd::session::{CrcMode, SessionHeader};
    let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
    let samples_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/samples");
    let mut samples: Vec<_> =
        std::fs::read_dir(samples_dir).expect("samples").filter_map(Result::ok).map(|e| e.path()).collect();
    samples.sort();
    for p in samples {
        let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        frames.push((format!("sample-{name}"), std::fs::read(&p).expect("sample")));
    }
    for (name, bytes) in valid_messages() {
        frames.push((format!("valid-{name}"), bytes.to_vec()));
        for (tag, mode) in [("crc1", CrcMode::Header), ("crc2", CrcMode::HeaderAndBody)] {
            let mut head = [0u8; 30];
            head.copy_from_slice(&bytes[..30]);
            let mut h = SessionHeader::read(&head);
            h.flags = h.flags.with_crc_mode(mode);
            let mut out = h.with_crc(&bytes[30..]).to_bytes().to_vec();
            out.extend_from_slice(&bytes[30..]);
            frames.push((format!("valid-{name}-{tag}"), out));
        }
    }
    frames.push((
        "ping-key-update".to_owned(),
        hex::decode("dd80caa182a100013939393939393939393939393939393900001000 0000".replace(' ', "")).expect("hex"),
    ));
    for case in catalogue() {
        frames.push((format!("hostile-{}", case.name), case.bytes.to_vec()));
    }
    let mut seeds = Vec::new();
    for (name, bytes) in &frames {
        seeds.push(("session_frame", name.clone(), bytes.clone()));
        if bytes.len() >= 62 && bytes.len() <= 40_000 {
            let mut doc = vec![bytes[35]];
            doc.extend_from_slice(&bytes[62..]);
            seeds.push(("tlv_decoder", name.clone(), doc));
        }
    }
    seeds
}

/// The committed corpus holds every seed byte for byte. `FFD_UPDATE_CORPUS=1` rewrites
/// them (after the catalogue or the builders change).
#[test]
fn fuzz_corpus_holds_every_seed() {
    let update = std::env::var_os("FFD_UPDATE_CORPUS").is_some();
    let mut stale = Vec::new();
    for (target, name, bytes) in fuzz_seeds() {
        let dir = format!("{CORPUS}/{target}");
        let path = format!("{dir}/{name}");
        if update {
            std::fs::create_dir_all(&dir).expect("corpus dir");
            std::fs::write(&path, &bytes).expect("write seed");
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(path);
        }
    }
    assert!(stale.is_empty(), "stale or missing seeds (run with FFD_UPDATE_CORPUS=1): {stale:?}");
}

/// Every committed corpus file (seeds, and inputs saved from fuzzing runs and crashes)
/// goes through the read loop and the decoders without panicking, and the read loop's
/// steps tile the stream.
#[test]
fn committed_fuzz_corpus_replays() {
    let limits = Limits::default();
    let mut n = 0;
    for target in ["session_frame", "tlv_decoder"] {
        let Ok(entries) = std::fs::read_dir(format!("{CORPUS}/{target}")) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let bytes = std::fs::read(entry.path()).expect("corpus file");
            let steps = replay(&bytes, &limits);
            let mut pos = 0;
            for s in &steps {
                assert_eq!(s.range.start, pos, "{:?}", entry.path());
                pos = s.range.end;
            }
            let b = Bytes::from(bytes);
            let _ = AckView::parse_reply(b.clone());
            let data = b.slice(1.min(b.len())..);
            let _ = ffd::document::Document::decode(&data, &limits);
            let _ = ffd::document::Document::decode_lenient(&data, &limits).map(|(d, _)| ffd::json::to_fns_json(&d));
            n += 1;
        }
    }
    assert!(n >= 100, "only {n} corpus files");
}
