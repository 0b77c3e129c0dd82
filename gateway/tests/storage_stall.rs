//! With a storage that stalls: nothing is acknowledged, documents in flight are bounded by
//! the in-flight limit (connections stop reading), memory stays bounded, and when storage
//! recovers every waiting document is acknowledged. With a storage that fails: nothing is
//! acknowledged, and ingestion resumes when it heals. With the real embedded store on a
//! disk whose syncs stall for seconds: the documents waiting for a sync are capped by the
//! writer's queue, the appends by the in-flight limit, and all are acknowledged after.

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
    let mut rx = send_one_receipt_each(&gw, &regs);

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
    expect_all_accepted(&mut rx, "after recovery").await;
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

/// A disk whose syncs stall for seconds, with the real embedded store (its `sync_delay`
/// test hook holds every sync): the documents waiting for a sync are capped — the writer's
/// bounded queue plus the group being synced — appends beyond it wait in their connection
/// tasks (at most `max_inflight_documents`), connections beyond that stop reading, so
/// memory stays bounded; nothing is acknowledged during the stall, and every document is
/// acknowledged after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_disk_syncs_keep_the_waiting_bounded_and_all_are_acknowledged_after() {
    use storage::embedded::{EmbeddedOptions, EmbeddedStore, SyncDelay};

    const QUEUE: usize = 8;
    const BATCH: usize = 4;
    const INFLIGHT: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    cfg.limits.max_inflight_documents = INFLIGHT;
    cfg.limits.ack_timeout = Duration::from_secs(120);
    let delay = SyncDelay::default();
    let opts = EmbeddedOptions {
        queue_capacity: QUEUE,
        max_batch_documents: BATCH,
        sync_delay: delay.clone(),
        ..EmbeddedOptions::default()
    };
    let store = Arc::new(EmbeddedStore::open(dir.path().join("store"), opts).unwrap());
    // the fault-free wrapper only counts the appends the gateway makes
    let counting = Arc::new(FaultyStore::new(store.clone()));
    let running = gateway::start_with_store(cfg, counting.clone(), gateway::metrics::install()).await.unwrap();
    let gw = TestGateway { running: Some(running), dir };
    let regs = registers(CLIENTS, 20_000);
    for (r, _) in &regs {
        gw.onboard(r.clone()).await;
    }

    delay.set(Duration::from_secs(30));
    let commits_before = store.writer_stats().synced_commits;
    let rss_before = rss();
    let mut rx = send_one_receipt_each(&gw, &regs);

    // while the sync stalls: no answer, the store's queue full but not beyond its
    // capacity, in-flight documents at the limit, memory flat
    let mut max_depth = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        max_depth = max_depth.max(store.queue_depth());
    }
    assert!(rx.try_recv().is_err(), "nothing may be acknowledged while the sync stalls");
    assert_eq!(store.writer_stats().synced_commits, commits_before, "the sync is stalled");
    assert_eq!(max_depth, QUEUE, "the writer's queue fills up to its capacity, no further");
    let (started, completed) = counting.append_counts();
    assert_eq!(started, INFLIGHT as u64, "appends in flight: exactly the limit (the other connections wait)");
    assert_eq!(completed, 0);
    let grown = rss().saturating_sub(rss_before);
    assert!(grown < 64 << 20, "memory bounded while {CLIENTS} documents wait: grew {grown} bytes");

    // the disk recovers: every document is acknowledged with code 0
    delay.clear();
    expect_all_accepted(&mut rx, "after the stall").await;
    assert!(store.writer_stats().synced_commits > commits_before);
    gw.stop().await;
}

type Replies = tokio::sync::mpsc::Receiver<(ffd::FnNumber, Option<bytes::Bytes>)>;

/// Each register sends its first receipt on a connection of its own; the replies (or
/// `None`: no reply within 60 s) arrive on the returned channel, which closes when all
/// are in.
fn send_one_receipt_each(gw: &TestGateway, regs: &[(storage::model::Register, ffd::build::Identity)]) -> Replies {
    let (tx, rx) = tokio::sync::mpsc::channel(regs.len().max(1));
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
    rx
}

/// Every one of the `CLIENTS` registers got an acknowledgment with code 0 for its own FN.
async fn expect_all_accepted(rx: &mut Replies, when: &str) {
    let mut acked = 0;
    while let Some((fn_number, reply)) = rx.recv().await {
        let reply = reply.unwrap_or_else(|| panic!("{fn_number} not acknowledged {when}"));
        let (_, ack) = AckView::parse_reply(reply).unwrap();
        assert_eq!(ack.fn_number, fn_number);
        assert_eq!(ack.code, Some(ResponseCode::Accepted));
        acked += 1;
    }
    assert_eq!(acked, CLIENTS);
}
