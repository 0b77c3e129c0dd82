//! `adminctl registers ...`

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};

use super::{Ctx, Paging, seg};
use crate::client::{CliError, CliResult, exit};
use crate::output::{self, Format, field, key_values, note, print_table, structured};

/// Columns of the import CSV, in order.
pub const CSV_COLUMNS: [&str; 9] = [
    "rnm",
    "kkt_serial",
    "owner_inn",
    "name",
    "address",
    "group",
    "fn_number",
    "tariff",
    "paid_until",
];
const REQUIRED_COLUMNS: [&str; 5] = ["rnm", "kkt_serial", "owner_inn", "name", "fn_number"];
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
        Verb::Add {
            rnm,
            kkt_serial,
            owner_inn,
            name,
            fn_number,
            address,
            group,
            tariff,
            paid_until,
        } => {
            let body = json!({
                "rnm": rnm, "kkt_serial": kkt_serial, "owner_inn": owner_inn, "name": name,
                "fn_number": fn_number, "address": address, "group": group, "tariff": tariff,
                "paid_until": paid_until,
            });
            let v = ctx.client.post("/v1/registers", &body).await?;
            print_register(ctx.format, &v)?;
            Ok(())
        }
        Verb::Import {
            file,
            partial,
            dry_run,
            batch,
        } => {
            output::no_raw(ctx.format)?;
            import(ctx, &file, partial, dry_run, batch).await
        }
        Verb::List {
            status,
            owner_inn,
            group,
            tariff,
            silent_for,
            paid_until_before,
            paging,
        } => {
            let q = vec![
                ("status", status.unwrap_or_default()),
                ("owner_inn", owner_inn.unwrap_or_default()),
                ("group", group.unwrap_or_default()),
                ("tariff", tariff.unwrap_or_default()),
                (
                    "silent_for",
                    silent_for
                        .map(|d| humantime::format_duration(d).to_string())
                        .unwrap_or_default(),
                ),
                ("paid_until_before", paid_until_before.unwrap_or_default()),
            ];
            let v = ctx.pages("/v1/registers", q, &paging).await?;
            output::list(
                ctx.format,
                &v,
                &[
                    ("RNM", "rnm"),
                    ("NAME", "name"),
                    ("OWNER INN", "owner_inn"),
                    ("FN", "fn_number"),
                    ("STATUS", "status"),
                    ("ACCEPTANCE", "acceptance"),
                    ("TARIFF", "tariff"),
                    ("PAID UNTIL", "paid_until"),
                    ("LAST SEEN", "last_seen"),
                    ("DOCS", "documents"),
                ],
                "registers",
            )
        }
        Verb::Show { rnm } => {
            let v = ctx
                .client
                .get(&format!("/v1/registers/{}", seg(&rnm)), &[])
                .await?;
            print_register(ctx.format, &v)
        }
        Verb::Suspend { rnm, reason, yes } => {
            ctx.confirm(
                &format!("Suspend register {rnm} (its documents will be refused)"),
                yes,
            )?;
            let v = ctx
                .client
                .post(
                    &format!("/v1/registers/{}/suspend", seg(&rnm)),
                    &json!({"reason": reason}),
                )
                .await?;
            print_register(ctx.format, &v)
        }
        Verb::Resume { rnm, reason } => {
            let v = ctx
                .client
                .post(
                    &format!("/v1/registers/{}/resume", seg(&rnm)),
                    &json!({"reason": reason}),
                )
                .await?;
            print_register(ctx.format, &v)
        }
        Verb::ReplaceFn {
            rnm,
            fn_number,
            at,
            yes,
        } => {
            ctx.confirm(
                &format!("Replace the FN of register {rnm} with {fn_number} (cannot be undone)"),
                yes,
            )?;
            let v = ctx
                .client
                .post(
                    &format!("/v1/registers/{}/replace-fn", seg(&rnm)),
                    &json!({"fn_number": fn_number, "at": at}),
                )
                .await?;
            print_register(ctx.format, &v)
        }
        Verb::Backlog { paging } => {
            let v = ctx.pages("/v1/backlog", Vec::new(), &paging).await?;
            output::list(
                ctx.format,
                &v,
                &[
                    ("FN", "fn_number"),
                    ("ATTEMPTS", "attempts"),
                    ("FIRST SEEN", "first_seen"),
                    ("LAST SEEN", "last_seen"),
                    ("CLAIMED RNM", "claimed_rnm"),
                    ("CLAIMED INN", "claimed_inn"),
                    ("LAST PEER", "last_peer"),
                ],
                "unknown FNs",
            )
        }
    }
}

