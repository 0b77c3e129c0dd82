//! `adminctl gaps`: FD continuity — documents an FN numbered that never arrived.
//! Without `--rnm`: every FN of the fleet with FDs missing (`GET /v1/gaps`), with the
//! totals of what was listed; with `--rnm`: every FN of one register, its lowest and
//! highest FD received, how many are missing and each hole with the time it has been
//! known (`GET /v1/registers/{rnm}/gaps`).

use serde_json::{Value, json};

use super::{Ctx, Paging, seg};
use crate::client::CliResult;
use crate::output::{self, field, note, print_table, structured};

/// `gaps` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// One register: every FN of it, with its holes.
    #[arg(long)]
    pub rnm: Option<String>,
    #[command(flatten)]
    pub paging: Paging,
}

/// Holes as `12 (since …), 15–17 (since …)`, the first few.
fn holes_cell(item: &Value) -> String {
    const SHOWN: usize = 5;
    let holes = item.get("holes").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut parts: Vec<String> = holes
        .iter()
        .take(SHOWN)
        .map(|h| {
            let (from, to) = (field(h, "from"), field(h, "to"));
            let run = if from == to { from } else { format!("{from}–{to}") };
            format!("{run} (since {})", field(h, "since"))
        })
        .collect();
    if holes.len() > SHOWN {
        parts.push(format!("… {} more", holes.len() - SHOWN));
    }
    if parts.is_empty() { "-".into() } else { parts.join(", ") }
}

/// Runs `gaps`.
pub async fn run(a: Args, ctx: &Ctx) -> CliResult<()> {
    output::no_raw(ctx.format)?;
    if let Some(rnm) = a.rnm {
        let v = ctx.client.get(&format!("/v1/registers/{}/gaps", seg(&rnm)), &[]).await?;
        if structured(ctx.format, &v)? {
            return Ok(());
        }
        let mut t = output::table(&["FN", "CURRENT", "LOW", "HIGH", "RECEIVED", "MISSING", "HOLES"]);
        for i in v.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            let current = if i.get("current").and_then(Value::as_bool) == Some(true) { "yes" } else { "" };
            t.add_row(vec![
                field(i, "fn_number"),
                current.into(),
                field(i, "low"),
                field(i, "high"),
                field(i, "received"),
                field(i, "missing"),
                holes_cell(i),
            ]);
        }
        print_table(&t);
        note(&format!("register {}: {} FDs missing", field(&v, "rnm"), field(&v, "missing")));
        return Ok(());
    }
    let mut v = ctx.pages("/v1/gaps", Vec::new(), &a.paging).await?;
    let items = v.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    let missing: u64 = items.iter().filter_map(|i| i.get("missing").and_then(Value::as_u64)).sum();
    v["fns"] = json!(items.len());
    v["missing"] = json!(missing);
    if structured(ctx.format, &v)? {
        return Ok(());
    }
    if items.is_empty() {
        note("no FN has FDs missing");
        return Ok(());
    }
    let mut t = output::table(&["FN", "RNM", "LOW", "HIGH", "RECEIVED", "MISSING", "HOLES", "OLDEST HOLE SINCE"]);
    for i in &items {
        let holes = i.get("holes").and_then(Value::as_array).map_or(0, Vec::len);
        t.add_row(vec![
            field(i, "fn_number"),
            field(i, "rnm"),
            field(i, "low"),
            field(i, "high"),
            field(i, "received"),
            field(i, "missing"),
            holes.to_string(),
            field(i, "oldest_hole_since"),
        ]);
    }
    print_table(&t);
    note(&format!("{} FNs with gaps, {missing} FDs missing", items.len()));
    if let Some(next) = v.get("next").and_then(Value::as_str) {
        note(&format!("more FNs: --cursor {next} (or --all; the totals are of the FNs listed)"));
    }
    Ok(())
}
