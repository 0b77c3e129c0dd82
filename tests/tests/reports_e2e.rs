//! Reports through the real binaries: loadgen sends shifts of receipts to a gateway, then
//! `adminctl reports --by day` (table, JSON, CSV), `shifts list` and `gaps` agree with
//! each other and with what loadgen sent: receipts = documents sent − shift reports, every
//! shift's close report matches what arrived, no FD is missing; bad input exits with the
//! documented codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::{GatewayOpts, GatewayProcess, assert_exit, bin, json_of, unix_now};
use serde_json::Value;

/// The civil date of a day number (days since 1970-01-01), by the usual era arithmetic.
fn date(day: i64) -> String {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[test]
fn reports_shifts_and_gaps_agree_with_what_loadgen_sent() {
    let gw = GatewayProcess::start(GatewayOpts::default());
    let json = gw.data_dir().join("loadgen.json");
    let out = Command::new(bin("loadgen"))
        .args(["run", "--transport", "tcp", "--target", &gw.tcp().to_string()])
        .arg("--gateway-data-dir")
        .arg(gw.data_dir())
        .args(["--admin", &gw.admin_url(), "--onboard"])
        .args(["--count", "4", "--first-register", "300", "--rate", "100", "--duration", "2s"])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("loadgen runs");
    assert!(out.status.success(), "loadgen: {}", String::from_utf8_lossy(&out.stderr));
    let lg: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let sent = lg["counters"]["documents_ok"].as_u64().unwrap();
    let kinds = &lg["documents_by_kind"];
    let reports = ["open_shift", "close_shift", "state_report"].iter().map(|k| kinds[k].as_u64().unwrap()).sum::<u64>();
    assert!(sent > 0 && kinds["receipt"].as_u64().unwrap() > 0, "{lg}");

    assert_eq!((date(0), date(20_780), date(20_819)), ("1970-01-01".into(), "2026-11-23".into(), "2027-01-01".into()));
    // loadgen writes 1012 as the wall clock's Unix seconds: local days around today (UTC)
    let today = i64::from(unix_now()) / 86_400;
    let (from, to) = (date(today - 1), date(today + 1));
    let report = |extra: &[&str]| {
        let mut args = vec!["reports", "--from", from.as_str(), "--to", to.as_str(), "--by", "day"];
        args.extend_from_slice(extra);
        gw.adminctl(&args)
    };
    // the aggregates trail the acknowledgments by a moment
    let deadline = Instant::now() + Duration::from_secs(30);
    let v = loop {
        let out = report(&["-o", "json"]);
        assert_exit(&out, 0);
        let v = json_of(&out);
        if v["total"]["documents"].as_u64() == Some(sent) || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let total = &v["total"];
    assert_eq!(total["documents"].as_u64(), Some(sent), "{v}");
    assert_eq!(total["unreadable"], 0);
    assert_eq!(total["receipts"].as_u64(), Some(sent - reports), "receipts = documents sent − shift/state reports");
    assert_eq!(
        total["kinds"]["sale"]["count"].as_u64().unwrap() + total["kinds"]["sale_return"]["count"].as_u64().unwrap(),
        kinds["receipt"].as_u64().unwrap() + kinds["return"].as_u64().unwrap()
    );
    assert_eq!(v["time_zones"], serde_json::json!(["Europe/Moscow"]));

    // the table says the same
    let out = report(&[]);
    assert_exit(&out, 0);
    let table = String::from_utf8_lossy(&out.stdout);
    let total_line = table.lines().find(|l| l.contains("total")).unwrap();
    assert!(total_line.contains(&format!(" {} ", sent - reports)), "{table}");

    // CSV: the total row carries the same receipts and sums
    let out = report(&["-o", "csv"]);
    assert_exit(&out, 0);
    let csv = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let last: Vec<&str> = csv.lines().last().unwrap().split(',').collect();
    let col = |name: &str| last[header.iter().position(|h| *h == name).unwrap()].to_owned();
    assert_eq!(col("group"), "total");
    assert_eq!(col("receipts"), (sent - reports).to_string());
    assert_eq!(col("sale_total"), total["kinds"]["sale"]["total"].to_string());
    assert_eq!(col("revenue_total"), total["revenue"]["total"].to_string());

    // shifts of every register: closed shifts add up, and their receipts sum to the report's
    let regs = json_of(&gw.adminctl(&["registers", "list", "--all", "-o", "json"]));
    let mut shift_receipts = 0;
    let mut shift_documents = 0;
    for r in regs["items"].as_array().unwrap() {
        let rnm = r.get("rnm").or_else(|| r["register"].get("rnm")).and_then(Value::as_str).unwrap();
        let out = gw.adminctl(&["shifts", "list", "--rnm", rnm, "--all", "-o", "json"]);
        assert_exit(&out, 0);
        let s = json_of(&out);
        assert_eq!(s["mismatches"], 0, "{s}");
        for item in s["items"].as_array().unwrap() {
            shift_receipts += item["received_receipts"].as_u64().unwrap();
            shift_documents += item["received"]["documents"].as_u64().unwrap();
        }
        let out = gw.adminctl(&["gaps", "--rnm", rnm, "-o", "json"]);
        assert_exit(&out, 0);
        assert_eq!(json_of(&out)["missing"], 0);
        assert_exit(&gw.adminctl(&["shifts", "list", "--rnm", rnm]), 0);
    }
    assert_eq!(shift_receipts, sent - reports);
    assert_eq!(shift_documents, sent);
    let out = gw.adminctl(&["gaps", "-o", "json"]);
    assert_exit(&out, 0);
    assert_eq!(json_of(&out)["fns"], 0);

    // bad input: the server names the field (exit 1); an unknown register: exit 4
    let out = gw.adminctl(&["reports", "--from", &to, "--to", &from]);
    assert_exit(&out, 1);
    assert!(e2e::stderr(&out).contains("to:"), "{}", e2e::stderr(&out));
    assert_exit(&gw.adminctl(&["reports", "--from", &from, "--by", "year"]), 1);
    assert_exit(&gw.adminctl(&["reports", "--from", &from, "--time-zone", "Mars/Olympus"]), 1);
    assert_exit(&gw.adminctl(&["reports", "--from", "2020-01-01", "--to", &to]), 1);
    assert_exit(&gw.adminctl(&["reports", "--from", &from, "--rnm", "0000000099012345"]), 4);
    assert_exit(&gw.adminctl(&["reports", "--from", &from, "-o", "raw"]), 2);
}
