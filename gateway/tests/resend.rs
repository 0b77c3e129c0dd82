//! Resend jobs in a running gateway against the in-process FNS receiver: selection by
//! register (with form codes), FN and owner INN; resumption after a restart from the
//! persisted cursor; prompt cancellation; an endpoint outage pauses a job instead of
//! failing its documents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod fns_support;

use std::time::Duration;

use bytes::Bytes;
use ffd::build::DriveReport;
use fns_support::*;
use gateway::control::fns::receiver::ReceiverOptions;
use gateway::control::resend::{JobError, cancel_job, create_job};
use storage::model::{JobState, Register, ResendJob, ResendSelector};
use storage::{Store, Timestamp};
use uuid::Uuid;

fn selector() -> ResendSelector {
    ResendSelector {
        rnm: None,
        fn_number: None,
        owner_inn: None,
        from: Timestamp::now().minus(Duration::from_secs(3600)),
        to: Timestamp::now().plus(Duration::from_secs(3600)),
        types: Vec::new(),
    }
}

/// `n` documents for a register: a shift open, receipts, a shift close at the end.
fn documents(r: &Register, n: u32) -> Vec<Bytes> {
    (1..=n)
        .map(|fd| match fd {
            1 => open_shift(r, fd),
            fd if fd == n => close_shift(r, fd, DriveReport::default()),
            fd => receipt(r, fd),
        })
        .collect()
}

async fn job(store: &dyn Store, id: Uuid) -> ResendJob {
    store.get_job(&id).await.unwrap().unwrap()
}

async fn wait_state(store: &dyn Store, id: Uuid, state: JobState, limit: Duration) -> ResendJob {
    wait_for(limit, &format!("job {id} {state:?}"), || async { job(store, id).await.state == state }).await;
    job(store, id).await
}

