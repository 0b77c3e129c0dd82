//! Coordinated omission: a responder that stalls once. The open-loop schedule keeps its
//! intended send times, so the documents queued behind the stall show the wait in the
//! corrected latency, while the uncorrected latency (from the actual send) stays small.

mod common;

use std::time::Duration;

use common::Mode;
use loadgen::run::{LoadModel, RunConfig, run};
use loadgen::transport::TransportKind;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stall_shows_in_corrected_not_in_uncorrected() {
    let d = common::start(Mode::StallOnce { nth: 150, ms: 400 }).await;
    let mut cfg = RunConfig::new(d.addr, TransportKind::Tcp, common::population(1));
    cfg.load = LoadModel::Open { rate: 500.0 };
    cfg.duration = Duration::from_secs(2);
    cfg.timeout = Duration::from_secs(2);
    let r = run(cfg, CancellationToken::new()).await.expect("run");
    let corrected = r.latency_us.corrected.expect("open loop has corrected latency");
    let u = r.latency_us.uncorrected;
    assert_eq!(r.mismatches_total + r.counters.timeouts, 0, "{}", r.summary());
    // ~200 of ~1000 documents were due during the 400 ms stall
    assert!(corrected.p99 >= 200_000, "corrected p99 {} µs: {}", corrected.p99, r.summary());
    assert!(corrected.p90 >= 50_000, "corrected p90 {} µs: {}", corrected.p90, r.summary());
    // one slow exchange out of ~1000 leaves the uncorrected p99 small
    assert!(u.p99 < 50_000, "uncorrected p99 {} µs: {}", u.p99, r.summary());
    assert!(u.max >= 390_000, "the stalled exchange itself: {}", r.summary());
    assert!(r.counters.late_sends >= 100, "{}", r.summary());
    // the schedule caught up: everything offered was sent
    assert!(r.counters.documents_sent >= 950, "{}", r.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_stall_corrected_and_uncorrected_agree() {
    let d = common::start(Mode::Correct).await;
    let mut cfg = RunConfig::new(d.addr, TransportKind::Tcp, common::population(2));
    cfg.load = LoadModel::Open { rate: 400.0 };
    cfg.duration = Duration::from_secs(1);
    let r = run(cfg, CancellationToken::new()).await.expect("run");
    let c = r.latency_us.corrected.expect("corrected");
    assert!(c.p50 < 5_000, "{}", r.summary());
    assert!(c.count == r.latency_us.uncorrected.count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_counts_from_the_first_intended_send() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    // nothing listens for the first 300 ms
    let up = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        common::start_on(addr, Mode::Correct).await
    });
    let mut cfg = RunConfig::new(addr, TransportKind::Tcp, common::population(1));
    cfg.load = LoadModel::Open { rate: 100.0 };
    cfg.duration = Duration::from_secs(1);
    let r = run(cfg, CancellationToken::new()).await.expect("run");
    let _double = up.await.expect("double");
    let c = r.latency_us.corrected.expect("corrected");
    assert!(r.connect_errors["refused"] >= 10, "{}", r.summary());
    assert!(r.counters.unsent >= 10, "{}", r.summary());
    assert!(r.counters.documents_ok >= 50, "{}", r.summary());
    // the first document waited for the gateway to come up (300 ms after the start, of
    // which the connect phase took a part)
    assert!(c.max >= 150_000, "corrected max {} µs: {}", c.max, r.summary());
    assert!(r.latency_us.uncorrected.max < 50_000, "{}", r.summary());
    assert_eq!(r.mismatches_total, 0);
}
