//! FNS forwarding against the in-process FNS receiver: every accepted document arrives
//! exactly once in FNS JSON form under normal operation (also across a restart, and when
//! forwarding is switched on later); failures are retried with backoff until delivered;
//! undecodable documents travel raw; delivery partitions are leased and a dead node's
//! partitions are taken over.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fns_support;

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use ffd::build::DriveReport;
use fns_support::*;
use gateway::control::fns::receiver::ReceiverOptions;
use gateway::control::fns::{FnsClient, Forwarder};
use storage::model::{DELIVERY_PARTITIONS, DeliveryStatus, DocumentKey, DocumentRecord};
use storage::{Rnm, Timestamp};

fn key(r: &storage::model::Register, fd: u32) -> DocumentKey {
    DocumentKey { fn_number: r.fn_number, fd }
}

#[tokio::test]
async fn every_document_reaches_the_receiver_once_in_fns_json() {
    let rx = TestReceiver::start(ReceiverOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_on(fast_config(dir.path(), Some(rx.url()))).await;
    let regs: Vec<_> = (1..=3).map(|i| register(i, INN_A)).collect();
    onboard(&gw, &regs).await;
    onboard(&gw, &[common::s1_register()]).await;
    let mut msgs = Vec::new();
    for r in &regs {
        msgs.push(open_shift(r, 1));
        for fd in 2..=20 {
            msgs.push(receipt(r, fd));
        }
        msgs.push(close_shift(r, 21, DriveReport::default()));
    }
    send_many(gw.tcp.unwrap(), msgs, 3).await;
    send(gw.tcp.unwrap(), common::S1).await;
    let total = 3 * 21 + 1;
    wait_for(Duration::from_secs(20), "every document at the receiver", || async { rx.rx.stats().unique == total })
        .await;

    // a retransmission of an acknowledged document is not delivered again
    send(gw.tcp.unwrap(), common::S1).await;
    send(gw.tcp.unwrap(), &receipt(&regs[0], 5)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let s = rx.rx.stats();
    assert_eq!((s.unique, s.received, s.duplicates), (total, total, 0), "{s:?}");

    let store = gw.shared.store.clone();
    // the store records a delivery just after the receiver's answer
    wait_for(Duration::from_secs(10), "every delivery recorded", || async {
        let mut all = true;
        for r in &regs {
            for fd in 1..=21 {
                all &= store
                    .get_delivery(&key(r, fd))
                    .await
                    .unwrap()
                    .is_some_and(|d| d.status == DeliveryStatus::Delivered);
            }
        }
        all
    })
    .await;
    for r in &regs {
        for fd in 1..=21 {
            let d = store.get_delivery(&key(r, fd)).await.unwrap().unwrap();
            assert_eq!(d.status, DeliveryStatus::Delivered);
            assert!(d.delivered_at.is_some());
        }
    }
    wait_for(Duration::from_secs(5), "an empty backlog", || async { store.backlog().await.unwrap().pending == 0 })
        .await;

    // the FNS JSON form, with the metadata
    let r0 = &regs[0];
    let v = rx.rx.document(&format!("{}:3", r0.fn_number)).expect("receipt 3 arrived");
    assert_eq!(v.deliveries, 1);
    let b = &v.body;
    assert_eq!(b["format"], "json");
    assert_eq!(b["fd"], 3);
    assert_eq!(b["doc_type"], 3);
    assert_eq!(b["rnm"], r0.rnm.as_str());
    assert_eq!(b["fn"], r0.fn_number.to_string());
    assert!(b["received_at"].as_str().is_some());
    let receipt_json = &b["document"]["receipt"];
    assert_eq!(receipt_json["fiscalDocumentNumber"], 3, "{receipt_json}");
    assert_eq!(receipt_json["totalSum"], 9_000, "{receipt_json}");
    let s1 = rx.rx.document("9999078900005488:1").expect("S1 arrived");
    assert!(s1.body["document"]["fiscalReportCorrection"].is_object(), "{}", s1.body);

    // the metrics (shared by the gateways of this test process: names, not values)
    let metrics = reqwest_text(&format!("http://{}/metrics", gw.metrics.unwrap())).await;
    assert!(metrics.contains("ofd_gateway_fns_deliveries_total{result=\"delivered\"}"));
    assert!(metrics.contains("ofd_gateway_fns_partitions_leased "));
    assert!(metrics.contains("ofd_gateway_fns_backlog_documents"));
    assert!(metrics.contains("ofd_gateway_fns_delivery_delay_seconds_bucket"));
    gw.shutdown().await.unwrap();
}

async fn reqwest_text(url: &str) -> String {
    gateway::control::fns::client::install_crypto_provider();
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn failures_are_retried_with_backoff_until_delivered() {
    let rx = TestReceiver::start(ReceiverOptions { fail_first: 6, ..ReceiverOptions::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start_on(fast_config(dir.path(), Some(rx.url()))).await;
    let r = register(10, INN_A);
    onboard(&gw, std::slice::from_ref(&r)).await;
    for fd in 1..=3 {
        send(gw.tcp.unwrap(), &receipt(&r, fd)).await;
    }
    wait_for(Duration::from_secs(20), "3 documents delivered", || async { rx.rx.stats().unique == 3 }).await;
    let s = rx.rx.stats();
    assert_eq!(s.injected_failures, 6);
    assert_eq!(s.duplicates, 0, "{s:?}");
    let store = gw.shared.store.clone();
    // the gateway records a delivery just after the receiver's answer: wait for the
    // records, not only for the receiver's count
    wait_for(Duration::from_secs(10), "3 deliveries recorded", || {
        let store = store.clone();
        let keys: Vec<_> = (1..=3).map(|fd| key(&r, fd)).collect();
        async move {
            for k in &keys {
                match store.get_delivery(k).await {
                    Ok(Some(d)) if d.status == DeliveryStatus::Delivered => {}
                    _ => return false,
                }
            }
            true
        }
    })
    .await;
    let mut attempts = 0;
    for fd in 1..=3 {
        let d = store.get_delivery(&key(&r, fd)).await.unwrap().unwrap();
        assert_eq!(d.status, DeliveryStatus::Delivered);
        assert!(d.last_error.as_deref().is_some_and(|e| e.contains("503")), "{d:?}");
        attempts += d.attempts;
    }
    assert_eq!(attempts, 6 + 3, "6 failed attempts, then one success each");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_endpoint_keeps_documents_pending_with_backoff() {
    // a port nobody listens on
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap();
    drop(l);
    let dir = tempfile::tempdir().unwrap();
    let gw = start_on(fast_config(dir.path(), Some(format!("http://{dead}/documents")))).await;
    let r = register(11, INN_A);
    onboard(&gw, std::slice::from_ref(&r)).await;
    send(gw.tcp.unwrap(), &receipt(&r, 1)).await;
    let store = gw.shared.store.clone();
    wait_for(Duration::from_secs(10), "two failed attempts", || async {
        store.get_delivery(&key(&r, 1)).await.unwrap().is_some_and(|d| d.attempts >= 2)
    })
    .await;
    let d = store.get_delivery(&key(&r, 1)).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert!(d.last_error.as_deref().unwrap().starts_with("connect"), "{d:?}");
    assert!(d.next_attempt_at > d.last_attempt_at.unwrap());
    let b = store.backlog().await.unwrap();
    assert_eq!(b.pending, 1);
    assert!(b.oldest_queued_at.is_some());
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn outbox_survives_restart_and_nothing_is_delivered_twice() {
    let rx = TestReceiver::start(ReceiverOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let r = register(20, INN_B);

    // 1. forwarding off: documents wait in the outbox
    let gw = start_on(fast_config(dir.path(), None)).await;
    onboard(&gw, std::slice::from_ref(&r)).await;
    let first: Vec<Bytes> = (1..=30).map(|fd| receipt(&r, fd)).collect();
    send_many(gw.tcp.unwrap(), first, 2).await;
    let b = gw.shared.store.backlog().await.unwrap();
    assert_eq!(b.pending, 30);
    gw.shutdown().await.unwrap();
    assert_eq!(rx.rx.stats().received, 0);

    // 2. forwarding on: the waiting documents go, and new ones too
    let gw = start_on(fast_config(dir.path(), Some(rx.url()))).await;
    let more: Vec<Bytes> = (31..=50).map(|fd| receipt(&r, fd)).collect();
    send_many(gw.tcp.unwrap(), more, 2).await;
    wait_for(Duration::from_secs(20), "50 documents", || async { rx.rx.stats().unique == 50 }).await;
    gw.shutdown().await.unwrap();

    // 3. a restart delivers nothing again; new documents go once
    let gw = start_on(fast_config(dir.path(), Some(rx.url()))).await;
    let last: Vec<Bytes> = (51..=60).map(|fd| receipt(&r, fd)).collect();
    send_many(gw.tcp.unwrap(), last, 1).await;
    wait_for(Duration::from_secs(20), "60 documents", || async { rx.rx.stats().unique == 60 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = rx.rx.stats();
    assert_eq!((s.received, s.duplicates), (60, 0), "{s:?}");
    assert_eq!(gw.shared.store.backlog().await.unwrap().pending, 0);
    gw.shutdown().await.unwrap();
}

fn record(opaque: bool, raw: Bytes) -> DocumentRecord {
    let r = register(30, INN_A);
    DocumentRecord {
        fn_number: r.fn_number,
        fd: 7,
        rnm: Rnm::parse(r.rnm.as_str()).unwrap(),
        doc_type: 3,
        ffd_version: None,
        doc_time: None,
        received_at: Timestamp::now(),
        total: None,
        fiscal_sign: None,
        response_code: 0,
        flk_error: None,
        opaque,
        telemetry: None,
        raw,
        ack: Bytes::new(),
    }
}

#[test]
fn undecodable_documents_are_delivered_raw_with_metadata() {
    let raw = Bytes::from_static(b"\x01\x02encrypted body\xff");
    let p = gateway::control::fns::payload(&record(true, raw.clone()));
    assert_eq!(p["format"], "raw");
    assert_eq!(p["opaque"], true);
    assert_eq!(p["fd"], 7);
    let back = base64::engine::general_purpose::STANDARD.decode(p["raw_base64"].as_str().unwrap()).unwrap();
    assert_eq!(back, raw);
    assert!(p.get("document").is_none());
    // not flagged opaque, but not a container either (answered with code 11)
    let p = gateway::control::fns::payload(&record(false, raw));
    assert_eq!((p["format"].as_str(), p["opaque"].as_bool()), (Some("raw"), Some(false)));
    // a real container decodes
    let r = register(30, INN_A);
    let msg = receipt(&r, 7);
    let p = gateway::control::fns::payload(&record(false, msg.slice(30..)));
    assert_eq!(p["format"], "json");
    assert!(p["document"]["receipt"].is_object());
}

#[tokio::test]
async fn partitions_are_leased_and_a_dead_nodes_share_is_taken_over() {
    let rx = TestReceiver::start(ReceiverOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // forwarding off in the gateway itself: the two forwarders below play two nodes
    let gw = start_on(fast_config(dir.path(), None)).await;
    let regs: Vec<_> = (40..48).map(|i| register(i, INN_A)).collect();
    onboard(&gw, &regs).await;
    let msgs = regs.iter().map(|r| receipt(r, 1)).collect();
    send_many(gw.tcp.unwrap(), msgs, 2).await;

    let store = gw.shared.store.clone();
    let mut cfg = gw.shared.config.fns.clone();
    cfg.lease_ttl = Duration::from_millis(300);
    let client = || FnsClient::new(&rx.url(), Duration::from_secs(5), 4).unwrap();
    let a = Forwarder::new(store.clone(), client(), cfg.clone(), "node-a".into());
    let b = Forwarder::new(store.clone(), client(), cfg.clone(), "node-b".into());
    a.renew_leases().await;
    b.renew_leases().await;
    assert_eq!(a.owned().len(), usize::from(DELIVERY_PARTITIONS));
    assert!(b.owned().is_empty(), "node a holds every partition");

    // b's rounds deliver nothing: it owns no partition
    assert_eq!(b.round().await.delivered, 0);
    assert_eq!(rx.rx.stats().received, 0);

    // node a dies without releasing; after the TTL node b takes everything over
    drop(a);
    tokio::time::sleep(Duration::from_millis(350)).await;
    b.renew_leases().await;
    assert_eq!(b.owned().len(), usize::from(DELIVERY_PARTITIONS));
    let stats = b.round().await;
    assert_eq!(stats.delivered, regs.len(), "{stats:?}");
    assert_eq!(rx.rx.stats().unique, regs.len() as u64);
    // nothing is due any more
    assert_eq!(b.round().await.delivered, 0);
    b.release_leases().await;
    gw.shutdown().await.unwrap();
}
