//! The admin API against its own OpenAPI document, with schemathesis (PyPI) as the
//! property-based client: a running gateway serves `/openapi.json` (generated from the
//! route table and the handlers' types), and schemathesis generates requests for every
//! operation — examples, boundary values, random data, stateful sequences — and checks
//! that no answer is a server error, every status and content type is documented, every
//! body matches its schema, and auth and methods are enforced (`--checks all` except
//! `positive_data_acceptance`: the schemas describe shapes, while the API also checks
//! meaning — an INN's control digits, an RNM's check code — and refuses such requests with
//! a documented 400/422).
//!
//! schemathesis is installed by `scripts/test.sh` into `target/schemathesis-venv`; without
//! it the test FAILS, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use e2e::{GatewayOpts, GatewayProcess, TestRegister, ack_code, assert_exit, unix_now};

fn schemathesis() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/schemathesis-venv/bin/schemathesis");
    if venv.is_file() {
        return venv;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("schemathesis")).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("schemathesis is not installed: scripts/test.sh installs it into target/schemathesis-venv (pip install schemathesis)")
    })
}

#[test]
fn the_admin_api_matches_its_openapi_document_under_schemathesis() {
    let st = schemathesis();
    // the per-address limit on failed authentications is off: schemathesis sends requests
    // without and with wrong tokens on purpose (the limit is tested in admin_tls_contexts.rs)
    let gw = GatewayProcess::start(GatewayOpts::default().env("GATEWAY_ADMIN__MAX_AUTH_FAILURES", "0"));
    let token = gw.dev_token().unwrap();
    // some data, so that reads find something
    let reg = TestRegister::new(7_700);
    let args = reg.add_args();
    assert_exit(&gw.adminctl(&args.iter().map(String::as_str).collect::<Vec<_>>()), 0);
    assert_eq!(ack_code(gw.tcp(), &reg.receipt(1, unix_now())), Some(0));

    // the document: served with a token like every route, and it names every route
    let (status, doc) = gw.http("GET", "/openapi.json", Some(&token), None);
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    for r in gateway::control::admin::route_table() {
        let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} is not in /openapi.json", r.method, r.path);
    }
    let (status, _) = gw.http("GET", "/openapi.json", None, None);
    assert_eq!(status, 401, "the document needs a token like every route");
    let file = gw.data_dir().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();

    let started = Instant::now();
    let out = Command::new(&st)
        .arg("run")
        .arg(&file)
        .args(["--url", &gw.admin_url()])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance"])
        .args(["--max-examples", "25", "--workers", "2", "--seed", "15"])
        .args(["--generation-database", "none", "--request-timeout", "10", "--no-color"])
        .current_dir(gw.data_dir())
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found problems (exit {:?}):\n{text}\n--- gateway log:\n{}",
        out.status.code(),
        gw.stderr_log().lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    let n = gateway::control::admin::route_table().len();
    assert!(text.contains(&format!("Selected: {n}/{n}")), "every operation was selected:\n{text}");
    assert!(text.contains(&format!("Tested: {n}")), "every operation was tested:\n{text}");
    assert!(!text.contains("Rate limited"), "{text}");
    eprintln!("schemathesis: {n} operations in {:.1} s", started.elapsed().as_secs_f64());
}
