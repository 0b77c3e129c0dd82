//! What the README tour showed (issue 15, section 2), through the real `gateway` and
//! `adminctl`: import errors by the file's line (header and CRLF), the fleet's traffic
//! light that adds up (with a colour filter and totals per tariff and owner), durations
//! as people write them, and the receipt check from the QR string (sum and date too; a
//! malformed string names its part). One gateway for all of it, to keep the run short.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fns_support;

use std::time::Duration;

use e2e::{CSV_HEADER, GatewayProcess, TestRegister, ack_code, assert_exit, json_of, stderr, unix_now};
use fns_support::{opts, wait_for};
use serde_json::Value;

fn adminctl_json(gw: &GatewayProcess, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = gw.adminctl(&all);
    assert_exit(&out, 0);
    json_of(&out)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn counts(v: &Value) -> (u64, u64, u64, u64, u64) {
    let n = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    (n("red"), n("yellow"), n("green"), n("grey"), n("total"))
}

#[test]
fn import_lines_fleet_lights_durations_and_qr_checks() {
    let gw = GatewayProcess::start(opts(None));

    // ---- import: a bad row on line 12 of a CRLF file with a header is reported as 12
    let regs: Vec<TestRegister> = (0..11).map(|i| TestRegister::new(15_000 + i * 37)).collect();
    let mut csv = format!("{CSV_HEADER}\r\n");
    for (i, r) in regs.iter().enumerate() {
        let mut row = r.csv_row(None, None);
        if i == 10 {
            // line 12 (header = line 1): an INN with a wrong control digit
            let inn = r.inn.to_string();
            let last = inn.as_bytes()[9] - b'0';
            row = row.replacen(&inn, &format!("{}{}", &inn[..9], (last + 1) % 10), 1);
        }
        csv.push_str(&row);
        csv.push_str("\r\n");
    }
    let path = gw.data_dir().join("crlf.csv");
    std::fs::write(&path, &csv).unwrap();
    let file = path.to_str().unwrap();
    let out = gw.adminctl(&["registers", "import", file, "-o", "json"]);
    assert_exit(&out, 1);
    let v = json_of(&out);
    assert_eq!(v["errors"][0]["line"], 12, "{v}");
    assert_eq!(v["errors"][0]["field"], "owner_inn", "{v}");
    let out = gw.adminctl(&["registers", "import", file]);
    assert_exit(&out, 1);
    let table = stdout(&out);
    assert!(table.lines().any(|l| l.contains(" 12 ") && l.contains("owner_inn")), "{table}");
    // the same with LF line ends
    std::fs::write(&path, csv.replace("\r\n", "\n")).unwrap();
    let v = json_of(&gw.adminctl(&["registers", "import", file, "-o", "json"]));
    assert_eq!(v["errors"][0]["line"], 12, "{v}");
    let out = gw.adminctl(&["registers", "import", file, "--partial", "-o", "json"]);
    assert_exit(&out, 1);
    assert_eq!(json_of(&out)["created"], 10);
    let regs = &regs[..10];

    // ---- the fleet's light: every register has one, and they add up
    let s = adminctl_json(&gw, &["alerts", "summary"]);
    assert_eq!(counts(&s), (0, 0, 10, 0, 10), "{s}");
    let out = gw.adminctl(&["alerts", "list"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("registers: 0 red, 0 yellow, 10 green, 0 grey (10 registers)"), "{}", stdout(&out));

    // a tariff for some, a suspended one (grey), a rule that fires for one owner (red)
    assert_exit(&gw.adminctl(&["tariffs", "create", "basic", "--period-days", "365", "--price", "1000"]), 0);
    assert_exit(
        &gw.adminctl(&[
            "tariffs",
            "assign",
            "basic",
            "--rnm",
            regs[0].rnm.as_str(),
            "--rnm",
            regs[1].rnm.as_str(),
            "--yes",
        ]),
        0,
    );
    assert_exit(&gw.adminctl(&["registers", "suspend", regs[9].rnm.as_str(), "--yes"]), 0);
    let owner = regs[0].inn.to_string();
    let of_owner: Vec<&TestRegister> = regs[..9].iter().filter(|r| r.inn.to_string() == owner).collect();
    let out = gw.adminctl(&[
        "alerts",
        "rules",
        "add",
        "quiet",
        "--silent",
        "1s",
        "--severity",
        "critical",
        "--owner-inn",
        &owner,
    ]);
    assert_exit(&out, 0);
    let s = wait_for(Duration::from_secs(20), "the owner's registers red", || {
        let s = adminctl_json(&gw, &["alerts", "summary"]);
        (s["red"].as_u64() == Some(of_owner.len() as u64)).then_some(s)
    });
    let red = of_owner.len() as u64;
    assert_eq!(counts(&s), (red, 0, 9 - red, 1, 10), "{s}");
    // --state <colour> lists exactly those registers
    let v = adminctl_json(&gw, &["alerts", "list", "--state", "red", "--all"]);
    let mut listed: Vec<String> =
        v["registers"].as_array().unwrap().iter().map(|r| r["rnm"].as_str().unwrap().to_owned()).collect();
    listed.sort();
    let mut want: Vec<String> = of_owner.iter().map(|r| r.rnm.to_string()).collect();
    want.sort();
    assert_eq!(listed, want);
    let v = adminctl_json(&gw, &["alerts", "list", "--state", "grey", "--all"]);
    assert_eq!(v["registers"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["registers"][0]["rnm"], regs[9].rnm.as_str());
    // totals per tariff and per owner add up to the fleet
    for by in ["tariff", "owner-inn"] {
        let s = adminctl_json(&gw, &["alerts", "summary", "--by", by]);
        let groups = s["groups"].as_array().unwrap();
        let sum: u64 = groups.iter().map(|g| g["total"].as_u64().unwrap()).sum();
        assert_eq!(sum, 10, "{by}: {s}");
        for colour in ["red", "yellow", "green", "grey"] {
            let sum: u64 = groups.iter().map(|g| g[colour].as_u64().unwrap()).sum();
            assert_eq!(Some(sum), s[colour].as_u64(), "{by} {colour}: {s}");
        }
    }
    let s = adminctl_json(&gw, &["alerts", "summary", "--by", "tariff"]);
    let basic = s["groups"].as_array().unwrap().iter().find(|g| g["key"] == "basic").cloned().unwrap();
    assert_eq!(basic["total"], 2, "{s}");
    let out = gw.adminctl(&["alerts", "summary", "--by", "owner-inn"]);
    assert!(stdout(&out).contains("OWNER INN") && stdout(&out).contains(&owner), "{}", stdout(&out));
    // bad input: named field, exit codes, nothing changed
    let out = gw.adminctl(&["alerts", "list", "--state", "purple"]);
    assert_exit(&out, 2);
    let out = gw.adminctl(&["alerts", "summary", "--owner-inn", "123"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("owner_inn"), "{}", stderr(&out));
    let (status, body) = gw.http("GET", "/v1/lights?state=purple", gw.dev_token().as_deref(), None);
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("state")), "{body}");
    let (status, body) = gw.http("GET", "/v1/lights/summary?by=colour", gw.dev_token().as_deref(), None);
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("by")), "{body}");

    // ---- durations as people write them, in tables and messages alike
    assert_exit(&gw.adminctl(&["alerts", "rules", "add", "day", "--silent", "24h"]), 0);
    assert_exit(&gw.adminctl(&["alerts", "rules", "add", "day-and-half", "--silent", "36h"]), 0);
    let out = gw.adminctl(&["alerts", "rules", "list"]);
    let text = stdout(&out);
    assert!(text.contains("silent for more than 1 day"), "{text}");
    assert!(text.contains("silent for more than 36 h"), "{text}");
    assert!(text.contains("silent for more than 1 s"), "{text}");
    let v = adminctl_json(&gw, &["alerts", "list", "--rule", "quiet"]);
    let detail = v["items"][0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("no document since onboarding ") && detail.contains(" s ago"), "{detail}");

    // ---- the receipt check from the QR string
    let reg = &regs[2];
    let t = unix_now() - 120;
    assert_eq!(ack_code(gw.tcp(), &reg.receipt(1, t)), Some(0));
    let sign = reg.fiscal_sign(1, t);
    let when = {
        let secs = i64::from(t);
        let (d, s) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, day) = civil(d);
        format!("{y:04}{m:02}{day:02}T{:02}{:02}", s / 3600, s / 60 % 60)
    };
    let qr = |sum: &str, time: &str, fp: u32| format!("t={time}&s={sum}&fn={}&i=1&fp={fp}&n=1", reg.fn_number);
    let out = gw.adminctl(&["documents", "verify", "--qr", &qr("110.00", &when, sign)]);
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("valid:"), "{}", stdout(&out));
    // the sum disagrees: named, exit 4
    let out = gw.adminctl(&["documents", "verify", "--qr", &qr("111.00", &when, sign)]);
    assert_exit(&out, 4);
    assert!(stdout(&out).contains("sum (s): the receipt says 111.00, the stored document 110.00"), "{}", stdout(&out));
    let out = gw.adminctl(&["documents", "verify", "--qr", &qr("110.00", &when, sign), "-o", "json"]);
    assert_exit(&out, 0);
    let out = gw.adminctl(&["documents", "verify", "--qr", &qr("110", "20200101T0000", sign), "-o", "json"]);
    assert_exit(&out, 4);
    let v = json_of(&out);
    assert_eq!((v["result"].as_str(), v["mismatches"][0]["field"].as_str()), (Some("date_mismatch"), Some("t")), "{v}");
    let out = gw.adminctl(&["documents", "verify", "--qr", &qr("110.00", &when, sign ^ 1), "-o", "json"]);
    assert_exit(&out, 4);
    assert_eq!(json_of(&out)["result"], "fiscal_sign_mismatch");
    let other = qr("110.00", &when, sign).replace("&i=1&", "&i=9&");
    assert_exit(&gw.adminctl(&["documents", "verify", "--qr", &other]), 4);
    // a malformed string says which part
    for (bad, part) in [
        (qr("1,10", &when, sign), "part s"),
        (qr("110.00", "2026-01-05", sign), "part t"),
        (qr("110.00", &when, sign).replace("&fn=", "&fn=1"), "part fn"),
        (qr("110.00", &when, sign).replace("&i=1", ""), "part i"),
        ("not a qr".to_owned(), "qr:"),
    ] {
        let out = gw.adminctl(&["documents", "verify", "--qr", &bad]);
        assert_exit(&out, 1);
        assert!(stderr(&out).contains(part), "{bad}: {}", stderr(&out));
    }
    let token = gw.dev_token();
    let path = format!("/v1/documents/verify?qr=t%3Dx%26s%3D1%26fn%3D{}%26i%3D1%26fp%3D1", reg.fn_number);
    let (status, body) = gw.http("GET", &path, token.as_deref(), None);
    assert_eq!(
        (status, body["error"]["field"].as_str(), body["part"].as_str()),
        (400, Some("qr"), Some("t")),
        "{body}"
    );
    // --qr with the three numbers: usage
    assert_exit(&gw.adminctl(&["documents", "verify", "--qr", &qr("1", &when, 1), "--fd", "1"]), 2);
    // a check changes nothing: not audited
    let v = adminctl_json(&gw, &["audit", "list", "--all"]);
    assert!(v["items"].as_array().unwrap().iter().all(|e| !e["action"].as_str().unwrap().contains("verify")));
}

/// Days since 1970-01-01 → (year, month, day) (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
