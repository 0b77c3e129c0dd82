//! loadgen against the real gateway, a few seconds over each transport: the registers are
//! onboarded through the admin API by loadgen itself, every acknowledgment is verified,
//! retransmissions (injected duplicates) get byte-identical acknowledgments and injected
//! malformed documents get exactly the answer the protocol requires — zero mismatches.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use e2e::{GatewayOpts, GatewayProcess, bin};
use serde_json::Value;

fn run_loadgen(gw: &GatewayProcess, transport: &str, first_register: u32, extra: &[&str]) -> Value {
    let addrs = gw.addrs();
    let target = match transport {
        "tcp" => addrs.tcp,
        "tls" => addrs.tls,
        _ => addrs.quic,
    }
    .unwrap();
    let json = gw.data_dir().join(format!("loadgen-{transport}.json"));
    let out = Command::new(bin("loadgen"))
        .args(["run", "--transport", transport, "--target", &target.to_string()])
        .arg("--gateway-data-dir")
        .arg(gw.data_dir())
        .args(["--admin", &gw.admin_url(), "--onboard"])
        .args(["--count", "20", "--first-register", &first_register.to_string()])
        .args(["--rate", "400", "--duration", "3s"])
        .args(["--duplicates", "0.05", "--malformed", "0.05"])
        .args(extra)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("loadgen runs");
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap_or_default()).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "loadgen over {transport} failed ({}):\n{}\n{}\n{report}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

#[test]
fn loadgen_against_the_gateway_over_every_transport_has_zero_mismatches() {
    let gw = GatewayProcess::start(GatewayOpts::default());
    for (i, transport) in ["tcp", "tls", "quic"].into_iter().enumerate() {
        let r = run_loadgen(&gw, transport, 1000 * (i as u32 + 1), &[]);
        let c = &r["counters"];
        assert_eq!(r["mismatches_total"], 0, "{transport}: {r}");
        assert_eq!(c["ack_changed"], 0, "{transport}: a retransmission got a different ack");
        assert_eq!(c["timeouts"], 0, "{transport}: {c}");
        assert_eq!(c["refusals"], 0, "{transport}: onboarded registers are never refused");
        let ok = c["documents_ok"].as_u64().unwrap();
        assert!(ok >= 600, "{transport}: only {ok} documents acknowledged");
        assert!(c["duplicates_sent"].as_u64().unwrap() > 0, "{transport}: duplicates were injected");
        assert!(c["malformed_sent"].as_u64().unwrap() > 0, "{transport}: malformed documents were injected");
        assert_eq!(c["malformed_ok"], c["malformed_sent"], "{transport}: each malformed one answered as required");
    }
}

#[test]
fn loadgen_counts_refusals_for_registers_that_were_not_onboarded() {
    let gw = GatewayProcess::start(GatewayOpts::default());
    let addrs = gw.addrs();
    let out = Command::new(bin("loadgen"))
        .args(["run", "--transport", "tcp", "--target", &addrs.tcp.unwrap().to_string()])
        .args(["--count", "5", "--first-register", "7000", "--rate", "50", "--duration", "1s", "--json", "-"])
        .output()
        .unwrap();
    // refusals are not mismatches; the report says the registers were refused
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| panic!("JSON report: {text}"));
    assert_eq!(report["mismatches_total"], 0, "{report}");
    assert!(report["counters"]["refusals"].as_u64().unwrap() > 0, "{report}");
}
