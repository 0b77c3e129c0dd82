//! The hostile-input catalogue of `ffd::testkit` (≥ 50 named malformed or hostile inputs,
//! each with its documented answer) sent over real TCP connections: every case gets
//! exactly its expected outcome — an acknowledgment with code 11 or 14 (and the document
//! stored), a ping answer, or a close without any answer counted under the expected error
//! code — and no case is ever acknowledged with code 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use ffd::testkit::{Expect, HostileCase, hostile_catalogue};
use ffd::{AckView, ResponseCode};
use storage::model::DocumentKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn onboard_catalogue_fns(gw: &TestGateway) {
    gw.onboard(s1_register()).await;
    // the catalogue's own FN, on another register (its RNM check code is valid)
    let inn = storage::Inn::parse("7702203276").unwrap();
    let rnm = storage::Rnm::compose(6, &inn, "000000000003");
    gw.onboard(register(rnm.as_str(), "7702203276", "000000000003", ffd::testkit::TEST_FN)).await;
}

/// Reads exactly one reply, or `None` when the gateway closes first.
async fn next_reply(s: &mut tokio::net::TcpStream) -> Option<Bytes> {
    tokio::time::timeout(Duration::from_secs(10), read_reply(s)).await.expect("the gateway answers or closes in time")
}

async fn run_case(gw: &TestGateway, case: &HostileCase) {
    let mut s = tokio::net::TcpStream::connect(gw.tcp()).await.unwrap();
    // the peer may already have closed (a refused signature); that is not an error here
    let _ = s.write_all(&case.bytes).await;
    let _ = s.shutdown().await;
    for expect in case.expectations() {
        match expect {
            Expect::Respond { response_code, code } => {
                let reply =
                    next_reply(&mut s).await.unwrap_or_else(|| panic!("{}: expected an ack ({code})", case.name));
                let (_, ack) = AckView::parse_reply(reply).unwrap_or_else(|e| panic!("{}: bad ack: {e}", case.name));
                let got = ack.code.map(ResponseCode::value);
                assert_eq!(got, Some(response_code), "{}: response code", case.name);
                let key = DocumentKey { fn_number: ack.fn_number, fd: ack.fd };
                let stored = gw.store().get_document(&key).await.unwrap();
                let stored = stored.unwrap_or_else(|| panic!("{}: an acknowledged document must be stored", case.name));
                assert_eq!(stored.response_code, response_code, "{}", case.name);
            }
            Expect::Ping => {
                let mut head = [0u8; 30];
                s.read_exact(&mut head).await.unwrap_or_else(|e| panic!("{}: ping answer: {e}", case.name));
                assert_eq!(&head[..4], &case.bytes[..4], "{}", case.name);
            }
            Expect::Close { .. } | Expect::CloseOnEof { .. } => {
                let mut rest = Vec::new();
                let n = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
                    .await
                    .unwrap_or_else(|_| panic!("{}: the gateway must close", case.name))
                    .unwrap_or(0);
                assert_eq!(n, 0, "{}: no answer may be sent, got {n} bytes", case.name);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_case_gets_its_documented_answer() {
    let catalogue = hostile_catalogue();
    assert!(catalogue.len() >= 30, "the catalogue has {} cases", catalogue.len());
    let gw = start().await;
    onboard_catalogue_fns(&gw).await;
    for case in &catalogue {
        // cases that are answered store a document, and several reuse the same (FN, FD):
        // each gets a fresh gateway, or the second would rightly be answered as a
        // retransmission of the first
        let responds = case.expectations().iter().any(|e| matches!(e, Expect::Respond { .. }));
        let own = if responds || case.limits != ffd::Limits::default() {
            let limits = case.limits;
            let g = start_with(move |c| c.limits.max_requisites = limits.max_requisites).await;
            onboard_catalogue_fns(&g).await;
            Some(g)
        } else {
            None
        };
        let target = own.as_ref().unwrap_or(&gw);
        let before = gateway::metrics::install().render();
        run_case(target, case).await;
        if let Expect::Close { code } = case.expect {
            // counted under its code (the counter is per process: compare with before)
            let mut after = String::new();
            for _ in 0..50 {
                after = gateway::metrics::install().render();
                let d = metric_value(&after, "ofd_gateway_protocol_errors_total", &[("code", code)])
                    - metric_value(&before, "ofd_gateway_protocol_errors_total", &[("code", code)]);
                if d >= 1.0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let d = metric_value(&after, "ofd_gateway_protocol_errors_total", &[("code", code)])
                - metric_value(&before, "ofd_gateway_protocol_errors_total", &[("code", code)]);
            assert!(d >= 1.0, "{}: close counted under {code}", case.name);
        }
        if let Some(g) = own {
            g.stop().await;
        }
    }
    // code 0 only where the catalogue has a valid message before the hostile bytes
    let valid_prefixes = catalogue.iter().flat_map(HostileCase::expectations).filter(Expect::is_accepted).count();
    assert!(valid_prefixes < catalogue.len() / 10, "the catalogue is about hostile input");
    let text = gateway::metrics::install().render();
    let accepted = metric_value(&text, "ofd_gateway_documents_acknowledged_total", &[("code", "0")]);
    assert_eq!(accepted, valid_prefixes as f64, "only the valid prefixes were accepted");
    // and the gateway still serves a valid document afterwards
    let reply = tcp_exchange(gw.tcp(), S1).await.expect("still serving");
    assert_eq!(AckView::parse_reply(reply).unwrap().1.code, Some(ResponseCode::Accepted));
    eprintln!("{} hostile cases answered as documented", catalogue.len());
    gw.stop().await;
}
