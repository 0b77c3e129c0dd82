//! The gateway binary: `--check-config` and the environment layer, through the real
//! executable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn gateway() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gateway"));
    c.env_remove("RUST_LOG");
    c
}

#[test]
fn check_config_accepts_the_example() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/gateway.example.toml");
    let out = gateway().arg("--config").arg(&example).arg("--check-config").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));
}

#[test]
fn check_config_rejects_bad_values_with_the_field_and_exit_64() {
    let out = gateway().env("GATEWAY_LIMITS__IDLE_TIMEOUT", "never").arg("--check-config").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limits.idle_timeout"), "{err}");

    let out = gateway().args(["--tcp-listen", "nowhere", "--check-config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tcp-listen"));

    let out = gateway().args(["--config", "/nonexistent/gw.toml", "--check-config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn environment_overrides_defaults() {
    let out = gateway()
        .env("GATEWAY_SHUTDOWN__DRAIN_PERIOD", "7s")
        .env("GATEWAY_LISTEN__QUIC", "off")
        .arg("print-config")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("drain_period = \"7 s\""), "{text}");
    assert!(text.contains("quic = \"off\""), "{text}");
}
