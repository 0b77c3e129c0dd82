//! Alert rules with the real gateway, `adminctl` and the real `fns-receiver` as webhook
//! sink: a silent-register rule with a short duration fires and resolves (webhooks for
//! both, the traffic light red then green); a backlog rule fires from a shift report
//! carrying 1097; a webhook receiver that fails its first attempts gets the notification
//! after retries; rules are managed with `adminctl alerts rules ...`, audited, and
//! read-only for viewers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fns_support;

use std::time::Duration;

use e2e::{GatewayProcess, TestRegister, assert_exit, json_of, stderr, unix_now};
use ffd::build::DriveReport;
use fns_support::*;
use serde_json::Value;

fn alerts(gw: &GatewayProcess, args: &[&str]) -> Value {
    let mut all = vec!["alerts", "list", "-o", "json"];
    all.extend_from_slice(args);
    let out = gw.adminctl(&all);
    assert_exit(&out, 0);
    json_of(&out)
}

fn light_of(v: &Value, rnm: &str) -> Option<String> {
    v["registers"].as_array()?.iter().find(|r| r["rnm"] == rnm).and_then(|r| r["light"].as_str()).map(str::to_owned)
}

#[test]
fn a_silent_register_rule_fires_and_resolves() {
    let hook = Receiver::start(&[]);
    let gw = GatewayProcess::start(opts(None));
    let reg = TestRegister::new(7101);
    let rnm = reg.rnm.to_string();
    onboard(&gw, &reg);
    let t = unix_now();
    send_all(gw.tcp(), vec![reg.receipt(1, t)], 1);
    let out = gw.adminctl(&[
        "alerts",
        "rules",
        "add",
        "silent-2s",
        "--silent",
        "2s",
        "--severity",
        "critical",
        "--webhook",
        &hook.alerts_url(),
    ]);
    assert_exit(&out, 0);

    // silent for more than 2 s: firing, red, webhook
    let v = wait_for(Duration::from_secs(20), "the silent alert firing", || {
        let v = alerts(&gw, &["--rule", "silent-2s"]);
        (v["items"].as_array().is_some_and(|i| i.len() == 1)).then_some(v)
    });
    let a = &v["items"][0];
    assert_eq!(a["rnm"], rnm.as_str());
    assert_eq!(a["status"], "firing");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["owner_inn"], reg.inn.as_str());
    assert!(a["detail"].as_str().unwrap().contains("no document for"), "{a}");
    assert_eq!(light_of(&v, &rnm).as_deref(), Some("red"), "{v}");
    assert_eq!(v["summary"]["red"], 1);
    let table = gw.adminctl(&["alerts", "list", "--owner-inn", reg.inn.as_str()]);
    assert_exit(&table, 0);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("silent-2s") && text.contains("red"), "{text}");
    let rules = gw.adminctl(&["alerts", "rules", "show", "silent-2s", "-o", "json"]);
    assert_eq!(json_of(&rules)["firing"], 1);

    // a document: the alert resolves after the consecutive clear evaluations
    send_all(gw.tcp(), vec![reg.receipt(2, t + 1)], 1);
    wait_for(Duration::from_secs(20), "the silent alert resolved", || {
        let v = alerts(&gw, &["--rule", "silent-2s", "--state", "resolved"]);
        (v["items"].as_array().is_some_and(|i| i.len() == 1)).then_some(())
    });
    let v = alerts(&gw, &["--register", &rnm, "--state", "all"]);
    assert_eq!(v["items"][0]["status"], "resolved", "{v}");
    assert!(v["items"][0]["resolved_at"].is_string());
    assert_eq!(light_of(&v, &rnm).as_deref(), Some("green"), "{v}");

    // both transitions reached the webhook, in order
    let hooks = wait_for(Duration::from_secs(20), "two webhook notifications", || {
        let v = hook.get("/alerts");
        (v["total"].as_u64() >= Some(2)).then_some(v)
    });
    let statuses: Vec<&str> =
        hooks["alerts"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(&statuses[..2], ["firing", "resolved"]);
    assert_eq!(hooks["alerts"][0]["rule"], "silent-2s");
    assert_eq!(hooks["alerts"][0]["rnm"], rnm.as_str());
    assert_eq!(hooks["alerts"][0]["severity"], "critical");
    let out = gw.adminctl(&["alerts", "notifications", "-o", "json"]);
    assert_exit(&out, 0);
    let notes = json_of(&out);
    assert!(notes["items"].as_array().unwrap().iter().all(|n| n["delivered_at"].is_string()), "{notes}");
}