#[tokio::test]
async fn selections_by_register_types_fn_and_owner() {
    let rx = TestReceiver::start(ReceiverOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(dir.path(), Some(rx.url()));
    cfg.resend.page_size = 7; // several pages per register
    let gw = start_on(cfg).await;
    let store = gw.shared.store.clone();
    let a1 = register(500, INN_A);
    let a2 = register(501, INN_A);
    let b1 = register(502, INN_B);
    onboard(&gw, &[a1.clone(), a2.clone(), b1.clone()]).await;
    let mut msgs = documents(&a1, 30);
    msgs.extend(documents(&a2, 20));
    msgs.extend(documents(&b1, 10));
    send_many(gw.tcp.unwrap(), msgs, 3).await;
    wait_for(Duration::from_secs(20), "first deliveries", || async { rx.rx.stats().unique == 60 }).await;

    // one register, receipts only
    let mut sel = selector();
    sel.rnm = Some(a1.rnm.clone());
    sel.types = vec![3];
    let j = create_job(store.as_ref(), sel, "tester").await.unwrap();
    assert_eq!(j.state, JobState::Pending);
    assert!(j.selector.to <= Timestamp::now(), "the range is clamped to creation");
    let done = wait_state(store.as_ref(), j.id, JobState::Completed, Duration::from_secs(20)).await;
    assert_eq!((done.selected, done.delivered, done.failed), (28, 28, 0), "{done:?}");
    assert!(done.selection_complete);
    assert!(done.finished_at.is_some());
    let s = rx.rx.stats();
    assert_eq!((s.resends, s.resent_unique, s.duplicates), (28, 28, 0), "{s:?}");
    let d = rx.rx.document(&format!("{}:5", a1.fn_number)).unwrap();
    assert_eq!((d.deliveries, d.resends), (1, 1));
    assert_eq!(d.last_resend_job, Some(j.id.to_string()));
    assert!(rx.rx.document(&format!("{}:1", a1.fn_number)).unwrap().resends == 0, "the shift open is not a receipt");

    // one FN, every type
    let mut sel = selector();
    sel.fn_number = Some(b1.fn_number);
    let j = create_job(store.as_ref(), sel, "tester").await.unwrap();
    let done = wait_state(store.as_ref(), j.id, JobState::Completed, Duration::from_secs(20)).await;
    assert_eq!((done.selected, done.delivered), (10, 10));

    // every register of owner A: 30 + 20
    let mut sel = selector();
    sel.owner_inn = Some(a1.owner_inn.clone());
    let j = create_job(store.as_ref(), sel, "tester").await.unwrap();
    let done = wait_state(store.as_ref(), j.id, JobState::Completed, Duration::from_secs(20)).await;
    assert_eq!((done.selected, done.delivered, done.failed), (50, 50, 0));
    let s = rx.rx.stats();
    assert_eq!(s.resends, 28 + 10 + 50);
    assert_eq!(s.resent_unique, 60, "every document was resent at least once");
    assert_eq!(s.duplicates, 0, "resends are not duplicates");

    // an empty selection completes with nothing
    let mut sel = selector();
    sel.rnm = Some(a1.rnm.clone());
    sel.to = sel.from.plus(Duration::from_secs(1));
    let j = create_job(store.as_ref(), sel, "tester").await.unwrap();
    let done = wait_state(store.as_ref(), j.id, JobState::Completed, Duration::from_secs(20)).await;
    assert_eq!((done.selected, done.delivered), (0, 0));

    // invalid selectors are refused
    let mut sel = selector();
    sel.rnm = Some(a1.rnm.clone());
    sel.owner_inn = Some(a1.owner_inn.clone());
    assert!(matches!(create_job(store.as_ref(), sel, "tester").await, Err(JobError::Invalid(_))));
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_job_resumes_after_restart_from_its_cursor() {
    let rx = TestReceiver::start(ReceiverOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let slow_cfg = |url: Option<String>| {
        let mut cfg = fast_config(dir.path(), url);
        cfg.resend.page_size = 10;
        cfg.resend.concurrency = 1;
        cfg
    };
    let gw = start_on(slow_cfg(Some(rx.url()))).await;
    let store = gw.shared.store.clone();
    let r = register(510, INN_A);
    onboard(&gw, std::slice::from_ref(&r)).await;
    send_many(gw.tcp.unwrap(), documents(&r, 1000), 4).await;
    wait_for(Duration::from_secs(30), "first deliveries", || async { rx.rx.stats().unique == 1000 }).await;
    let mut sel = selector();
    sel.rnm = Some(r.rnm.clone());
    let id = create_job(store.as_ref(), sel, "tester").await.unwrap().id;
    wait_for(Duration::from_secs(20), "some progress", || async { job(store.as_ref(), id).await.delivered >= 30 })
        .await;
    gw.shutdown().await.unwrap();
    drop(store);
    // look at what was persisted, with forwarding off (jobs wait)
    let gw = start_on(slow_cfg(None)).await;
    let store = gw.shared.store.clone();
    let before = job(store.as_ref(), id).await;
    assert_eq!(before.state, JobState::Running, "interrupted, not finished");
    assert!(before.selection_complete);
    assert_eq!(before.selected, 1000);
    assert!(before.delivered < 1000, "{before:?}");
    assert!(before.cursor.is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(job(store.as_ref(), id).await, before, "no runner without an endpoint");
    gw.shutdown().await.unwrap();
    drop(store);

    let gw = start_on(slow_cfg(Some(rx.url()))).await;
    let store = gw.shared.store.clone();
    let done = wait_state(store.as_ref(), id, JobState::Completed, Duration::from_secs(30)).await;
    assert_eq!((done.selected, done.delivered, done.failed), (1000, 1000, 0));
    let s = rx.rx.stats();
    assert_eq!(s.resent_unique, 1000, "every document delivered again");
    // the page in progress at the stop may be sent twice, never more than a page
    assert!(s.resends >= 1000 && s.resends <= 1010, "{s:?}");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancellation_is_prompt_and_final() {
    let rx = TestReceiver::start(ReceiverOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(dir.path(), Some(rx.url()));
    cfg.resend.page_size = 10;
    cfg.resend.concurrency = 1;
    let gw = start_on(cfg).await;
    let store = gw.shared.store.clone();
    let r = register(520, INN_B);
    onboard(&gw, std::slice::from_ref(&r)).await;
    send_many(gw.tcp.unwrap(), documents(&r, 1000), 4).await;
    let mut sel = selector();
    sel.rnm = Some(r.rnm.clone());
    let id = create_job(store.as_ref(), sel, "tester").await.unwrap().id;
    wait_for(Duration::from_secs(20), "some progress", || async { job(store.as_ref(), id).await.delivered >= 20 })
        .await;
    let started = std::time::Instant::now();
    let j = cancel_job(store.as_ref(), id).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(j.state, JobState::Cancelled);
    assert!(j.finished_at.is_some());
    let at_cancel = rx.rx.stats().resends;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.rx.stats().resends, at_cancel, "nothing sent after the cancel");
    let j = job(store.as_ref(), id).await;
    assert_eq!(j.state, JobState::Cancelled);
    assert!(j.delivered < 1000 && j.delivered >= 20, "{j:?}");
    assert!(matches!(cancel_job(store.as_ref(), id).await, Err(JobError::Finished(..))));
    assert!(matches!(cancel_job(store.as_ref(), Uuid::now_v7()).await, Err(JobError::NotFound(_))));
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_endpoint_outage_pauses_a_job_without_failing_documents() {
    let rx = TestReceiver::start(ReceiverOptions { fail_first: 40, ..ReceiverOptions::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(dir.path(), None);
    cfg.resend.max_attempts = 2;
    cfg.resend.page_size = 5;
    let gw = start_on(cfg).await;
    let store = gw.shared.store.clone();
    let r = register(530, INN_A);
    onboard(&gw, std::slice::from_ref(&r)).await;
    send_many(gw.tcp.unwrap(), documents(&r, 20), 2).await;
    gw.shutdown().await.unwrap();

    // forwarding on only now, with a receiver failing its first 40 requests: the
    // forwarder and the job share them, and the job must neither fail documents nor stop
    let mut cfg = fast_config(dir.path(), Some(rx.url()));
    cfg.resend.max_attempts = 2;
    cfg.resend.page_size = 5;
    cfg.fns.retry_initial = Duration::from_secs(60); // the forwarder stays out of the way
    cfg.fns.retry_max = Duration::from_secs(60);
    let gw = start_on(cfg).await;
    let store2 = gw.shared.store.clone();
    drop(store);
    // the forwarder's first attempts take the first 20 failures (then it waits 60 s), so
    // the job meets the other 20 in whole pages, as in an outage that starts before it
    wait_for(Duration::from_secs(20), "the forwarder's 20 failed first attempts", || async {
        rx.rx.stats().injected_failures >= 20
    })
    .await;
    let mut sel = selector();
    sel.rnm = Some(r.rnm.clone());
    let id = create_job(store2.as_ref(), sel, "tester").await.unwrap().id;
    let done = wait_state(store2.as_ref(), id, JobState::Completed, Duration::from_secs(30)).await;
    assert_eq!((done.selected, done.delivered, done.failed), (20, 20, 0), "{done:?}");
    assert!(done.error.is_none());
    assert_eq!(rx.rx.stats().resent_unique, 20);
    gw.shutdown().await.unwrap();
}
