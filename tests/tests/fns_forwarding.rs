//! FNS forwarding with the real gateway, `adminctl` and the real `fns-receiver`: every
//! accepted document reaches the receiver exactly once under normal operation — across a
//! graceful restart and a kill -9 of an idle gateway — in FNS JSON form, with its delivery
//! state and the backlog visible in the admin API and the metrics; with a receiver that
//! fails a third of the requests and a kill -9 in the middle of forwarding, every
//! document still arrives (at least once).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fns_support;

use std::time::Duration;

use bytes::Bytes;
use e2e::{GatewayProcess, TestRegister, assert_exit, http_request, json_of, unix_now};
use fns_support::*;

fn receipts(regs: &[TestRegister], fds: std::ops::RangeInclusive<u32>, t: u32) -> Vec<Bytes> {
    let mut out = Vec::new();
    for fd in fds {
        for r in regs {
            out.push(r.receipt(fd, t + fd));
        }
    }
    out
}

/// Waits until the gateway has recorded every delivery (its backlog, read through the
/// admin API, is empty). The receiver counting a document only says that it was sent: the
/// gateway records the delivery just after the answer, so a kill -9 before that record
/// would (correctly) send it again — "idle" means both sides are done.
fn wait_idle(gw: &GatewayProcess) {
    let token = gw.dev_token().unwrap();
    wait_for(Duration::from_secs(30), "an empty FNS backlog", || {
        let (status, v) = gw.http("GET", "/v1/fns", Some(&token), None);
        (status == 200 && v["backlog"]["pending"] == 0).then_some(())
    });
}

#[test]
fn every_accepted_document_reaches_the_receiver_exactly_once_across_restarts() {
    let rx = Receiver::start(&[]);
    let mut gw = GatewayProcess::start(opts(Some(&rx.url())));
    let regs: Vec<TestRegister> = (6101..=6104).map(TestRegister::new).collect();
    for r in &regs {
        onboard(&gw, r);
    }
    let t = unix_now();
    let rx = &rx;
    let unique = |n: u64| move || (rx.stat("unique") >= n).then_some(());

    send_all(gw.tcp(), receipts(&regs, 1..=50, t), 4);
    wait_for(Duration::from_secs(30), "200 documents at the receiver", unique(200));
    wait_idle(&gw);

    // graceful restart
    gw.restart();
    send_all(gw.tcp(), receipts(&regs, 51..=100, t), 4);
    wait_for(Duration::from_secs(30), "400 documents at the receiver", unique(400));
    wait_idle(&gw);

    // kill -9 of an idle gateway, then a restart
    gw.kill_9();
    gw.restart();
    send_all(gw.tcp(), receipts(&regs, 101..=125, t), 4);
    wait_for(Duration::from_secs(30), "500 documents at the receiver", unique(500));
    // every delivery recorded (the admin API's backlog below reads it)
    wait_idle(&gw);

    // a retransmission of an acknowledged document is answered, not forwarded again
    send_all(gw.tcp(), vec![regs[0].receipt(7, t + 7)], 1);
    std::thread::sleep(Duration::from_millis(500));
    let s = rx.stats();
    assert_eq!(s["unique"], 500, "{s}");
    assert_eq!(s["received"], 500, "exactly once: {s}");
    assert_eq!(s["duplicates"], 0, "{s}");

    // what arrived: the FNS JSON form with metadata
    let r0 = &regs[0];
    let d = rx.get(&format!("/documents/{}/7", r0.fn_number));
    assert_eq!(d["deliveries"], 1);
    assert_eq!(d["body"]["format"], "json");
    assert_eq!(d["body"]["rnm"], r0.rnm.as_str());
    assert_eq!(d["body"]["document"]["receipt"]["fiscalDocumentNumber"], 7, "{d}");

    // the admin API: forwarding on, empty backlog, per-document delivery state
    let token = gw.dev_token().unwrap();
    let (status, v) = gw.http("GET", "/v1/fns", Some(&token), None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["backlog"]["pending"], 0, "{v}");
    let (status, v) = gw.http("GET", &format!("/v1/fns/deliveries/{}/7", r0.fn_number), Some(&token), None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "delivered");
    assert_eq!(v["attempts"], 1);
    // and the same through adminctl
    let out = gw.adminctl(&["-o", "json", "fns", "status"]);
    assert_exit(&out, 0);
    assert_eq!(json_of(&out)["backlog"]["pending"], 0);
    let out = gw.adminctl(&["-o", "json", "fns", "delivery", &r0.fn_number.to_string(), "7"]);
    assert_exit(&out, 0);
    assert_eq!(json_of(&out)["status"], "delivered");
    assert_exit(&gw.adminctl(&["fns", "delivery", &r0.fn_number.to_string(), "999999"]), 4);

    // the metrics: deliveries by result, backlog gauges, no register labels
    let metrics = wait_for(Duration::from_secs(10), "backlog gauge at 0", || {
        let (_, m) = http_request(gw.addrs().metrics.unwrap(), "GET", "/metrics", None, None);
        let m = m.as_str().unwrap_or_default().to_owned();
        m.contains("ofd_gateway_fns_backlog_documents 0").then_some(m)
    });
    assert!(metrics.contains("ofd_gateway_fns_deliveries_total{result=\"delivered\"}"), "{metrics}");
    assert!(metrics.contains("ofd_gateway_fns_backlog_oldest_age_seconds 0"));
    assert!(metrics.contains("ofd_gateway_fns_partitions_leased 64"));
    assert!(!metrics.contains(r0.fn_number.to_string().as_str()), "no FN in any label");
}

#[test]
fn with_a_failing_receiver_and_a_crash_every_document_still_arrives() {
    let rx = Receiver::start(&["--fail-ratio", "0.3"]);
    let mut gw = GatewayProcess::start(opts(Some(&rx.url())));
    let regs: Vec<TestRegister> = (6201..=6203).map(TestRegister::new).collect();
    for r in &regs {
        onboard(&gw, r);
    }
    let t = unix_now();
    send_all(gw.tcp(), receipts(&regs, 1..=100, t), 3);
    // crash while deliveries and retries are under way
    wait_for(Duration::from_secs(30), "some deliveries", || (rx.stat("unique") >= 50).then_some(()));
    gw.kill_9();
    gw.restart();
    wait_for(Duration::from_secs(60), "all 300 documents", || (rx.stat("unique") >= 300).then_some(()));
    let s = rx.stats();
    assert_eq!(s["unique"], 300, "{s}");
    assert!(s["injected_failures"].as_u64().unwrap() > 0, "{s}");
    // at least once: a crash between a delivery and its record repeats at most the
    // requests in flight (each success is recorded before its slot is freed;
    // fns.concurrency defaults to 32)
    assert!(s["duplicates"].as_u64().unwrap() <= 32, "{s}");
    let token = gw.dev_token().unwrap();
    let v = wait_for(Duration::from_secs(10), "an empty backlog", || {
        let (_, v) = gw.http("GET", "/v1/fns", Some(&token), None);
        (v["backlog"]["pending"] == 0).then_some(v)
    });
    assert!(v["backlog"]["oldest_queued_at"].is_null(), "{v}");
}
