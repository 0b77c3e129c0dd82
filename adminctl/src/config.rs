//! Contexts, as kubectl has them: named gateways in `$XDG_CONFIG_HOME/adminctl/config.toml`
//! (else `~/.config/adminctl/config.toml`; `ADMINCTL_CONFIG` names another file), chosen
//! with `--context NAME` (`ADMINCTL_CONTEXT`) or by the file's `current_context`
//! (`adminctl config use-context NAME`).
//!
//! ```toml
//! current_context = "prod"
//!
//! [contexts.prod]
//! server = "https://gw1.ofd.example:8443"   # admin API URL
//! token_file = "/etc/ofd/admin-token"       # the bearer token, in a file (never in this one)
//! ca = "/etc/ofd/admin-ca.pem"              # CA that signed the server's certificate
//! client_cert = "/etc/ofd/me.pem"           # optional: client certificate and key (mutual TLS)
//! client_key = "/etc/ofd/me.key"
//!
//! [contexts.dev]
//! server = "http://127.0.0.1:8080"
//! data_dir = "./data"                       # a local gateway: its development token
//! ```
//!
//! Precedence: `--server`/`--token` (and their environment variables) over the context,
//! the context over the defaults. Without a file, or with no context chosen, nothing
//! changes from before: `http://127.0.0.1:8080` and the development token in `./data`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::client::{CliError, CliResult};

/// One named gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Admin API URL.
    pub server: Option<String>,
    /// File holding the bearer token.
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA (or the self-signed certificate) the server's certificate chains to.
    pub ca: Option<PathBuf>,
    /// PEM client certificate (mutual TLS), with `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Data directory of a local gateway (its development token).
    pub data_dir: Option<PathBuf>,
}

/// The config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The context used without `--context`.
    pub current_context: Option<String>,
    /// Named contexts.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// Where the config file is.
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ADMINCTL_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|p| !p.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("adminctl").join("config.toml"))
}

/// Reads the config file; a missing file is an empty configuration.
pub fn load(path: &Path) -> CliResult<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => return Err(CliError::usage(format!("cannot read {}: {e}", path.display()))),
    };
    let cfg: ConfigFile = toml::from_str(&text)
        .map_err(|e| CliError::usage(format!("{}: {}", path.display(), e.to_string().trim_end())))?;
    for (name, c) in &cfg.contexts {
        if c.server.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err(CliError::usage(format!("{}: context {name:?}: server is required", path.display())));
        }
        if c.client_cert.is_some() != c.client_key.is_some() {
            return Err(CliError::usage(format!(
                "{}: context {name:?}: client_cert and client_key go together",
                path.display()
            )));
        }
    }
    Ok(cfg)
}

/// The context chosen by `--context` or `current_context`, if any.
pub fn select(cfg: &ConfigFile, path: &Path, flag: Option<&str>) -> CliResult<Option<(String, Context)>> {
    let (name, from) = match (flag.map(str::trim).filter(|s| !s.is_empty()), cfg.current_context.as_deref()) {
        (Some(n), _) => (n, "--context"),
        (None, Some(n)) => (n, "current_context"),
        (None, None) => return Ok(None),
    };
    match cfg.contexts.get(name) {
        Some(c) => Ok(Some((name.to_owned(), c.clone()))),
        None => Err(CliError::usage(format!(
            "{from}: no context {name:?} in {} (contexts: {})",
            path.display(),
            known(cfg)
        ))),
    }
}

fn known(cfg: &ConfigFile) -> String {
    if cfg.contexts.is_empty() {
        "none".to_owned()
    } else {
        cfg.contexts.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Sets `current_context` in the file, keeping everything else as written.
pub fn use_context(path: &Path, name: &str) -> CliResult<()> {
    let cfg = load(path)?;
    if !cfg.contexts.contains_key(name) {
        return Err(CliError::usage(format!("no context {name:?} in {} (contexts: {})", path.display(), known(&cfg))));
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let line = format!("current_context = {}", toml::Value::String(name.to_owned()));
    let mut out = Vec::new();
    let mut replaced = false;
    let mut in_root = true;
    for l in text.lines() {
        let t = l.trim_start();
        if t.starts_with('[') {
            in_root = false;
        }
        if in_root
            && !replaced
            && t.starts_with("current_context")
            && t["current_context".len()..].trim_start().starts_with('=')
        {
            out.push(line.clone());
            replaced = true;
        } else {
            out.push(l.to_owned());
        }
    }
    if !replaced {
        out.insert(0, line);
    }
    let mut new = out.join("\n");
    new.push('\n');
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, new)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| CliError::new(crate::client::exit::SERVER, format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_context_keeps_the_rest_of_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.toml");
        let text = "# my gateways\n[contexts.a]\nserver = \"http://127.0.0.1:1\"\n\n[contexts.b] # second\nserver = \"http://127.0.0.1:2\"\n";
        std::fs::write(&p, text).expect("write");
        use_context(&p, "b").expect("b exists");
        let after = std::fs::read_to_string(&p).expect("read");
        assert_eq!(after, format!("current_context = \"b\"\n{text}"));
        use_context(&p, "a").expect("a exists");
        assert!(std::fs::read_to_string(&p).expect("read").starts_with("current_context = \"a\"\n# my gateways"));
        assert_eq!(use_context(&p, "zz").expect_err("unknown").code, 2);
        let cfg = load(&p).expect("parses");
        assert_eq!(select(&cfg, &p, None).expect("ok").map(|c| c.0).as_deref(), Some("a"));
        assert_eq!(select(&cfg, &p, Some("b")).expect("ok").map(|c| c.0).as_deref(), Some("b"));
        assert!(select(&cfg, &p, Some("c")).expect_err("unknown").message.contains("contexts: a, b"));
        std::fs::write(&p, "[contexts.x]\nserver = 5\n").expect("write");
        assert!(load(&p).expect_err("bad type").message.contains("server"));
    }
}
