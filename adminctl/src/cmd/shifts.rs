//! `adminctl shifts list --rnm RNM`: each shift of the register's FNs (the current one and
//! its history, or `--fn`), with its open and close report, what the close report counted
//! (1111 documents, 1118 receipts, 1194 per settlement kind) beside what the operator
//! received, and a mismatch flag (`GET /v1/registers/{rnm}/shifts`).

use clap::Subcommand;
use serde_json::{Value, json};

use super::{Ctx, Paging, seg};
use crate::client::{CliError, CliResult};
use crate::output::{self, field, note, print_table, structured};

/// Shift verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Shifts of a register with the close report's counters and what was received.
    #[command(visible_alias = "ls")]
    List {
        /// Register.
        #[arg(long)]
        rnm: String,
        /// Only this FN (default: every FN of the register).
        #[arg(long = "fn")]
        fn_number: Option<String>,
        /// Lowest shift number.
        #[arg(long)]
        from_shift: Option<u32>,
        /// Highest shift number.
        #[arg(long)]
        to_shift: Option<u32>,
        /// Only shifts whose counters do not add up.
        #[arg(long)]
        mismatched: bool,
        #[command(flatten)]
        paging: Paging,
    },
}

fn reported(s: &Value, key: &str) -> String {
    s.get("reported").and_then(|r| r.get(key)).filter(|v| !v.is_null()).map_or("-".into(), Value::to_string)
}

fn verdict(s: &Value) -> String {
    let c = &s["check"];
    if c.get("mismatch").and_then(Value::as_bool) != Some(true) {
        return "ok".into();
    }
    let mut why = Vec::new();
    if let Some(m) = c.get("missing_documents").and_then(Value::as_u64).filter(|m| *m > 0) {
        why.push(format!("{m} FDs missing"));
    }
    if let Some(d) = c.get("receipts_difference").and_then(Value::as_i64).filter(|d| *d != 0) {
        why.push(format!("1118 {d:+}"));
    }
    let kinds: Vec<&str> = c.get("kinds_differing").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if !kinds.is_empty() {
        why.push(format!("1194 differs: {}", kinds.join(", ")));
    }
    format!("MISMATCH: {}", why.join("; "))
}

/// Runs a shifts verb.
pub async fn run(verb: Verb, ctx: &Ctx) -> CliResult<()> {
    output::no_raw(ctx.format)?;
    let Verb::List { rnm, fn_number, from_shift, to_shift, mismatched, paging } = verb;
    let path = format!("/v1/registers/{}/shifts", seg(&rnm));
    let q = |f: &str| {
        vec![
            ("fn", f.to_owned()),
            ("from_shift", from_shift.map(|s| s.to_string()).unwrap_or_default()),
            ("to_shift", to_shift.map(|s| s.to_string()).unwrap_or_default()),
        ]
    };
    let fns: Vec<String> = match &fn_number {
        Some(f) => vec![f.clone()],
        None => {
            if paging.cursor.is_some() {
                return Err(CliError::usage("--cursor continues one FN's shifts: give it with --fn"));
            }
            let one = ctx.client.get(&path, &[("limit", "1".to_owned())]).await?;
            let all = one.get("fns").and_then(Value::as_array).cloned().unwrap_or_default();
            all.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
    };
    let mut items: Vec<Value> = Vec::new();
    let mut next: Vec<Value> = Vec::new();
    for f in &fns {
        let page = ctx.pages(&path, q(f), &paging).await?;
        for s in page.get("items").and_then(Value::as_array).into_iter().flatten() {
            let mut s = s.clone();
            s["fn_number"] = json!(f);
            items.push(s);
        }
        if let Some(n) = page.get("next").and_then(Value::as_str) {
            next.push(json!({"fn_number": f, "cursor": n}));
        }
    }
    if mismatched {
        items.retain(|s| s["check"]["mismatch"] == true);
    }
    let mismatches = items.iter().filter(|s| s["check"]["mismatch"] == true).count();
    let v = json!({"rnm": rnm, "items": items, "mismatches": mismatches, "next": next});
    if structured(ctx.format, &v)? {
        return Ok(());
    }
    if items.is_empty() {
        note("no shifts");
        return Ok(());
    }
    let mut t = output::table(&[
        "FN", "SHIFT", "OPEN FD", "OPENED", "CLOSE FD", "CLOSED", "DOCS 1111", "RECEIVED", "RECEIPTS 1118", "RECEIVED", "CHECK",
    ]);
    for s in &items {
        let receipts = s["received_receipts"].as_u64().unwrap_or(0) + s["received_corrections"].as_u64().unwrap_or(0);
        t.add_row(vec![
            field(s, "fn_number"),
            field(s, "shift"),
            field(s, "opened_fd"),
            field(s, "opened_local"),
            field(s, "closed_fd"),
            field(s, "closed_local"),
            reported(s, "documents"),
            s["received"]["documents"].to_string(),
            reported(s, "receipts"),
            receipts.to_string(),
            verdict(s),
        ]);
    }
    print_table(&t);
    note(&format!("{} shifts, {mismatches} with a mismatch", items.len()));
    for n in &next {
        note(&format!("more shifts of FN {}: --fn {} --cursor {}", field(n, "fn_number"), field(n, "fn_number"), field(n, "cursor")));
    }
    Ok(())
}
