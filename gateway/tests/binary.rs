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

/// `storage.min_free_space` from the environment: a size, a share, the smaller of both, or
/// a plain number of bytes (which the environment layer hands over as an integer); a bad
/// value names the field and exits 64.
#[test]
fn min_free_space_from_the_environment() {
    for (value, printed) in [("16MiB", "16MiB"), ("5%", "5%"), ("min(1GiB, 2%)", "min(1GiB, 2%)"), ("0", "0")] {
        let out = gateway().env("GATEWAY_STORAGE__MIN_FREE_SPACE", value).arg("print-config").output().unwrap();
        assert!(out.status.success(), "{value}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("min_free_space = \"{printed}\"")), "{value}: {text}");
    }
    for bad in ["lots", "95%", "-5"] {
        let out = gateway().env("GATEWAY_STORAGE__MIN_FREE_SPACE", bad).arg("--check-config").output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("storage.min_free_space"), "{bad}: {err}");
    }
}
