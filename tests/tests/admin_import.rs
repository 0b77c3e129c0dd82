//! `adminctl registers import` of 10,000 rows with a few bad ones, through the real
//! gateway: all-or-nothing by default (every bad row reported with its CSV line, nothing
//! applied), `--dry-run` changes nothing, `--partial` applies the valid rows, a second run
//! is idempotent, and imported registers are accepted at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;

use e2e::{CSV_HEADER, GatewayOpts, GatewayProcess, TestRegister, ack_code, assert_exit, json_of, unix_now};
use serde_json::Value;

const ROWS: u64 = 10_000;

/// The CSV, and the (CSV line, field) of every bad row.
fn csv_with_bad_rows() -> (String, Vec<(u64, &'static str)>) {
    let mut csv = String::from(CSV_HEADER);
    csv.push('\n');
    let mut bad = Vec::new();
    for i in 0..ROWS {
        let line = i + 2; // the header is line 1
        let reg = TestRegister::new(10_000 + i);
        let mut row = reg.csv_row(None, Some("2099-01-01T00:00:00Z"));
        match i {
            1_234 => {
                // INN with a wrong control digit
                let inn = reg.inn.to_string();
                let last = inn.as_bytes()[9] - b'0';
                let broken = format!("{}{}", &inn[..9], (last + 1) % 10);
                row = row.replacen(&inn, &broken, 1);
                bad.push((line, "owner_inn"));
            }
            5_000 => {
                // a 15-digit FN
                row = row.replacen(&reg.fn_number.to_string(), &reg.fn_number.to_string()[1..], 1);
                bad.push((line, "fn_number"));
            }
            9_998 => {
                // RNM whose check code does not match the serial
                row = row.replacen(&reg.serial, "999999999999", 1);
                bad.push((line, "rnm"));
            }
            _ => {}
        }
        writeln!(csv, "{row}").unwrap();
    }
    (csv, bad)
}

fn count_registers(gw: &GatewayProcess) -> usize {
    let out = gw.adminctl(&["registers", "list", "--all", "-o", "json"]);
    assert_exit(&out, 0);
    json_of(&out)["items"].as_array().unwrap().len()
}

#[test]
fn import_of_10000_rows_with_bad_ones() {
    let gw = GatewayProcess::start(GatewayOpts::default());
    let (csv, bad) = csv_with_bad_rows();
    let path = gw.data_dir().join("registers.csv");
    std::fs::write(&path, csv).unwrap();
    let file = path.to_str().unwrap();

    // all-or-nothing: every bad row reported with its CSV line and field, nothing applied
    let out = gw.adminctl(&["registers", "import", file, "-o", "json"]);
    assert_exit(&out, 1);
    let v = json_of(&out);
    let errors: Vec<(u64, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str().unwrap().to_owned()))
        .collect();
    let expected: Vec<(u64, String)> = bad.iter().map(|(l, f)| (*l, (*f).to_owned())).collect();
    assert_eq!(errors, expected, "{v}");
    assert_eq!((v["created"].as_u64(), v["applied"].as_bool()), (Some(0), Some(false)), "{v}");
    assert_eq!(count_registers(&gw), 0, "nothing applied without --partial");
    // the table output names line, field and rule too
    let out = gw.adminctl(&["registers", "import", file]);
    assert_exit(&out, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1236") && text.contains("owner_inn") && text.contains("checksum"), "{text}");

    // dry run with --partial: counts, no change
    let out = gw.adminctl(&["registers", "import", file, "--partial", "--dry-run", "-o", "json"]);
    assert_exit(&out, 1);
    let v = json_of(&out);
    assert_eq!(v["created"].as_u64(), Some(ROWS - 3), "{v}");
    assert_eq!(count_registers(&gw), 0, "dry run applies nothing");

    // --partial applies the valid rows
    let out = gw.adminctl(&["registers", "import", file, "--partial", "-o", "json"]);
    assert_exit(&out, 1);
    let v = json_of(&out);
    assert_eq!(
        (v["created"].as_u64(), v["updated"].as_u64(), v["unchanged"].as_u64()),
        (Some(ROWS - 3), Some(0), Some(0)),
        "{v}"
    );
    assert_eq!(v["errors"].as_array().unwrap().len(), 3);
    assert_eq!(count_registers(&gw), (ROWS - 3) as usize);

    // idempotent: the same file again changes nothing
    let out = gw.adminctl(&["registers", "import", file, "--partial", "-o", "json"]);
    let v = json_of(&out);
    assert_eq!(
        (v["created"].as_u64(), v["updated"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(0), Some(ROWS - 3)),
        "{v}"
    );

    // imported registers are accepted at once; bad rows were not created
    let t = unix_now();
    assert_eq!(ack_code(gw.tcp(), &TestRegister::new(10_000).receipt(1, t)), Some(0));
    assert_eq!(ack_code(gw.tcp(), &TestRegister::new(10_000 + 9_999).receipt(1, t)), Some(0));
    assert_eq!(ack_code(gw.tcp(), &TestRegister::new(10_000 + 5_000).receipt(1, t)), None);

    // the import is audited (one entry per applied request)
    let out = gw.adminctl(&["audit", "list", "--action", "register.import", "-o", "json"]);
    let v = json_of(&out);
    let entries = v["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "two batches of at most 5,000 rows: {}", entries.len());
    let created: u64 = entries.iter().map(|e| e["after"]["created"].as_u64().unwrap()).sum();
    assert_eq!(created, ROWS - 3);
    assert!(entries.iter().all(|e: &Value| e["actor"] == "dev"));
}
