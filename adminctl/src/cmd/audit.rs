//! `adminctl audit ...`

use clap::Subcommand;

use super::{Ctx, Paging};
use crate::client::CliResult;
use crate::output;

/// Audit verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Admin actions, newest first.
    #[command(visible_alias = "ls")]
    List {
        /// Who (token name).
        #[arg(long)]
        actor: Option<String>,
        /// Action or action prefix (e.g. register. or tariff.assign).
        #[arg(long)]
        action: Option<String>,
        /// Target (e.g. an RNM).
        #[arg(long)]
        target: Option<String>,
        /// At or after (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
}

/// Runs an audit verb.
pub async fn run(verb: Verb, ctx: &Ctx) -> CliResult<()> {
    output::no_raw(ctx.format)?;
    match verb {
        Verb::List {
            actor,
            action,
            target,
            since,
            paging,
        } => {
            let q = vec![
                ("actor", actor.unwrap_or_default()),
                ("action", action.unwrap_or_default()),
                ("target", target.unwrap_or_default()),
                ("since", since.unwrap_or_default()),
            ];
            let v = ctx.pages("/v1/audit", q, &paging).await?;
            output::list(
                ctx.format,
                &v,
                &[
                    ("AT", "at"),
                    ("ACTOR", "actor"),
                    ("ACTION", "action"),
                    ("TARGET", "target"),
                    ("SOURCE", "source"),
                ],
                "audit entries",
            )
        }
    }
}
