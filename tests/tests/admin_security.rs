//! Admin API security through the real gateway binary: every route of the route table
//! answers 401 without or with a bad token and 403 to a viewer's write; tokens from the
//! config file (as SHA-256) and from GATEWAY_ADMIN_TOKEN work and never appear in logs,
//! metrics or the audit log; the development token is created 0600 at first start,
//! reused after a restart, and found by `adminctl` through `--data-dir`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use e2e::{GatewayOpts, GatewayProcess, adminctl_command, assert_exit, json_of, stderr};
use serde_json::json;
use sha2::Digest;

const ADMIN_CANARY: &str = "canary-admin-7f3e9d1c5b";
const VIEWER_CANARY: &str = "canary-viewer-2a8c4e6f0d";

fn concrete(path: &str) -> String {
    path.replace("{rnm}", "0000000001012345")
        .replace("{name}", "plan")
        .replace("{fn_number}", "9999078900000001")
        .replace("{fd}", "1")
        .replace(['{', '}'], "")
}

#[test]
fn every_route_is_authenticated_and_viewers_cannot_write() {
    let digest = hex::encode(sha2::Sha256::digest(VIEWER_CANARY.as_bytes()));
    let config = format!("[[admin.tokens]]\nname = \"auditor\"\nsha256 = \"{digest}\"\nrole = \"viewer\"\n");
    // every route is called with bad tokens from one address: the failure limit (tested in
    // admin_tls_contexts.rs) would answer 429 after 20, so it is off here
    let gw = GatewayProcess::start(
        GatewayOpts::default()
            .config(&config)
            .env("GATEWAY_ADMIN_TOKEN", ADMIN_CANARY)
            .env("GATEWAY_ADMIN__MAX_AUTH_FAILURES", "0"),
    );
    assert!(gw.dev_token().is_none(), "no development token when tokens are configured");

    let routes = gateway::control::admin::route_table();
    assert!(routes.len() >= 16);
    for r in &routes {
        let path = concrete(r.path);
        let method = r.method.as_str();
        let body = (method != "GET").then(|| json!({}));
        for token in [None, Some("not-a-token"), Some(&ADMIN_CANARY[..10])] {
            let (status, v) = gw.http(method, &path, token, body.as_ref());
            assert_eq!(status, 401, "{method} {path} with {token:?}: {v}");
            assert_eq!(v["error"]["code"], "unauthenticated", "{v}");
        }
        let (status, v) = gw.http(method, &path, Some(VIEWER_CANARY), body.as_ref());
        if r.is_write() {
            assert_eq!(status, 403, "viewer {method} {path}: {v}");
            assert_eq!(v["error"]["code"], "forbidden");
        } else {
            assert!(![401, 403].contains(&status), "viewer {method} {path}: {status} {v}");
        }
        let (status, v) = gw.http(method, &path, Some(ADMIN_CANARY), body.as_ref());
        assert!(![401, 403].contains(&status), "admin {method} {path}: {status} {v}");
        assert!(status != 200 || v.is_object(), "{method} {path}: {v}");
    }
    let (status, _) = gw.http("GET", "/v1/not-a-route", None, None);
    assert_eq!(status, 401, "unknown paths authenticate first");

    // adminctl: bad token → 3, viewer write → 3, viewer read → 0
    let out = gw.adminctl_as(Some("wrong"), &["registers", "list"]);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    let out = gw.adminctl_as(Some(VIEWER_CANARY), &["tariffs", "create", "P", "--period-days", "30", "--price", "1"]);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    assert_exit(&gw.adminctl_as(Some(VIEWER_CANARY), &["tariffs", "list"]), 0);
    let out = gw.adminctl_as(Some(ADMIN_CANARY), &["tariffs", "create", "P", "--period-days", "30", "--price", "1"]);
    assert_exit(&out, 0);
    let out = gw.adminctl_as(Some(VIEWER_CANARY), &["audit", "list", "-o", "json"]);
    let audit = json_of(&out);
    assert_eq!(audit["items"][0]["actor"], "env", "{audit}");

    // metrics count admin requests by route template and status
    let (_, metrics) = e2e::http_request(gw.addrs().metrics.unwrap(), "GET", "/metrics", None, None);
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains("ofd_gateway_admin_requests_total{route=\"/v1/registers/{rnm}\",status=\"401\"}"),
        "{metrics}"
    );

    // the tokens never appear in logs, metrics or the audit log
    for canary in [ADMIN_CANARY, VIEWER_CANARY] {
        assert!(!gw.stderr_log().contains(canary), "token in the gateway log");
        assert!(!metrics.contains(canary), "token in metrics");
        assert!(!audit.to_string().contains(canary), "token in the audit log");
    }
}

#[test]
fn development_token_is_private_reused_and_found_by_adminctl() {
    let mut gw = GatewayProcess::start(GatewayOpts::default());
    let path = gw.data_dir().join("admin-token");
    let token = gw.dev_token().expect("created at first start");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(gw.stderr_log().contains("admin-token"), "its path is logged");
    assert!(!gw.stderr_log().contains(&token), "the token is not");

    gw.restart();
    assert_eq!(gw.dev_token().as_deref(), Some(token.as_str()), "reused after a restart");

    // adminctl with no token at all finds it through --data-dir (a local gateway)
    let out = adminctl_command()
        .args(["--server", &gw.admin_url(), "--data-dir"])
        .arg(gw.data_dir())
        .args(["registers", "list", "-o", "json"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(json_of(&out)["items"].as_array().unwrap().len(), 0);
    // ... and through GATEWAY_DATA_DIR, the gateway's own variable
    let out = adminctl_command()
        .env("GATEWAY_DATA_DIR", gw.data_dir())
        .args(["--server", &gw.admin_url(), "audit", "list"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    // without any token: 401 → exit 3, with a hint
    let out = adminctl_command()
        .args(["--server", &gw.admin_url(), "--data-dir", "/nonexistent", "registers", "list"])
        .output()
        .unwrap();
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("hint"), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&token));
    assert!(gw.terminate(), "graceful exit");
}
