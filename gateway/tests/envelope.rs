//! A garbled envelope never shadows the genuine document (docs/verdict.md): through the
//! running gateway, a copy of a valid receipt with its 30-byte session header changed is
//! sent first, then the genuine message, then the genuine message again. Whatever the copy
//! got, the genuine message is acknowledged with code 0, the retransmission gets the
//! byte-identical reply, and the store holds exactly the genuine container with code 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use ffd::session::{CrcMode, SESSION_HEADER_LEN, SessionHeader};
use ffd::{AckView, ResponseCode};
use storage::model::DocumentKey;
use tokio::io::AsyncWriteExt;

/// Sends `msg` on a fresh connection, ends the write side (so a frame that claims more
/// bytes ends at EOF instead of waiting for the frame timeout), and returns the reply, or
/// `None` if the gateway closed without one.
async fn attempt(addr: SocketAddr, msg: &[u8]) -> Option<Bytes> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(msg).await.unwrap();
    let _ = s.shutdown().await;
    tokio::time::timeout(Duration::from_secs(10), read_reply(&mut s)).await.expect("answered or closed in time")
}

fn code_of(reply: &Bytes) -> ResponseCode {
    let (_, ack) = AckView::parse_reply(reply.clone()).expect("a well-formed acknowledgment");
    ack.code.expect("1022 present")
}

/// A copy with one thing in its session header changed.
fn garble(msg: &Bytes, how: &str) -> Bytes {
    let mut m = msg.to_vec();
    let mut h = SessionHeader::read(m[..SESSION_HEADER_LEN].try_into().unwrap());
    let body = msg.slice(SESSION_HEADER_LEN..);
    match how {
        "p_version" => h.p_version = [h.p_version[0] ^ 0x01, h.p_version[1] ^ 0x40],
        "flags_bit" => h.flags.0 ^= 0x0100,
        "crc_field" => h.crc ^= 0x5A5A, // CRC mode 0: the field is not checked
        "claimed_crc_mismatch" => {
            h.flags = h.flags.with_crc_mode(CrcMode::HeaderAndBody);
            h = h.with_crc(&body);
            h.crc ^= 1;
        }
        "session_fn_digit" => {
            let last = h.fn_number[15];
            h.fn_number[15] = if last == b'9' { b'0' } else { last + 1 };
        }
        other => panic!("unknown garbling {other}"),
    }
    m[..SESSION_HEADER_LEN].copy_from_slice(&h.to_bytes());
    Bytes::from(m)
}

/// Garbled copy first, genuine second, genuine again: the genuine one gets code 0, the
/// retransmission the same bytes, the store the genuine container with code 0.
async fn check_not_shadowed(gw: &TestGateway, genuine: &Bytes, copy: &Bytes) -> Option<Bytes> {
    let copy_reply = attempt(gw.tcp(), copy).await;
    let second = attempt(gw.tcp(), genuine).await.expect("the genuine message is answered");
    assert_eq!(code_of(&second), ResponseCode::Accepted, "the genuine message is accepted");
    let third = attempt(gw.tcp(), genuine).await.expect("the retransmission is answered");
    assert_eq!(third, second, "a retransmission gets the byte-identical reply");
    if let Some(c) = &copy_reply {
        assert_eq!(&c[SESSION_HEADER_LEN..], &second[SESSION_HEADER_LEN..], "one acknowledgment per document");
    }
    let h = SessionHeader::read(genuine[..SESSION_HEADER_LEN].try_into().unwrap());
    let container = ffd::container::Container::parse(genuine.slice(SESSION_HEADER_LEN..), 0xA5).unwrap();
    let key = DocumentKey { fn_number: h.fn_number(), fd: container.header().fd };
    let stored = gw.store().get_document(&key).await.unwrap().expect("stored");
    assert_eq!(stored.raw, genuine.slice(SESSION_HEADER_LEN..), "the genuine container is what is stored");
    assert_eq!(stored.response_code, 0, "stored as accepted");
    assert_eq!(stored.flk_error, None);
    assert_eq!(&stored.ack[..], &second[SESSION_HEADER_LEN..], "the stored ack is the one sent");
    copy_reply
}

#[tokio::test]
async fn each_envelope_variation_then_the_genuine_message() {
    let gw = start().await;
    let regs = registers(2, 910);
    for (r, _) in &regs {
        gw.onboard(r.clone()).await;
    }
    let id = &regs[0].1;
    // (variation, is the copy itself answered with code 0?)
    let cases = [
        ("p_version", true),
        ("flags_bit", true),
        ("crc_field", true),
        ("claimed_crc_mismatch", false),
        ("session_fn_digit", false),
    ];
    for (fd, (how, copy_acked)) in (1u32..).zip(cases) {
        let genuine = receipt_message(id, fd);
        let copy = garble(&genuine, how);
        let copy_reply = check_not_shadowed(&gw, &genuine, &copy).await;
        match copy_reply {
            Some(r) => {
                assert!(copy_acked, "{how}: the copy was answered");
                assert_eq!(code_of(&r), ResponseCode::Accepted, "{how}");
            }
            None => assert!(!copy_acked, "{how}: the copy got no answer"),
        }
    }
    // a session FN that names another onboarded register: refused all the same
    let genuine = receipt_message(id, 100);
    let mut copy = genuine.to_vec();
    copy[8..24].copy_from_slice(regs[1].0.fn_number.as_bytes());
    assert!(check_not_shadowed(&gw, &genuine, &Bytes::from(copy)).await.is_none());
    // the refusals are counted by their reason (the recorder is process-wide and the
    // property test below adds its own, so at least ours)
    let text = metrics_text(&gw).await;
    assert!(metric_value(&text, "ofd_gateway_protocol_errors_total", &[("code", "session_fn_mismatch")]) >= 2.0);
    assert!(metric_value(&text, "ofd_gateway_protocol_errors_total", &[("code", "session_crc_mismatch")]) >= 1.0);
    gw.stop().await;
}

/// Random envelope mutations (1–3 bytes of the session header) of random valid receipts,
/// each on its own FD: never change what is stored, never prevent the genuine code 0.
#[test]
fn random_envelope_mutations_never_shadow_the_document() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let gw = rt.block_on(start());
    let mut ids = Vec::new();
    for (i, (r, mut id)) in registers(3, 930).into_iter().enumerate() {
        rt.block_on(gw.onboard(r));
        id.ffd = [ffd::FfdVersion::V1_05, ffd::FfdVersion::V1_1, ffd::FfdVersion::V1_2][i];
        ids.push(id);
    }
    let next_fd = AtomicU32::new(1);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 96, ..ProptestConfig::default() });
    runner
        .run(&(0usize..3, prop::collection::vec((0usize..SESSION_HEADER_LEN, 1u8..=255), 1..4)), |(who, edits)| {
            let fd = next_fd.fetch_add(1, Ordering::Relaxed);
            let genuine = receipt_message(&ids[who], fd);
            let mut copy = genuine.to_vec();
            for (at, xor) in edits {
                copy[at] ^= xor;
            }
            rt.block_on(check_not_shadowed(&gw, &genuine, &Bytes::from(copy)));
            Ok(())
        })
        .unwrap();
    rt.block_on(gw.stop());
}
