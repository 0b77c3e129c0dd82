//! `adminctl resend ...`: create, list, status (with `--watch`), cancel.
//!
//! `--watch` polls the job until it finishes: on a terminal (stderr) it draws a progress
//! bar; elsewhere it writes a progress line to stderr whenever the counters change. The
//! final state goes to stdout; the exit code is 0 when the job completed and 1 when it
//! failed or was cancelled.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};

use super::{Ctx, Paging, seg};
use crate::client::{CliError, CliResult, exit};
use crate::output::{self, Format, field, key_values, print_table, structured};

/// Resend verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Create a job that delivers the selected documents to the FNS again.
    Create {
        /// Documents of one register.
        #[arg(long = "register", visible_alias = "rnm", value_name = "RNM", conflicts_with_all = ["fn_number", "owner_inn"])]
        register: Option<String>,
        /// Documents of one FN.
        #[arg(long = "fn", value_name = "FN", conflicts_with = "owner_inn")]
        fn_number: Option<String>,
        /// Documents of every register of an owner.
        #[arg(long, value_name = "INN")]
        owner_inn: Option<String>,
        /// Received at or after (RFC 3339 or a date, e.g. 2026-01-31).
        #[arg(long)]
        from: String,
        /// Received before (default: now).
        #[arg(long)]
        to: Option<String>,
        /// Form codes or FNS names, comma-separated (e.g. 3,31 or receipt,closeShift).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
        /// Then follow its progress until it finishes (like `status --watch`).
        #[arg(long)]
        watch: bool,
        /// Polling interval of --watch.
        #[arg(long, default_value = "1s", value_parser = crate::parse_duration)]
        interval: Duration,
    },
    /// List jobs, newest first.
    #[command(visible_alias = "ls")]
    List {
        /// Only these states (comma-separated: pending, running, completed, cancelled, failed).
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show a job's progress.
    Status {
        /// Job id.
        id: String,
        /// Follow the progress until the job finishes (a progress bar on a terminal).
        #[arg(long)]
        watch: bool,
        /// Polling interval of --watch.
        #[arg(long, default_value = "1s", value_parser = crate::parse_duration)]
        interval: Duration,
    },
    /// Cancel a job.
    Cancel {
        /// Job id.
        id: String,
    },
}

/// A form code from a number or an FNS JSON name (`receipt`, `closeShift`, ...).
pub fn parse_type(s: &str) -> CliResult<u8> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u8>()
        && ffd::tags::doc_type(n).is_some()
    {
        return Ok(n);
    }
    ffd::tags::doc_types().iter().find(|d| d.json.eq_ignore_ascii_case(s)).map(|d| d.code).ok_or_else(|| {
        let known: Vec<String> = ffd::tags::doc_types().iter().map(|d| format!("{} ({})", d.code, d.json)).collect();
        CliError::usage(format!("--types: {s:?} is not a form code; known: {}", known.join(", ")))
    })
}

/// Runs a resend verb.
pub async fn run(verb: Verb, ctx: &Ctx) -> CliResult<()> {
    output::no_raw(ctx.format)?;
    match verb {
        Verb::Create { register, fn_number, owner_inn, from, to, types, watch, interval } => {
            if register.is_none() && fn_number.is_none() && owner_inn.is_none() {
                return Err(CliError::usage("which documents? give --register, --fn or --owner-inn"));
            }
            let types =
                types.iter().filter(|t| !t.trim().is_empty()).map(|t| parse_type(t)).collect::<CliResult<Vec<u8>>>()?;
            let body = json!({
                "rnm": register,
                "fn_number": fn_number,
                "owner_inn": owner_inn,
                "from": from,
                "to": to,
                "types": types,
            });
            let v = ctx.client.post("/v1/resend", &body).await?;
            if watch {
                let id = field(&v, "id");
                output::note(&format!("resend job {id} created"));
                return follow(ctx, &id, interval).await;
            }
            print_job(ctx.format, &v)
        }
        Verb::List { state, paging } => {
            let v = ctx.pages("/v1/resend", vec![("state", state.unwrap_or_default())], &paging).await?;
            if structured(ctx.format, &v)? {
                return Ok(());
            }
            let items = v.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            if items.is_empty() {
                output::note("no resend jobs");
                return Ok(());
            }
            let mut t =
                output::table(&["ID", "STATE", "SELECTION", "SELECTED", "DELIVERED", "FAILED", "CREATED", "BY"]);
            for j in &items {
                t.add_row(vec![
                    field(j, "id"),
                    field(j, "state"),
                    selection(j),
                    selected(j),
                    field(j, "delivered"),
                    field(j, "failed"),
                    field(j, "created_at"),
                    field(j, "created_by"),
                ]);
            }
            print_table(&t);
            if let Some(next) = v.get("next").and_then(Value::as_str) {
                output::note(&format!("more jobs: --cursor {next} (or --all)"));
            }
            Ok(())
        }
        Verb::Status { id, watch, interval } => {
            if watch {
                return follow(ctx, &id, interval).await;
            }
            let v = ctx.client.get(&format!("/v1/resend/{}", seg(&id)), &[]).await?;
            print_job(ctx.format, &v)
        }
        Verb::Cancel { id } => {
            let v = ctx.client.post(&format!("/v1/resend/{}/cancel", seg(&id)), &json!({})).await?;
            print_job(ctx.format, &v)
        }
    }
}