/// Prints a register view (`{register, acceptance, activity?}`).
fn print_register(format: Format, v: &Value) -> CliResult<()> {
    if structured(format, v)? {
        return Ok(());
    }
    let r = v.get("register").unwrap_or(&Value::Null);
    let a = v.get("activity");
    let mut rows = vec![
        ("RNM", field(r, "rnm")),
        ("Name", field(r, "name")),
        ("Owner INN", field(r, "owner_inn")),
        ("KKT serial", field(r, "kkt_serial")),
        ("Address", field(r, "address")),
        ("Group", field(r, "group")),
        ("Status", field(r, "status")),
        ("Acceptance", field(v, "acceptance")),
        ("FN", field(r, "fn_number")),
        ("FN since", field(r, "fn_since")),
        ("Tariff", field(r, "tariff")),
        ("Next tariff", field(r, "next_tariff")),
        ("Paid until", field(r, "paid_until")),
    ];
    if let Some(a) = a {
        rows.extend([
            ("Last seen", field(a, "last_seen")),
            ("Last FN", field(a, "last_fn")),
            ("Last FD", field(a, "last_fd")),
            ("Last document time", field(a, "last_document_time")),
            ("Documents", field(a, "documents")),
            ("FLK errors", field(a, "flk_errors")),
        ]);
    }
    rows.extend([
        ("Created", field(r, "created_at")),
        ("Updated", field(r, "updated_at")),
    ]);
    print_table(&key_values(&rows));
    if let Some(hist) = r.get("fn_history").and_then(Value::as_array)
        && !hist.is_empty()
    {
        output::line("FN history:");
        let mut t = output::table(&["FN", "ACTIVE FROM", "REPLACED AT"]);
        for h in hist {
            t.add_row(vec![
                field(h, "fn_number"),
                field(h, "active_from"),
                field(h, "replaced_at"),
            ]);
        }
        print_table(&t);
    }
    Ok(())
}

// ---------------------------------------------------------------- import

/// A CSV row ready to send, with its CSV line.
struct Row {
    line: u64,
    value: Value,
}

fn row_error(line: u64, field: &str, message: impl Into<String>) -> Value {
    json!({"line": line, "field": field, "message": message.into()})
}

/// Reads the CSV: rows, and the errors found locally (unreadable rows, duplicates).
fn read_csv(path: &Path) -> CliResult<(Vec<Row>, Vec<Value>)> {
    let reader: Box<dyn std::io::Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| {
            CliError::usage(format!("cannot read {}: {e}", path.display()))
        })?)
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| CliError::usage(format!("{}: cannot read the CSV header: {e}", path.display())))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    for h in &headers {
        if !CSV_COLUMNS.contains(&h.as_str()) {
            return Err(CliError::usage(format!(
                "{}: line 1: unknown column {h:?}; the header is {}",
                path.display(),
                CSV_COLUMNS.join(",")
            )));
        }
    }
    for c in REQUIRED_COLUMNS {
        if !headers.iter().any(|h| h == c) {
            return Err(CliError::usage(format!(
                "{}: line 1: column {c:?} is missing; the header is {}",
                path.display(),
                CSV_COLUMNS.join(",")
            )));
        }
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen_rnm: HashMap<String, u64> = HashMap::new();
    let mut seen_fn: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                errors.push(row_error(line, "row", format!("unreadable CSV row: {e}")));
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(CliError::usage(format!("reading {}: {e}", path.display())));
                }
                continue;
            }
        };
        let line = rec.position().map_or(0, csv::Position::line);
        let mut obj = serde_json::Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            obj.insert(
                h.clone(),
                if v.is_empty() {
                    Value::Null
                } else {
                    Value::String(v.to_owned())
                },
            );
        }
        let rnm = obj.get("rnm").and_then(Value::as_str).unwrap_or("").to_owned();
        let fnn = obj
            .get("fn_number")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !rnm.is_empty()
            && let Some(first) = seen_rnm.get(&rnm)
        {
            errors.push(row_error(line, "rnm", format!("register {rnm} appears again (first on line {first})")));
            continue;
        }
        if !fnn.is_empty()
            && let Some(first) = seen_fn.get(&fnn)
        {
            errors.push(row_error(line, "fn_number", format!("FN {fnn} appears again (first on line {first})")));
            continue;
        }
        if !rnm.is_empty() {
            seen_rnm.insert(rnm, line);
        }
        if !fnn.is_empty() {
            seen_fn.insert(fnn, line);
        }
        rows.push(Row {
            line,
            value: Value::Object(obj),
        });
    }
    Ok((rows, errors))
}

#[derive(Debug, Default)]
struct Totals {
    created: u64,
    updated: u64,
    unchanged: u64,
    errors: Vec<Value>,
}

