//! The adminctl binary without a server: usage errors exit 2, an unreachable server exits
//! 1, completions print a script. (Its behaviour against a real gateway is tested in
//! the e2e crate, `tests/tests/admin_*.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn adminctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_adminctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ADMINCTL_") || k.starts_with("GATEWAY_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["nonsense"][..],
        &["registers"][..],
        &["registers", "add", "--rnm", "1"][..],
        &["registers", "list", "-o", "xml"][..],
        &["registers", "list", "-o", "raw"][..],
        &["registers", "import", "/nonexistent.csv"][..],
        &["tariffs", "create", "P", "--period-days", "30", "--price", "1.234"][..],
        &["tariffs", "renew"][..],
        &["--server", "ftp://x", "audit", "list"][..],
    ] {
        let out = adminctl().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn unreachable_server_exits_1() {
    let out = adminctl()
        .args(["--server", "127.0.0.1:9", "--token", "t", "--timeout", "5s", "audit", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}

#[test]
fn help_lists_exit_codes_and_completions_work() {
    let out = adminctl().arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit codes"));
    for shell in ["bash", "zsh", "fish"] {
        let out = adminctl().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("adminctl"));
    }
}
