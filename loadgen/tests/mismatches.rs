//! Against deliberately wrong responders, every kind of failure is detected and counted
//! under its own name.

mod common;

use std::time::Duration;

use common::Mode;
use loadgen::docs::{DocPlan, Fault};
use loadgen::run::{LoadModel, RunConfig, run};
use loadgen::stats::{EXIT_VERIFY, Report};
use loadgen::transport::TransportKind;
use tokio_util::sync::CancellationToken;

async fn against(mode: Mode, f: impl FnOnce(&mut RunConfig)) -> Report {
    let d = common::start(mode).await;
    let mut cfg = RunConfig::new(d.addr, TransportKind::Tcp, common::population(3));
    cfg.load = LoadModel::Closed;
    cfg.duration = Duration::from_millis(400);
    cfg.timeout = Duration::from_millis(300);
    cfg.late_window = Duration::from_millis(300);
    cfg.max_resends = 0;
    f(&mut cfg);
    run(cfg, CancellationToken::new()).await.expect("run")
}

fn only(r: &Report, kind: &str) {
    assert!(r.mismatches[kind] > 0, "{kind} not counted: {}", r.summary());
    for (k, n) in &r.mismatches {
        if *k != kind {
            assert_eq!(*n, 0, "{k} counted instead of {kind}: {}", r.summary());
        }
    }
    assert_eq!(r.counters.documents_ok, 0, "{}", r.summary());
    assert!(!r.verdict.ok);
    assert_eq!(r.verdict.exit_code, EXIT_VERIFY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_fd() {
    only(&against(Mode::WrongFd, |_| {}).await, "fd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_fn() {
    only(&against(Mode::WrongFn, |_| {}).await, "fn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_crc() {
    only(&against(Mode::BadCrc, |_| {}).await, "crc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_14() {
    only(&against(Mode::Code14, |_| {}).await, "code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_reply() {
    only(&against(Mode::Truncate, |_| {}).await, "truncated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reply_and_close_is_a_refusal() {
    let r = against(Mode::Close, |_| {}).await;
    assert!(r.counters.refusals > 0, "{}", r.summary());
    assert_eq!(r.counters.refusals, r.counters.documents_sent);
    assert_eq!(r.counters.timeouts, 0, "refusals are not timeouts");
    assert_eq!(r.mismatches_total, 0);
    assert_eq!(r.counters.documents_ok, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_is_a_timeout_and_resent() {
    let r = against(Mode::Silent, |c| {
        c.max_resends = 1;
        c.timeout = Duration::from_millis(150);
        c.late_window = Duration::from_millis(100);
    })
    .await;
    let c = &r.counters;
    assert!(c.timeouts >= 3, "{}", r.summary());
    assert!(c.resends >= 3 && c.gave_up >= 3, "{}", r.summary());
    assert_eq!(c.refusals, 0, "timeouts are not refusals");
    assert_eq!(c.documents_ok, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_reply_and_resend_get_identical_acks() {
    let r = against(Mode::LateOnce { ms: 250 }, |c| {
        c.timeout = Duration::from_millis(100);
        c.late_window = Duration::from_millis(500);
        c.max_resends = 2;
    })
    .await;
    let c = &r.counters;
    assert_eq!(c.timeouts, 1, "{}", r.summary());
    assert_eq!(c.resends, 1);
    assert_eq!(c.late_acks, 1, "the late reply was awaited: {}", r.summary());
    assert_eq!(c.acks_identical, 1);
    assert_eq!(c.ack_changed, 0);
    assert_eq!(r.mismatches_total, 0);
    assert!(r.verdict.ok, "{}", r.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_ack_on_retransmission_is_caught() {
    let r = against(Mode::ChangeOnRepeat, |c| c.duplicates = 1.0).await;
    let c = &r.counters;
    assert!(c.duplicates_sent > 0);
    assert_eq!(c.ack_changed, c.duplicates_sent, "{}", r.summary());
    assert_eq!(c.acks_identical, 0);
    assert_eq!(r.verdict.exit_code, EXIT_VERIFY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_are_answered_as_ffd_requires() {
    let r = against(Mode::Judge, |c| {
        c.plan = DocPlan { malformed_share: 0.3, ..DocPlan::default() };
        c.duplicates = 0.1;
    })
    .await;
    let c = &r.counters;
    assert!(c.malformed_sent > 10, "{}", r.summary());
    assert_eq!(c.malformed_ok, c.malformed_sent, "{}", r.summary());
    assert_eq!(r.mismatches_total, 0, "{}", r.summary());
    assert_eq!(c.documents_ok, c.documents_sent);
    assert_eq!(c.refusals, 0, "an expected close is not a refusal");
    assert!(r.verdict.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_against_a_responder_that_accepts_everything() {
    // the baseline-like double answers 0 to everything: faults that need 14 or 11 are
    // code mismatches, faults that need a close are unexpected replies
    let r = against(Mode::Correct, |c| {
        c.plan = DocPlan {
            malformed_share: 0.5,
            faults: vec![Fault::FdMismatch, Fault::BadContainerCrc],
            ..DocPlan::default()
        };
    })
    .await;
    assert!(r.mismatches["code"] > 0, "{}", r.summary());
    assert!(r.mismatches["unexpected_reply"] > 0, "{}", r.summary());
    assert_eq!(r.counters.malformed_ok, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_counts_connect_errors_and_unsent_slots() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut cfg =
        RunConfig::new(format!("127.0.0.1:{port}").parse().expect("addr"), TransportKind::Tcp, common::population(2));
    cfg.load = LoadModel::Open { rate: 100.0 };
    cfg.duration = Duration::from_millis(500);
    let r = run(cfg, CancellationToken::new()).await.expect("run");
    let c = &r.counters;
    assert_eq!(c.documents_sent, 0);
    assert!(r.connect_errors["refused"] >= 40, "{}", r.summary());
    assert!(c.unsent >= 40, "every slot without a connection is unsent: {}", r.summary());
    assert!(r.environment["last_connect_error"].as_str().is_some_and(|e| e.starts_with("refused")));
}
