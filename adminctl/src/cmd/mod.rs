//! Command dispatch: one module per noun, each with a `Verb` enum (clap subcommands) and
//! `async fn run(verb, ctx)` (or, for a noun without verbs such as `reports`, an `Args`
//! struct and `async fn run(args, ctx)`). Adding a noun is one file and one line in `nouns!`.

use std::io::{BufRead, Write};

use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{CliError, CliResult, Client};
use crate::output::Format;

/// Declares the noun modules, the `Noun` subcommand enum and its dispatch.
macro_rules! nouns {
    (
        $($(#[$m:meta])* $variant:ident => $module:ident),* $(,)?;
        $($(#[$am:meta])* $avariant:ident => $amodule:ident (args)),* $(,)?
    ) => {
        $(pub mod $module;)*
        $(pub mod $amodule;)*

        /// The nouns.
        #[derive(Debug, Subcommand)]
        pub enum Noun {
            $(
                $(#[$m])*
                $variant {
                    /// What to do.
                    #[command(subcommand)]
                    verb: $module::Verb,
                },
            )*
            $(
                $(#[$am])*
                $avariant(Box<$amodule::Args>),
            )*
        }

        impl Noun {
            /// Runs the command.
            pub async fn run(self, ctx: &Ctx) -> CliResult<()> {
                match self {
                    $(Noun::$variant { verb } => $module::run(verb, ctx).await,)*
                    $(Noun::$avariant(args) => $amodule::run(*args, ctx).await,)*
                }
            }
        }
    };
}

nouns! {
    /// Cash registers: add, import, list, show, suspend, resume, replace-fn, backlog.
    #[command(visible_alias = "register")]
    Registers => registers,
    /// Tariff plans and billing: create, list, show, assign, renew.
    #[command(visible_alias = "tariff")]
    Tariffs => tariffs,
    /// Fiscal documents: list, show, verify.
    #[command(visible_alias = "document")]
    Documents => documents,
    /// The audit log of admin actions.
    Audit => audit,
    /// Alert rules, alerts with the traffic light per register, webhook notifications.
    #[command(visible_alias = "alert")]
    Alerts => alerts,
    /// Resend jobs: deliver selected documents to the FNS again (create, list, status, cancel).
    Resend => resend,
    /// FNS forwarding: status and backlog, delivery state of one document.
    Fns => fns,
    /// Shifts of a register: close-report counters beside what was received.
    #[command(visible_alias = "shift")]
    Shifts => shifts;
    /// Revenue report: receipts, sums by settlement kind, cash/cashless, VAT by rate, per
    /// day, week, month, register, owner or shift (-o table, json, yaml or csv).
    #[command(visible_alias = "report")]
    Reports => reports (args),
    /// FD continuity: FNs with documents never received (fleet-wide, or --rnm).
    Gaps => gaps (args),
}

/// What every command gets.
#[derive(Debug)]
pub struct Ctx {
    /// API client.
    pub client: Client,
    /// Output format.
    pub format: Format,
    /// stdin and stderr are terminals (prompts and progress bars allowed).
    pub interactive: bool,
}

impl Ctx {
    /// Asks for confirmation of a destructive operation on a terminal; elsewhere requires
    /// `--yes`.
    pub fn confirm(&self, question: &str, yes: bool) -> CliResult<()> {
        if yes {
            return Ok(());
        }
        if !self.interactive {
            return Err(CliError::usage(format!(
                "{question}: refusing without confirmation; pass --yes (not a terminal)"
            )));
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{question}? [y/N] ");
        let _ = err.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            Ok(())
        } else {
            Err(CliError::usage("cancelled"))
        }
    }

    /// Lists pages: one page of `limit` from `cursor`, or every page with `all`.
    pub async fn pages(&self, path: &str, mut query: Vec<(&str, String)>, p: &Paging) -> CliResult<Value> {
        let limit = if p.all { 1000 } else { p.limit };
        query.push(("limit", limit.to_string()));
        let mut cursor = p.cursor.clone();
        let mut items: Vec<Value> = Vec::new();
        loop {
            let mut q = query.clone();
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page = self.client.get(path, &q).await?;
            if let Some(list) = page.get("items").and_then(Value::as_array) {
                items.extend(list.iter().cloned());
            }
            cursor = page.get("next").and_then(Value::as_str).map(str::to_owned);
            if !p.all || cursor.is_none() {
                break;
            }
        }
        Ok(json!({"items": items, "next": cursor}))
    }
}

/// Pagination flags of list commands.
#[derive(Debug, Clone, clap::Args)]
pub struct Paging {
    /// Items per page (1–1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Continue after this cursor (printed by the previous page).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Fetch every page.
    #[arg(long, conflicts_with = "cursor")]
    pub all: bool,
}

/// Percent-encodes a path segment (RNMs, FNs and names are plain, but be safe).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
