//! # adminctl — the admin CLI of the OFD gateway
//!
//! `adminctl <noun> <verb>` over the gateway's admin API (`docs/adminctl.md`). Global
//! flags: `--server` (`ADMINCTL_SERVER`, default `http://127.0.0.1:8080`), `--token`
//! (`ADMINCTL_TOKEN`), `-o table|json|yaml`. With no token given and a local server, the
//! development token `<data dir>/admin-token` that the gateway creates at first start is
//! used (`--data-dir` / `ADMINCTL_DATA_DIR`, else `GATEWAY_DATA_DIR`, else `./data`), so a
//! quick start needs no set-up. Named gateways (URL, token file, CA, client certificate)
//! live in `$XDG_CONFIG_HOME/adminctl/config.toml` and are chosen with `--context` or
//! `adminctl config use-context` ([`config`]).
//!
//! Exit codes: 0 ok · 1 error from the server (or unreachable) · 2 usage · 3 auth
//! (401/403) · 4 not found.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

pub mod client;
pub mod cmd;
pub mod config;
pub mod output;

use client::{CliError, CliResult, Client, exit};
use output::Format;

/// Default admin API address (the gateway's default `listen.admin`).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Exit codes, printed under `--help`.
const EXIT_CODES: &str = "Exit codes: 0 ok · 1 error from the server (or unreachable) · 2 usage · 3 authentication/permission (401/403, 429 too many failures) · 4 not found";

/// Admin CLI of the OFD gateway.
#[derive(Debug, Parser)]
#[command(name = "adminctl", version, about, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Top,
}

/// Options of every command.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Admin API address, e.g. http://127.0.0.1:8080 [default: the context's, else
    /// http://127.0.0.1:8080].
    #[arg(long, global = true, env = "ADMINCTL_SERVER")]
    pub server: Option<String>,
    /// A named gateway of the config file ($XDG_CONFIG_HOME/adminctl/config.toml).
    #[arg(long, global = true, env = "ADMINCTL_CONTEXT")]
    pub context: Option<String>,
    /// Bearer token (default: the local gateway's development token file).
    #[arg(long, global = true, env = "ADMINCTL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory of a local gateway, where its development token is (admin-token).
    #[arg(long, global = true, env = "ADMINCTL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Request timeout.
    #[arg(long, global = true, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Top-level commands: the nouns, and completions.
#[derive(Debug, Subcommand)]
pub enum Top {
    /// Nouns (registers, tariffs, documents, audit, ...).
    #[command(flatten)]
    Noun(Box<cmd::Noun>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// Shell.
        shell: clap_complete::Shell,
    },
    /// Contexts: named gateways in $XDG_CONFIG_HOME/adminctl/config.toml.
    Config {
        /// What to do.
        #[command(subcommand)]
        verb: ConfigVerb,
    },
}

/// `adminctl config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigVerb {
    /// Make NAME the context used without --context.
    UseContext {
        /// Context name.
        name: String,
    },
    /// List the contexts (the current one marked).
    #[command(visible_alias = "get-contexts")]
    Contexts,
    /// Print the current context's name.
    CurrentContext,
}

