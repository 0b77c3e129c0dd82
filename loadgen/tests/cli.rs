//! The binary: register CSV for `adminctl registers import`, and refusals that protect
//! the machine (non-loopback addresses, connection counts beyond the file limit).

use std::collections::HashSet;
use std::process::Command;

use storage::{Inn, Rnm};

fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
}

#[test]
fn registers_csv_parses_and_every_identifier_validates() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("regs.csv");
    let st = loadgen()
        .args(["registers", "--count", "600", "--first-register", "1000", "--seed", "9"])
        .args(["--tariff", "OFD-15", "--out"])
        .arg(&out)
        .status()
        .expect("run");
    assert!(st.success());
    let mut r = csv::Reader::from_path(&out).expect("csv");
    let header: Vec<String> = r.headers().expect("header").iter().map(str::to_owned).collect();
    assert_eq!(
        header,
        ["rnm", "kkt_serial", "owner_inn", "name", "address", "group", "fn_number", "tariff", "paid_until"]
    );
    let (mut fns, mut rnms) = (HashSet::new(), HashSet::new());
    let mut n = 0;
    for rec in r.records() {
        let rec = rec.expect("record");
        let inn = Inn::parse(&rec[2]).expect("INN checksum");
        let rnm = Rnm::parse(&rec[0]).expect("RNM digits");
        rnm.verify(&inn, &rec[1]).expect("RNM check code");
        let fn_number = &rec[6];
        assert!(fn_number.len() == 16 && fn_number.starts_with("9999009"), "{fn_number}");
        assert!(ffd::FnNumber::parse_strict(fn_number).is_ok());
        assert!(!rec[3].is_empty() && !rec[5].is_empty());
        assert_eq!(&rec[7], "OFD-15");
        assert!(time::OffsetDateTime::parse(&rec[8], &time::format_description::well_known::Rfc3339).is_ok());
        assert!(fns.insert(fn_number.to_owned()) && rnms.insert(rec[0].to_owned()), "duplicates");
        n += 1;
    }
    assert_eq!(n, 600);
    // the first row is register 1000 of seed 9
    let first = csv::Reader::from_path(&out).expect("csv").records().next().expect("row").expect("row");
    assert_eq!(&first[6], "9999009000001000");
}

#[test]
fn empty_optional_columns() {
    let o = loadgen().args(["registers", "--count", "2", "--paid-until", "none", "--out", "-"]).output().expect("run");
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).expect("utf8");
    for line in text.lines().skip(1) {
        assert!(line.ends_with(",,"), "tariff and paid_until empty: {line}");
    }
}

#[test]
fn non_loopback_targets_and_sources_are_refused() {
    for args in [
        vec!["run", "--target", "10.0.0.1:7777", "--duration", "1s"],
        vec!["run", "--target", "8.8.8.8:7777"],
        vec!["run", "--target", "example.com:7777"],
        vec!["run", "--source-ips", "192.168.0.1-192.168.0.3"],
        vec!["idle", "--connections", "1", "--target", "172.16.0.1:7777"],
        vec!["run", "--onboard", "--admin", "http://10.1.2.3:8080", "--admin-token", "x"],
        vec!["baseline", "--listen", "0.0.0.0:7777"],
    ] {
        let o = loadgen().args(&args).output().expect("run");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("127.0.0.0/8") || err.contains("loopback"), "{args:?}: {err}");
    }
}

#[test]
fn connection_counts_beyond_the_file_limit_are_refused_with_advice() {
    let limit = loadgen::sys::FileLimit::current().expect("limit");
    let n = limit.soft * 2 + 10;
    let o = loadgen().args(["idle", "--connections", &n.to_string(), "--target", "127.0.0.1:9"]).output().expect("run");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Run 3 loadgen processes"), "{err}");
    assert!(err.contains("QUIC"), "{err}");
    let o = loadgen().args(["run", "--count", &n.to_string(), "--target", "127.0.0.1:9"]).output().expect("run");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn tls_without_a_ca_says_how_to_get_one() {
    let o = loadgen().args(["run", "--transport", "tls"]).output().expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--gateway-data-dir"));
}

#[test]
fn out_of_range_values_are_usage_errors() {
    for args in [
        vec!["run", "--rate", "0"],
        vec!["run", "--rate", "1e-30"],
        vec!["run", "--ramp-rate", "0"],
        vec!["run", "--timeout", "100years"],
        vec!["run", "--warmup", "20s", "--duration", "10s"],
        vec!["run", "--duplicates", "1.5"],
        vec!["run", "--faults", "nonsense"],
        vec!["run", "--count", "20000000"],
    ] {
        let o = loadgen().args(&args).output().expect("run");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
}