#[test]
fn a_backlog_rule_fires_from_a_shift_report_carrying_1097() {
    let gw = GatewayProcess::start(opts(None));
    let reg = TestRegister::new(7201);
    let rnm = reg.rnm.to_string();
    onboard(&gw, &reg);
    assert_exit(&gw.adminctl(&["alerts", "rules", "add", "backlog-10", "--unsent-above", "10"]), 0);
    let id = reg.identity();
    let t = unix_now();
    let report = DriveReport {
        shift: 3,
        unsent_documents: 25,
        first_unsent_time: t - 3600,
        first_unsent_fd: 40,
        ..DriveReport::default()
    };
    let msg = ffd::build::message(&id, 1, &ffd::build::close_shift(&id, 1, t, &report));
    send_all(gw.tcp(), vec![msg], 1);
    let v = wait_for(Duration::from_secs(20), "the backlog alert", || {
        let v = alerts(&gw, &["--rule", "backlog-10"]);
        (v["items"].as_array().is_some_and(|i| i.len() == 1)).then_some(v)
    });
    let a = &v["items"][0];
    assert_eq!(a["rnm"], rnm.as_str());
    assert!(a["detail"].as_str().unwrap().contains("25 unsent documents"), "{a}");
    assert_eq!(a["severity"], "warning");
    assert_eq!(light_of(&v, &rnm).as_deref(), Some("yellow"));

    // the next shift report says everything went out: resolved
    let clear = DriveReport { shift: 4, ..DriveReport::default() };
    let msg = ffd::build::message(&id, 2, &ffd::build::close_shift(&id, 2, t + 1, &clear));
    send_all(gw.tcp(), vec![msg], 1);
    wait_for(Duration::from_secs(20), "the backlog alert resolved", || {
        let v = alerts(&gw, &["--rule", "backlog-10", "--state", "resolved"]);
        (v["items"].as_array().is_some_and(|i| i.len() == 1)).then_some(())
    });
}

