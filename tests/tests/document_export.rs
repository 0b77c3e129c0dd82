//! `adminctl documents export` through the real gateway: the documents of a register or
//! an owner over a period, streamed as JSON lines (FNS JSON per document) or CSV, in a
//! stable order (register, FN, FD) that makes it resumable by FD position (`--after`, and
//! `--out FILE --resume` after a cut-off line); bad input names the field and changes
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fns_support;

use e2e::{GatewayOpts, GatewayProcess, TestRegister, assert_exit, stderr, unix_now};
use fns_support::{onboard, send_all};
use serde_json::Value;

fn export(gw: &GatewayProcess, args: &[&str]) -> String {
    let mut all = vec!["documents", "export"];
    all.extend_from_slice(args);
    let out = gw.adminctl(&all);
    assert_exit(&out, 0);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn export_streams_jsonl_and_csv_and_resumes_by_fd_position() {
    let gw = GatewayProcess::start(GatewayOpts::default());
    // two registers of one owner, one of another
    let (a, b, c) = (TestRegister::new(9_100), TestRegister::new(9_101), TestRegister::new(9_250));
    assert_eq!(a.inn, b.inn);
    assert_ne!(a.inn, c.inn);
    for r in [&a, &b, &c] {
        onboard(&gw, r);
    }
    let t = unix_now();
    let mut msgs = Vec::new();
    for fd in 1..=20 {
        msgs.push(a.receipt(fd, t));
    }
    for fd in 1..=10 {
        msgs.push(b.receipt(fd, t));
    }
    for fd in 1..=5 {
        msgs.push(c.receipt(fd, t));
    }
    send_all(gw.tcp(), msgs, 3);
    let owner = a.inn.to_string();

    // JSON lines of the owner: 30 documents, by register (RNM), then FD
    let text = export(&gw, &["--owner-inn", &owner, "-o", "jsonl"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 30, "{text}");
    let docs: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut order: Vec<(String, u64)> =
        docs.iter().map(|d| (d["rnm"].as_str().unwrap().to_owned(), d["fd"].as_u64().unwrap())).collect();
    let sorted = {
        let mut s = order.clone();
        s.sort();
        s
    };
    assert_eq!(order, sorted, "register, then FD");
    assert!(docs.iter().all(|d| d["fns_json"]["receipt"].is_object()), "{}", lines[0]);
    assert!(
        docs.iter().all(|d| d["fn_number"] == a.fn_number.to_string() || d["fn_number"] == b.fn_number.to_string())
    );
    // the default format is jsonl
    assert_eq!(export(&gw, &["--owner-inn", &owner]), text);

    // CSV of one register: header and 10 rows
    let csv = export(&gw, &["--rnm", b.rnm.as_str(), "-o", "csv"]);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 11, "{csv}");
    assert!(rows[0].starts_with("fn_number,fd,rnm,doc_type,doc_type_name,"), "{csv}");
    assert!(rows[1].starts_with(&format!("{},1,{},3,receipt,", b.fn_number, b.rnm)), "{csv}");
    assert!(rows[1].contains(",110.00,"), "{csv}");

    // a period with nothing in it
    assert_eq!(export(&gw, &["--owner-inn", &owner, "--from", "2000-01-01", "--to", "2000-02-01"]), "");
    // resumable by FD position: --after continues right after that document
    let cut = 12;
    order.truncate(cut);
    let pos = format!("{}:{}", docs[cut - 1]["fn_number"].as_str().unwrap(), docs[cut - 1]["fd"]);
    let rest = export(&gw, &["--owner-inn", &owner, "--after", &pos]);
    assert_eq!(rest, lines[cut..].iter().map(|l| format!("{l}\n")).collect::<String>());
    // --out FILE --resume: a file cut inside a line is completed to the whole export
    let file = gw.data_dir().join("export.jsonl");
    let mut partial: String = lines[..cut].iter().map(|l| format!("{l}\n")).collect();
    partial.push_str(&lines[cut][..20]);
    std::fs::write(&file, partial).unwrap();
    let f = file.to_str().unwrap();
    assert_exit(&gw.adminctl(&["documents", "export", "--owner-inn", &owner, "--out", f, "--resume"]), 0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    // the same in CSV (the header is not repeated)
    let file = gw.data_dir().join("export.csv");
    std::fs::write(&file, format!("{}\n{}\n{}", rows[0], rows[1], &rows[2][..10])).unwrap();
    let f = file.to_str().unwrap();
    let out = gw.adminctl(&["documents", "export", "--rnm", b.rnm.as_str(), "-o", "csv", "--out", f, "--resume"]);
    assert_exit(&out, 0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), csv);

    // bad input: the field named, the documented exit code, nothing written
    let bad = |args: &[&str], code: i32, says: &str| {
        let mut all = vec!["documents", "export"];
        all.extend_from_slice(args);
        let out = gw.adminctl(&all);
        assert_exit(&out, code);
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    };
    bad(&[], 2, "--rnm");
    bad(&["--rnm", a.rnm.as_str(), "--owner-inn", &owner], 2, "cannot be used with");
    bad(&["--owner-inn", &owner, "--from", "yesterday"], 1, "from");
    bad(&["--owner-inn", &owner, "--from", "2026-02-01", "--to", "2026-01-01"], 1, "to: must be after from");
    bad(&["--owner-inn", &owner, "--after", "12"], 1, "after");
    bad(&["--owner-inn", &owner, "--after", &format!("{}:1", c.fn_number)], 1, "after: FN");
    bad(&["--owner-inn", "123"], 1, "owner_inn");
    bad(&["--rnm", "12345"], 1, "rnm");
    bad(&["--owner-inn", &owner, "-o", "json"], 2, "-o jsonl");
    bad(&["--owner-inn", &owner, "--resume"], 2, "--out");
    let unknown = TestRegister::new(9_999);
    bad(&["--rnm", unknown.rnm.as_str()], 4, "no register");
    let out = gw.adminctl(&["documents", "list", "--rnm", a.rnm.as_str(), "-o", "csv"]);
    assert_exit(&out, 2);
}
