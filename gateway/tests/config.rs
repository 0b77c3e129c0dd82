//! The shipped example configuration parses and validates, matches the defaults, and the
//! validation names the field of each mistake.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use gateway::Config;

fn example_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/gateway.example.toml")
}

#[test]
fn example_config_parses_validates_and_equals_defaults() {
    let cfg = Config::load(Some(&example_path())).expect("example parses");
    cfg.validate().expect("example validates");
    assert_eq!(cfg, Config::default(), "the example documents the defaults");
}

/// The committed example is what `gateway config-doc` renders from the code's doc
/// comments and defaults (regenerate with
/// `cargo run -q -p gateway -- config-doc > config/gateway.example.toml`).
#[test]
fn example_config_is_rendered_from_the_code() {
    let committed = std::fs::read_to_string(example_path()).unwrap();
    let rendered = gateway::config::example::render();
    assert!(
        committed == rendered,
        "config/gateway.example.toml differs from the rendering of the code; run \
         `cargo run -q -p gateway -- config-doc > config/gateway.example.toml`"
    );
    // every field of every section is documented
    for line in rendered.lines().filter(|l| l.contains(" = ") && !l.starts_with('#')) {
        let at = rendered.find(&format!("\n{line}\n")).unwrap();
        let before = rendered[..at].lines().last().unwrap_or("");
        assert!(before.starts_with("# "), "{line:?} has no comment above it");
    }
}

fn load_str(toml: &str) -> Result<Config, String> {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    Config::load(Some(f.path()))
        .map_err(|e| e.to_string())
        .and_then(|c| c.validate().map(|()| c).map_err(|e| e.to_string()))
}

#[test]
fn mistakes_are_named_precisely() {
    let cases = [
        ("[limits]\nidle_timeout = \"soon\"\n", "limits.idle_timeout"),
        ("[limits]\nmax_body_bytes = 70000\n", "limits.max_body_bytes"),
        ("[listen]\ntcp = \"localhost\"\n", "listen.tcp"),
        ("[storage]\nbackend = \"postgres\"\n", "storage.backend"),
        ("[storage]\nmin_free_space = \"a lot\"\n", "storage.min_free_space"),
        ("[storage]\nmin_free_space = \"95%\"\n", "storage.min_free_space"),
        ("[storage]\nbackend = \"scylla\"\nconsistency = \"one\"\n", "storage.consistency"),
        ("ofd_inn = \"7700000000\"\n", "ofd_inn"),
        ("[limits]\nidel_timeout = \"1s\"\n", "idel_timeout"),
        ("[admin]\ntokens = [{ name = \"x\", sha256 = \"abc\", role = \"admin\" }]\n", "admin.tokens.sha256"),
        ("[tls]\nclient_auth = \"required\"\n", "tls.client_ca"),
        ("[storage]\nbackend = \"scylla\"\n", "signer.key_hex"),
        (
            "[signer]\nkey_hex = \"00112233445566778899aabbccddeeff\"\n[storage]\nbackend = \"scylla\"\njournal_settle = \"1s\"\n",
            "storage.journal_settle",
        ),
        (
            "[signer]\nkey_hex = \"00112233445566778899aabbccddeeff\"\n[storage]\nbackend = \"scylla\"\nmin_replication_factor = 0\n",
            "storage.min_replication_factor",
        ),
    ];
    for (toml, field) in cases {
        let err = load_str(toml).expect_err(toml);
        assert!(err.contains(field), "error for {toml:?} should name {field}: {err}");
    }
}
