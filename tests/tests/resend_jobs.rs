//! Resend jobs with the real gateway, `adminctl` and the real `fns-receiver`: a job of
//! 10,000 documents, interrupted by a gateway restart, completes with every selected
//! document delivered again and reports its progress throughout; `--watch` follows a job
//! (progress lines on stderr when not a terminal) and `cancel` stops it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fns_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use e2e::{GatewayProcess, TestRegister, adminctl_command, assert_exit, json_of, stderr, unix_now};
use fns_support::*;
use serde_json::Value;

fn status(gw: &GatewayProcess, id: &str) -> Value {
    let out = gw.adminctl(&["resend", "status", id, "-o", "json"]);
    assert_exit(&out, 0);
    json_of(&out)
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

#[test]
fn a_resend_of_10000_documents_survives_a_restart_and_reports_progress() {
    const DOCS: u32 = 10_000;
    let rx = Receiver::start(&[]);
    let url = rx.url();
    let mut gw = GatewayProcess::start(
        opts(Some(&url)).env("GATEWAY_RESEND__CONCURRENCY", "4").env("GATEWAY_RESEND__PAGE_SIZE", "250"),
    );
    let reg = TestRegister::new(8101);
    onboard(&gw, &reg);
    let t0 = unix_now();
    let msgs: Vec<Bytes> = (1..=DOCS).map(|fd| reg.receipt(fd, t0 + fd / 100)).collect();
    let started = Instant::now();
    send_all(gw.tcp(), msgs, 8);
    wait_for(Duration::from_secs(90), "10,000 first deliveries", || {
        (rx.stat("unique") >= u64::from(DOCS)).then_some(())
    });
    eprintln!("10,000 documents stored and forwarded in {:?}", started.elapsed());

    let from = rfc3339(t0 - 60);
    let out = gw.adminctl(&["resend", "create", "--register", reg.rnm.as_str(), "--from", &from, "-o", "json"]);
    assert_exit(&out, 0);
    let job = json_of(&out);
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["state"], "pending");

    // progress while it runs, then a restart in the middle
    let mut samples: Vec<Value> = Vec::new();
    let before_restart = wait_for(Duration::from_secs(60), "delivery under way", || {
        let v = status(&gw, &id);
        samples.push(v.clone());
        (v["state"] == "running" && n(&v, "delivered") > 0).then_some(v)
    });
    assert_eq!(before_restart["selection_complete"], true, "{before_restart}");
    assert_eq!(n(&before_restart, "selected"), u64::from(DOCS));
    let resends_before = rx.stat("resends");
    gw.restart();
    let after = status(&gw, &id);
    assert!(n(&after, "delivered") >= n(&before_restart, "delivered"), "persisted progress: {after}");
    assert!(n(&after, "delivered") < u64::from(DOCS), "interrupted before the end: {after}");
    assert!(resends_before < u64::from(DOCS));

    let done = wait_for(Duration::from_secs(90), "the job completed", || {
        let v = status(&gw, &id);
        samples.push(v.clone());
        (v["state"] == "completed").then_some(v)
    });
    assert_eq!((n(&done, "selected"), n(&done, "delivered"), n(&done, "failed")), (10_000, 10_000, 0), "{done}");
    assert_eq!(done["percent"], 100.0);
    // progress only moves forward and was visible in between
    let delivered: Vec<u64> = samples.iter().map(|s| n(s, "delivered")).collect();
    assert!(delivered.windows(2).all(|w| w[0] <= w[1]), "{delivered:?}");
    assert!(delivered.iter().any(|d| *d > 0 && *d < u64::from(DOCS)), "intermediate progress was reported");

    // every selected document was delivered again (the page in flight at the restart twice)
    let s = rx.stats();
    assert_eq!(n(&s, "resent_unique"), u64::from(DOCS), "{s}");
    assert!(n(&s, "resends") >= u64::from(DOCS) && n(&s, "resends") <= u64::from(DOCS) + 250, "{s}");
    assert_eq!(n(&s, "duplicates"), 0, "resends are not duplicates: {s}");
    let d = rx.get(&format!("/documents/{}/5000", reg.fn_number));
    assert_eq!(d["last_resend_job"], id.as_str());

    // watching a finished job: the final state at once, exit 0
    let out = gw.adminctl(&["resend", "status", &id, "--watch"]);
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("completed"));
    let out = gw.adminctl(&["resend", "list", "-o", "json"]);
    assert_eq!(json_of(&out)["items"][0]["id"], id.as_str());
    let out = gw.adminctl(&["audit", "list", "--action", "resend.", "-o", "json"]);
    assert_eq!(json_of(&out)["items"][0]["action"], "resend.create");
}

#[test]
fn watch_follows_a_job_and_cancel_stops_it() {
    let rx = Receiver::start(&[]);
    let gw = GatewayProcess::start(
        opts(Some(&rx.url())).env("GATEWAY_RESEND__CONCURRENCY", "1").env("GATEWAY_RESEND__PAGE_SIZE", "10"),
    );
    let reg = TestRegister::new(8201);
    onboard(&gw, &reg);
    let t0 = unix_now();
    send_all(gw.tcp(), (1..=2000).map(|fd| reg.receipt(fd, t0)).collect(), 4);

    // usage and validation errors
    assert_exit(&gw.adminctl(&["resend", "create", "--from", "2020-01-01"]), 2);
    assert_exit(&gw.adminctl(&["resend", "create", "--register", "123", "--from", "2020-01-01"]), 1);
    assert_exit(
        &gw.adminctl(&[
            "resend",
            "create",
            "--fn",
            reg.fn_number.to_string().as_str(),
            "--from",
            "2020-01-01",
            "--types",
            "99",
        ]),
        2,
    );
    assert_exit(&gw.adminctl(&["resend", "status", "018f0000-0000-7000-8000-000000000000"]), 4);

    let out = gw.adminctl(&[
        "resend",
        "create",
        "--fn",
        reg.fn_number.to_string().as_str(),
        "--from",
        &rfc3339(t0 - 60),
        "--types",
        "receipt",
        "-o",
        "json",
    ]);
    assert_exit(&out, 0);
    let id = json_of(&out)["id"].as_str().unwrap().to_owned();
    let token = gw.dev_token().unwrap();
    let watcher = adminctl_command()
        .env("ADMINCTL_SERVER", gw.admin_url())
        .env("ADMINCTL_TOKEN", &token)
        .args(["resend", "status", &id, "--watch", "--interval", "100ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(30), "some progress", || {
        let v = status(&gw, &id);
        (n(&v, "delivered") >= 30).then_some(())
    });
    let out = gw.adminctl(&["resend", "cancel", &id, "-o", "json"]);
    assert_exit(&out, 0);
    let cancelled = json_of(&out);
    assert_eq!(cancelled["state"], "cancelled");
    let resends = rx.stat("resends");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rx.stat("resends"), resends, "nothing is sent after the cancel");
    let v = status(&gw, &id);
    assert!(n(&v, "delivered") < 2000, "{v}");

    let out = watcher.wait_with_output().unwrap();
    assert_exit(&out, 1); // cancelled
    let progress = stderr(&out);
    let lines: Vec<&str> = progress.lines().filter(|l| l.starts_with(&format!("resend {id}: running"))).collect();
    assert!(lines.len() >= 2, "progress lines while it ran:\n{progress}");
    assert!(progress.contains("was cancelled"), "{progress}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cancelled"));
    // a finished job cannot be cancelled again
    assert_exit(&gw.adminctl(&["resend", "cancel", &id]), 1);
}
