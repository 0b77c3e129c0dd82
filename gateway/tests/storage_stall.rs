//! With a storage that stalls: nothing is acknowledged, documents in flight are bounded by
//! the in-flight limit (connections stop reading), memory stays bounded, and when storage
//! recovers every waiting document is acknowledged. With a storage that fails: nothing is
//! acknowledged, and ingestion resumes when it heals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ffd::{AckView, ResponseCode};
use storage::faulty::FaultyStore;
use tokio::io::AsyncWriteExt;

const CLIENTS: usize = 400;
const INFLIGHT: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_storage_acknowledges_nothing_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.limits.max_inflight_documents = INFLIGHT;
    cfg.limits.ack_timeout = Duration::from_secs(120);
    let inner = gateway::server::open_store(&cfg).await.unwrap();
    let faulty = Arc::new(FaultyStore::new(inner));
    let running = gateway::start_with_store(cfg, faulty.clone(), gateway::metrics::install()).await.unwrap();
    let gw = TestGateway { running: Some(running), dir };
    let regs = registers(CLIENTS, 1);
    for (r, _) in &regs {
        gw.onboard(r.clone()).await;
    }

    faulty.stall();
    let rss_before = rss();
    let (tx, mut rx) = tokio::sync::mpsc::channel(CLIENTS);
    for (_, id) in regs.iter().cloned() {
        let addr = gw.tcp();
        let tx = tx.clone();
        tokio::spawn(async move {
            let msg = receipt_message(&id, 1);
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(&msg).await.unwrap();
            let reply = tokio::time::timeout(Duration::from_secs(60), read_reply(&mut s)).await.ok().flatten();
            let _ = tx.send((id.fn_number, reply)).await;
        });
    }
    drop(tx);

    // while stalled: no reply at all, and no more appends than the in-flight limit
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rx.try_recv().is_err(), "nothing may be acknowledged while storage stalls");
    let (started, completed) = faulty.append_counts();
    assert!(started <= INFLIGHT as u64, "appends in flight bounded by the limit: {started}");
    assert_eq!(completed, 0);
    let grown = rss().saturating_sub(rss_before);
    assert!(grown < 64 << 20, "memory bounded while {CLIENTS} documents wait: grew {grown} bytes");

    // recovery: every document is acknowledged with code 0
    faulty.release();
    let mut acked = 0;
    while let Some((fn_number, reply)) = rx.recv().await {
        let reply = reply.unwrap_or_else(|| panic!("{fn_number} not acknowledged after recovery"));
        let (_, ack) = AckView::parse_reply(reply).unwrap();
        assert_eq!(ack.fn_number, fn_number);
        assert_eq!(ack.code, Some(ResponseCode::Accepted));
        acked += 1;
    }
    assert_eq!(acked, CLIENTS);
    let text = metrics_text(&gw).await;
    assert!(metric_value(&text, "ofd_gateway_documents_acknowledged_total", &[("code", "0")]) >= CLIENTS as f64);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_storage_acknowledges_nothing_and_heals() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    let inner = gateway::server::open_store(&cfg).await.unwrap();
    let faulty = Arc::new(FaultyStore::new(inner));
    let running = gateway::start_with_store(cfg, faulty.clone(), gateway::metrics::install()).await.unwrap();
    let gw = TestGateway { running: Some(running), dir };
    let regs = registers(1, 5000);
    gw.onboard(regs[0].0.clone()).await;
    let msg = receipt_message(&regs[0].1, 7);

    faulty.set_failing(true);
    for _ in 0..3 {
        assert!(tcp_exchange(gw.tcp(), &msg).await.is_none(), "no acknowledgment when storage fails");
    }
    let key = storage::model::DocumentKey { fn_number: regs[0].1.fn_number, fd: 7 };
    assert!(gw.store().get_document(&key).await.unwrap().is_none());

    faulty.set_failing(false);
    let reply = tcp_exchange(gw.tcp(), &msg).await.expect("acknowledged once storage heals");
    assert_eq!(AckView::parse_reply(reply).unwrap().1.code, Some(ResponseCode::Accepted));
    assert!(gw.store().get_document(&key).await.unwrap().is_some());
    gw.stop().await;
}