/// Parses "24h", "30m", "7d".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (write e.g. 30s, 24h, 7d)"))
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// The server URL: `host:port` gets `http://`.
pub fn server_url(s: &str) -> CliResult<reqwest::Url> {
    let s = s.trim();
    let with_scheme = if s.contains("://") { s.to_owned() } else { format!("http://{s}") };
    let mut url =
        reqwest::Url::parse(&with_scheme).map_err(|e| CliError::usage(format!("--server {s:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CliError::usage(format!("--server {s:?}: the scheme must be http or https")));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

/// Where the development token of a local gateway is looked for.
pub fn dev_token_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(d) = flag {
        return d.to_path_buf();
    }
    std::env::var_os("GATEWAY_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("./data"))
}

/// Picks the token: flag/env, else the context's token file, else the development token
/// of a local gateway.
fn resolve_token(
    g: &Global,
    url: &reqwest::Url,
    context: Option<&(String, config::Context)>,
) -> CliResult<(Option<String>, String)> {
    if let Some(t) = g.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok((Some(t.to_owned()), "the token given with --token / ADMINCTL_TOKEN was refused".into()));
    }
    if let Some((name, c)) = context
        && let Some(f) = &c.token_file
    {
        let t = std::fs::read_to_string(f)
            .map_err(|e| CliError::usage(format!("context {name:?}: token_file {}: {e}", f.display())))?;
        if t.trim().is_empty() {
            return Err(CliError::usage(format!("context {name:?}: token_file {} is empty", f.display())));
        }
        return Ok((Some(t.trim().to_owned()), format!("the token of context {name:?} ({}) was refused", f.display())));
    }
    let data_dir = g.data_dir.clone().or_else(|| context.and_then(|(_, c)| c.data_dir.clone()));
    let path = dev_token_dir(data_dir.as_deref()).join("admin-token");
    if is_loopback(url)
        && let Ok(t) = std::fs::read_to_string(&path)
        && !t.trim().is_empty()
    {
        return Ok((
            Some(t.trim().to_owned()),
            format!(
                "the development token {} was refused (is it this gateway's data directory? see --data-dir)",
                path.display()
            ),
        ));
    }
    Ok((
        None,
        format!(
            "no token: pass --token or ADMINCTL_TOKEN, use a context with a token_file, or point --data-dir at a local gateway's data directory (no {} found)",
            path.display()
        ),
    ))
}

/// TLS material of a context: the CA to trust and a client identity. Without a context
/// CA, an `https://` server on loopback is trusted with the local gateway's development
/// certificate (`<data dir>/tls/dev-cert.pem`) when there is one, as its token is.
fn tls_options(g: &Global, url: &reqwest::Url, context: Option<&(String, config::Context)>) -> CliResult<client::Tls> {
    let dev_ca = || {
        let data_dir = g.data_dir.clone().or_else(|| context.and_then(|(_, c)| c.data_dir.clone()));
        let path = dev_token_dir(data_dir.as_deref()).join("tls").join("dev-cert.pem");
        (url.scheme() == "https" && is_loopback(url)).then(|| std::fs::read(path).ok()).flatten()
    };
    let Some((name, c)) = context else {
        return Ok(client::Tls { ca: dev_ca(), ..client::Tls::default() });
    };
    let read = |what: &str, p: &Path| {
        std::fs::read(p).map_err(|e| CliError::usage(format!("context {name:?}: {what} {}: {e}", p.display())))
    };
    let ca = match c.ca.as_deref() {
        Some(p) => Some(read("ca", p)?),
        None => dev_ca(),
    };
    let identity = match (&c.client_cert, &c.client_key) {
        (Some(cert), Some(key)) => {
            let mut pem = read("client_cert", cert)?;
            pem.push(b'\n');
            pem.extend(read("client_key", key)?);
            Some(pem)
        }
        _ => None,
    };
    Ok(client::Tls { ca, identity, context: Some(name.clone()) })
}

/// `adminctl config ...` (no server involved).
fn run_config(verb: ConfigVerb, format: Format) -> CliResult<()> {
    let path = config::path()
        .ok_or_else(|| CliError::usage("no config file location: set XDG_CONFIG_HOME, HOME or ADMINCTL_CONFIG"))?;
    let cfg = config::load(&path)?;
    match verb {
        ConfigVerb::UseContext { name } => {
            config::use_context(&path, name.trim())?;
            if !output::structured(format, &serde_json::json!({"current_context": name.trim()}))? {
                output::line(&format!("switched to context {:?} ({})", name.trim(), path.display()));
            }
            Ok(())
        }
        ConfigVerb::CurrentContext => match &cfg.current_context {
            Some(c) => {
                if !output::structured(format, &serde_json::json!({"current_context": c}))? {
                    output::line(c);
                }
                Ok(())
            }
            None => Err(CliError::new(exit::NOT_FOUND, format!("no current_context in {}", path.display()))),
        },
        ConfigVerb::Contexts => {
            let items: Vec<serde_json::Value> = cfg
                .contexts
                .iter()
                .map(|(n, c)| {
                    serde_json::json!({
                        "name": n,
                        "current": cfg.current_context.as_deref() == Some(n.as_str()),
                        "server": c.server,
                        "token_file": c.token_file,
                        "ca": c.ca,
                        "client_cert": c.client_cert,
                    })
                })
                .collect();
            let v = serde_json::json!({"file": path.display().to_string(), "items": items});
            if !output::structured(format, &v)? {
                let mut t = output::table(&["CURRENT", "NAME", "SERVER", "TOKEN FILE", "CA"]);
                for i in &items {
                    t.add_row(vec![
                        if i["current"] == true { "*".to_owned() } else { String::new() },
                        output::field(i, "name"),
                        output::field(i, "server"),
                        output::field(i, "token_file"),
                        output::field(i, "ca"),
                    ]);
                }
                output::print_table(&t);
            }
            Ok(())
        }
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(run(cli))
}

/// Runs a parsed command; returns the exit code.
pub fn run(cli: Cli) -> u8 {
    let format = cli.global.output;
    let noun = match cli.command {
        Top::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "adminctl", &mut script);
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &script);
            return exit::OK;
        }
        Top::Config { verb } => return finish(run_config(verb, format), format),
        Top::Noun(n) => n,
    };
    let result = (|| -> CliResult<()> {
        let context = match config::path() {
            Some(path) => {
                let cfg = config::load(&path)?;
                config::select(&cfg, &path, cli.global.context.as_deref())?
            }
            None if cli.global.context.is_some() => {
                return Err(CliError::usage("--context: no config file location (set XDG_CONFIG_HOME or HOME)"));
            }
            None => None,
        };
        let server = cli
            .global
            .server
            .clone()
            .or_else(|| context.as_ref().and_then(|(_, c)| c.server.clone()))
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let url = server_url(&server)?;
        let (token, hint) = resolve_token(&cli.global, &url, context.as_ref())?;
        let tls = tls_options(&cli.global, &url, context.as_ref())?;
        // reqwest is built without a default crypto provider; install ring's once
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::new(url, token, hint, cli.global.timeout, &tls)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::new(exit::SERVER, format!("cannot start the runtime: {e}")))?;
        let ctx =
            cmd::Ctx { client, format, interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal() };
        runtime.block_on((*noun).run(&ctx))
    })();
    finish(result, format)
}

/// Prints an error (with the server's body for `-o json|yaml`) and gives the exit code.
fn finish(result: CliResult<()>, format: Format) -> u8 {
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            if let (Some(body), Format::Json | Format::Yaml) = (&e.body, format) {
                let _ = output::structured(format, body);
            }
            if !e.message.is_empty() {
                output::note(&format!("error: {}", e.message));
            }
            e.code
        }
    }
}