#[test]
fn a_webhook_that_fails_first_gets_the_notification_after_retries() {
    let hook = Receiver::start(&["--fail-first", "2"]);
    let gw = GatewayProcess::start(opts(None));
    let reg = TestRegister::new(7301);
    onboard(&gw, &reg);
    let out = gw.adminctl(&[
        "alerts",
        "rules",
        "add",
        "never-heard-1s",
        "--silent",
        "1s",
        "--register",
        reg.rnm.as_str(),
        "--webhook",
        &hook.alerts_url(),
    ]);
    assert_exit(&out, 0);
    let note = wait_for(Duration::from_secs(20), "a delivered notification", || {
        let out = gw.adminctl(&["alerts", "notifications", "-o", "json"]);
        let v = json_of(&out);
        v["items"].as_array().and_then(|i| i.iter().find(|n| n["delivered_at"].is_string()).cloned())
    });
    assert_eq!(note["attempts"], 3, "two failures, then delivered: {note}");
    assert_eq!(note["abandoned"], false);
    assert_eq!(note["status"], "firing");
    let s = hook.stats();
    assert_eq!((s["alerts"].as_u64(), s["injected_failures"].as_u64()), (Some(1), Some(2)), "{s}");
    let table = gw.adminctl(&["alerts", "notifications"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("delivered"));
}

#[test]
fn rules_are_managed_audited_and_read_only_for_viewers() {
    use sha2::Digest;
    let viewer = "viewer-token-for-alerts-e2e";
    let digest = hex::encode(sha2::Sha256::digest(viewer.as_bytes()));
    let admin = "admin-token-for-alerts-e2e";
    let config = format!("[[admin.tokens]]\nname = \"auditor\"\nsha256 = \"{digest}\"\nrole = \"viewer\"\n");
    let gw = GatewayProcess::start(opts(None).config(&config).env("GATEWAY_ADMIN_TOKEN", admin));
    let run = |token: &str, args: &[&str]| gw.adminctl_as(Some(token), args);

    let out = run(
        admin,
        &["alerts", "rules", "add", "fn-eol", "--fn-end-of-life", "30", "--owner-inn", "7702203276", "-o", "json"],
    );
    assert_exit(&out, 0);
    let rule = json_of(&out);
    assert_eq!(rule["condition"]["kind"], "fn_end_of_life");
    assert_eq!(rule["scope"]["type"], "owner_inn");
    assert_eq!(rule["enabled"], true);
    assert_exit(&run(admin, &["alerts", "rules", "add", "paid", "--paid-period-ending", "30", "--disabled"]), 0);
    assert_exit(&run(admin, &["alerts", "rules", "add", "warn", "--fn-warnings", "1051,1052", "--group", "shop-1"]), 0);
    assert_exit(&run(admin, &["alerts", "rules", "add", "flk", "--flk-above", "5", "--flk-window", "30m"]), 0);

    // mistakes: the same name again (1), a bad threshold (1, field named), no condition (2)
    assert_exit(&run(admin, &["alerts", "rules", "add", "paid", "--paid-period-ending", "3"]), 1);
    let out = run(admin, &["alerts", "rules", "add", "flk2", "--flk-above", "40"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("above"), "{}", stderr(&out));
    assert_exit(&run(admin, &["alerts", "rules", "add", "nothing"]), 2);

    // list / show / disable / enable / delete
    let out = run(viewer, &["alerts", "rules", "list", "-o", "json"]);
    assert_exit(&out, 0);
    let names: Vec<String> =
        json_of(&out)["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["flk", "fn-eol", "paid", "warn"]);
    let out = run(viewer, &["alerts", "rules", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("FN end of life within 30 days"));
    assert_exit(&run(admin, &["alerts", "rules", "disable", "fn-eol"]), 0);
    let out = run(viewer, &["alerts", "rules", "show", "fn-eol", "-o", "json"]);
    assert_eq!(json_of(&out)["enabled"], false);
    assert_exit(&run(admin, &["alerts", "rules", "enable", "fn-eol"]), 0);
    assert_exit(&run(admin, &["alerts", "rules", "delete", "paid"]), 2); // needs --yes off a terminal
    assert_exit(&run(admin, &["alerts", "rules", "delete", "paid", "--yes"]), 0);
    assert_exit(&run(viewer, &["alerts", "rules", "show", "paid"]), 4);

    // viewers read, never write
    assert_exit(&run(viewer, &["alerts", "list"]), 0);
    assert_exit(&run(viewer, &["alerts", "rules", "add", "x", "--silent", "1h"]), 3);
    assert_exit(&run(viewer, &["alerts", "rules", "disable", "flk"]), 3);
    assert_exit(&run(viewer, &["alerts", "rules", "delete", "flk", "--yes"]), 3);

    // every change is in the audit log
    let out = run(viewer, &["audit", "list", "--action", "alert_rule.", "-o", "json"]);
    assert_exit(&out, 0);
    let mut actions: Vec<String> =
        json_of(&out)["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    actions.sort();
    actions.dedup();
    assert_eq!(
        actions,
        ["alert_rule.create", "alert_rule.delete", "alert_rule.disable", "alert_rule.enable"],
        "the failed create of a duplicate is refused before it is audited"
    );
}