/// Sends every batch once (`dry_run` or for real) and sums the answers; row errors are
/// mapped to CSV lines.
async fn send_batches(
    ctx: &Ctx,
    rows: &[&Row],
    batch: usize,
    partial: bool,
    dry_run: bool,
    progress: &indicatif::ProgressBar,
) -> CliResult<Totals> {
    let mut t = Totals::default();
    for chunk in rows.chunks(batch) {
        let body = json!({
            "registers": chunk.iter().map(|r| &r.value).collect::<Vec<_>>(),
            "partial": partial,
            "dry_run": dry_run,
        });
        let (status, v) = ctx.client.post_raw("/v1/registers/import", &body).await?;
        let code = v.get("error").and_then(|e| e.get("code")).and_then(Value::as_str);
        if !status.is_success() && code != Some("invalid_rows") {
            return Err(ctx.client.api_error(status, v));
        }
        let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        t.created += n("created");
        t.updated += n("updated");
        t.unchanged += n("unchanged");
        for e in v.get("errors").and_then(Value::as_array).into_iter().flatten() {
            let idx = e.get("line").and_then(Value::as_u64).unwrap_or(1).max(1) as usize - 1;
            let line = chunk.get(idx).map_or(0, |r| r.line);
            t.errors.push(row_error(
                line,
                e.get("field").and_then(Value::as_str).unwrap_or("row"),
                e.get("message").and_then(Value::as_str).unwrap_or(""),
            ));
        }
        progress.inc(chunk.len() as u64);
    }
    Ok(t)
}

fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {pos}/{len} rows ({eta})",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_owned());
    pb
}

fn sort_errors(errors: &mut [Value]) {
    errors.sort_by_key(|e| e.get("line").and_then(Value::as_u64).unwrap_or(0));
}

async fn import(ctx: &Ctx, path: &Path, partial: bool, dry_run: bool, batch: usize) -> CliResult<()> {
    let (rows, local_errors) = read_csv(path)?;
    let total_rows = rows.len() + local_errors.len();
    let all: Vec<&Row> = rows.iter().collect();
    let batches = all.len().div_ceil(batch);
    let mut outcome = Totals::default();
    let mut applied = false;
    // Several requests cannot be one transaction: without --partial, validate every batch
    // first (dry run) and apply only if the whole file is valid.
    let validate_first = dry_run || (!partial && (batches > 1 || !local_errors.is_empty()));
    if validate_first {
        let pb = progress_bar(all.len() as u64, "validating");
        let mut checked = send_batches(ctx, &all, batch, true, true, &pb).await?;
        pb.finish_and_clear();
        checked.errors.extend(local_errors.iter().cloned());
        let failed = !checked.errors.is_empty();
        if dry_run || (failed && !partial) {
            outcome = checked;
            if failed && !dry_run {
                outcome.created = 0;
                outcome.updated = 0;
                outcome.unchanged = 0;
            }
        }
    }
    let stop_after_check = dry_run || (validate_first && !partial && !outcome.errors.is_empty());
    if !stop_after_check {
        let pb = progress_bar(all.len() as u64, "importing");
        let done = send_batches(ctx, &all, batch, partial, false, &pb).await?;
        pb.finish_and_clear();
        outcome = done;
        outcome.errors.extend(local_errors.iter().cloned());
        applied = partial || outcome.errors.is_empty();
    }
    sort_errors(&mut outcome.errors);
    let result = json!({
        "file": path.display().to_string(),
        "rows": total_rows,
        "created": outcome.created,
        "updated": outcome.updated,
        "unchanged": outcome.unchanged,
        "errors": outcome.errors,
        "dry_run": dry_run,
        "partial": partial,
        "applied": applied && !dry_run,
    });
    if !structured(ctx.format, &result)? {
        let verb = if dry_run { "would be " } else { "" };
        output::line(&format!(
            "{} rows: {} {verb}created, {} {verb}updated, {} unchanged, {} invalid",
            total_rows,
            outcome.created,
            outcome.updated,
            outcome.unchanged,
            outcome.errors.len()
        ));
        if !outcome.errors.is_empty() {
            let mut t = output::table(&["LINE", "FIELD", "ERROR"]);
            for e in &outcome.errors {
                t.add_row(vec![field(e, "line"), field(e, "field"), field(e, "message")]);
            }
            print_table(&t);
        }
    }
    if outcome.errors.is_empty() {
        return Ok(());
    }
    let what = if dry_run {
        "dry run: the file has invalid rows".to_owned()
    } else if partial {
        format!(
            "{} invalid rows were skipped; the valid rows were applied",
            outcome.errors.len()
        )
    } else {
        format!(
            "{} invalid rows; nothing was applied (fix them, or use --partial to apply the valid rows)",
            outcome.errors.len()
        )
    };
    note(&format!("error: {what}"));
    // the summary (with every error) is already printed: exit non-zero without repeating it
    Err(CliError::new(exit::SERVER, String::new()))
}