fn selection(j: &Value) -> String {
    let s = j.get("selector").cloned().unwrap_or(Value::Null);
    let who = if !s["rnm"].is_null() {
        format!("register {}", field(&s, "rnm"))
    } else if !s["fn_number"].is_null() {
        format!("FN {}", field(&s, "fn_number"))
    } else {
        format!("owner {}", field(&s, "owner_inn"))
    };
    let types = s["types"]
        .as_array()
        .filter(|t| !t.is_empty())
        .map(|t| format!(" types {}", t.iter().map(Value::to_string).collect::<Vec<_>>().join(",")));
    format!("{who} {} .. {}{}", field(&s, "from"), field(&s, "to"), types.unwrap_or_default())
}

fn selected(j: &Value) -> String {
    let n = field(j, "selected");
    if j.get("selection_complete").and_then(Value::as_bool) == Some(true) { n } else { format!("{n}+ (counting)") }
}

fn print_job(format: Format, v: &Value) -> CliResult<()> {
    if structured(format, v)? {
        return Ok(());
    }
    let percent = v.get("percent").and_then(Value::as_f64).map_or_else(|| "-".to_owned(), |p| format!("{p:.1}%"));
    print_table(&key_values(&[
        ("Id", field(v, "id")),
        ("State", field(v, "state")),
        ("Selection", selection(v)),
        ("Selected", selected(v)),
        ("Delivered", field(v, "delivered")),
        ("Failed", field(v, "failed")),
        ("Progress", percent),
        ("Error", field(v, "error")),
        ("Created", format!("{} by {}", field(v, "created_at"), field(v, "created_by"))),
        ("Updated", field(v, "updated_at")),
        ("Finished", field(v, "finished_at")),
    ]));
    Ok(())
}

fn progress_line(v: &Value) -> String {
    let percent = v.get("percent").and_then(Value::as_f64).map_or_else(String::new, |p| format!(" ({p:.1}%)"));
    format!(
        "resend {}: {}, selected {}, delivered {}, failed {}{}",
        field(v, "id"),
        field(v, "state"),
        selected(v),
        field(v, "delivered"),
        field(v, "failed"),
        percent
    )
}

/// Polls a job until it finishes, showing progress on stderr; prints the final state.
async fn follow(ctx: &Ctx, id: &str, interval: Duration) -> CliResult<()> {
    let path = format!("/v1/resend/{}", seg(id));
    let bar = if std::io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new(0);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({percent}%, eta {eta})")
        {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.enable_steady_tick(Duration::from_millis(200));
        Some(pb)
    } else {
        None
    };
    let mut last = String::new();
    let v = loop {
        let v = ctx.client.get(&path, &[]).await?;
        let state = field(&v, "state");
        let done = v.get("delivered").and_then(Value::as_u64).unwrap_or(0)
            + v.get("failed").and_then(Value::as_u64).unwrap_or(0);
        let total = v.get("selected").and_then(Value::as_u64).unwrap_or(0);
        match &bar {
            Some(pb) => {
                pb.set_length(total.max(done));
                pb.set_position(done);
                pb.set_message(format!("{state}, failed {}", field(&v, "failed")));
            }
            None => {
                let line = progress_line(&v);
                if line != last {
                    output::note(&line);
                    last = line;
                }
            }
        }
        if matches!(state.as_str(), "completed" | "cancelled" | "failed") {
            break v;
        }
        tokio::time::sleep(interval).await;
    };
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    print_job(ctx.format, &v)?;
    match field(&v, "state").as_str() {
        "completed" => Ok(()),
        "failed" => Err(CliError::new(exit::SERVER, format!("resend job {id} failed: {}", field(&v, "error")))),
        other => Err(CliError::new(exit::SERVER, format!("resend job {id} was {other}"))),
    }
}
