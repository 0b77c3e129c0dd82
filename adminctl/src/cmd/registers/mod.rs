//! `adminctl registers ...`: the verbs and their dispatch here; reading (`view`: list,
//! show, backlog), changing (`change`: add, suspend, resume, replace-fn, set-time-zone) and the CSV
//! import (`import`) beside them. May import `cmd` (Ctx, Paging), `client` and `output`.

mod change;
mod import;
mod view;

use std::path::PathBuf;

use clap::Subcommand;

use super::{Ctx, Paging};
use crate::client::CliResult;
use crate::output;
pub use import::CSV_COLUMNS;

/// Rows per import request (the API takes at most 5,000).
pub const MAX_BATCH: usize = 5_000;

/// Register verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Create one register (every field is checked; nothing is created if one is invalid).
    Add {
        /// Registration number: 16 digits, the last 6 a check code over INN and serial.
        #[arg(long)]
        rnm: String,
        /// KKT serial number (1–20 characters).
        #[arg(long)]
        kkt_serial: String,
        /// Owner INN (10 or 12 digits with control digits).
        #[arg(long)]
        owner_inn: String,
        /// Display name (shop, till).
        #[arg(long)]
        name: String,
        /// FN number (16 digits).
        #[arg(long = "fn")]
        fn_number: String,
        /// Address.
        #[arg(long)]
        address: Option<String>,
        /// Group or shop.
        #[arg(long)]
        group: Option<String>,
        /// Tariff plan (must exist).
        #[arg(long)]
        tariff: Option<String>,
        /// End of the paid period, RFC 3339 (e.g. 2026-12-31T00:00:00Z).
        #[arg(long)]
        paid_until: Option<String>,
        /// IANA time zone of the place of settlement, for reports (e.g. Asia/Vladivostok;
        /// default: the gateway's reports.default_time_zone).
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// Import registers from CSV (header: rnm,kkt_serial,owner_inn,name,address,group,fn_number,tariff,paid_until).
    ///
    /// All-or-nothing unless --partial: with any invalid row nothing is applied and every
    /// error is printed with its CSV line. Importing the same file again changes nothing
    /// (rows count as unchanged).
    Import {
        /// The CSV file ("-" for stdin).
        file: PathBuf,
        /// Apply the valid rows even if some are invalid (errors are still reported, exit 1).
        #[arg(long)]
        partial: bool,
        /// Validate and count only; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rows per request (at most 5000).
        #[arg(long, default_value_t = MAX_BATCH, value_parser = parse_batch)]
        batch: usize,
    },
    /// List registers.
    #[command(visible_alias = "ls")]
    List {
        /// active or suspended.
        #[arg(long)]
        status: Option<String>,
        /// Owner INN.
        #[arg(long)]
        owner_inn: Option<String>,
        /// Group.
        #[arg(long)]
        group: Option<String>,
        /// Tariff plan.
        #[arg(long)]
        tariff: Option<String>,
        /// No document received for at least this long (e.g. 24h).
        #[arg(long, value_parser = crate::parse_duration)]
        silent_for: Option<std::time::Duration>,
        /// Paid period ends before this date/time (2026-12-31 or RFC 3339).
        #[arg(long)]
        paid_until_before: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one register: FN history, last seen, last FD, document counts.
    Show {
        /// RNM.
        rnm: String,
    },
    /// Suspend a register: its documents are no longer accepted.
    Suspend {
        /// RNM.
        rnm: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Resume a suspended register.
    Resume {
        /// RNM.
        rnm: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Replace the FN: the new one becomes current; the old one stays in the history and
    /// its documents made before the replacement are still accepted.
    ReplaceFn {
        /// RNM.
        rnm: String,
        /// The new FN (16 digits).
        #[arg(long = "fn")]
        fn_number: String,
        /// When the replacement happened (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Set the register's IANA time zone, which places its documents on local days in
    /// reports (checked against the tz database; "" goes back to the gateway's default).
    SetTimeZone {
        /// RNM.
        rnm: String,
        /// Zone, e.g. Asia/Vladivostok.
        time_zone: String,
    },
    /// Unknown FNs that tried to send documents (onboarding backlog).
    Backlog {
        #[command(flatten)]
        paging: Paging,
    },
}

fn parse_batch(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=MAX_BATCH) => Ok(n),
        _ => Err(format!("must be a number between 1 and {MAX_BATCH}")),
    }
}

/// Runs a register verb.
pub async fn run(verb: Verb, ctx: &Ctx) -> CliResult<()> {
    if !matches!(verb, Verb::Import { .. }) {
        output::no_raw(ctx.format)?;
    }
    match verb {
        Verb::Add { rnm, kkt_serial, owner_inn, name, fn_number, address, group, tariff, paid_until, time_zone } => {
            let fields = change::NewRegister {
                rnm,
                kkt_serial,
                owner_inn,
                name,
                fn_number,
                address,
                group,
                tariff,
                paid_until,
                time_zone,
            };
            change::add(ctx, fields).await
        }
        Verb::Import { file, partial, dry_run, batch } => {
            output::no_raw(ctx.format)?;
            import::import(ctx, &file, partial, dry_run, batch).await
        }
        Verb::List { status, owner_inn, group, tariff, silent_for, paid_until_before, paging } => {
            let filter = view::ListFilter { status, owner_inn, group, tariff, silent_for, paid_until_before };
            view::list(ctx, filter, &paging).await
        }
        Verb::Show { rnm } => view::show(ctx, &rnm).await,
        Verb::Suspend { rnm, reason, yes } => change::suspend(ctx, &rnm, reason, yes).await,
        Verb::Resume { rnm, reason } => change::resume(ctx, &rnm, reason).await,
        Verb::ReplaceFn { rnm, fn_number, at, yes } => change::replace_fn(ctx, &rnm, &fn_number, at, yes).await,
        Verb::SetTimeZone { rnm, time_zone } => change::set_time_zone(ctx, &rnm, &time_zone).await,
        Verb::Backlog { paging } => view::backlog(ctx, &paging).await,
    }
}
