//! `adminctl reports`: the revenue report of `GET /v1/reports`.
//!
//! * `-o table` (default): a readable subset per row — receipts, sales, returns, revenue
//!   (sales minus returns, corrections included) and its cash/cashless split, VAT of the
//!   revenue by rate, average sale, corrections, unreadable documents — in roubles, then
//!   the total, and which time zone(s) placed the days;
//! * `-o json` / `-o yaml`: the full structure (every kind, every VAT code, kopecks);
//! * `-o csv`: the full flat matrix, streamed to stdout as it arrives (long ranges,
//!   thousands of registers) — kopecks, one column per figure, a `total` row last.
//!
//! Bad input (unknown grouping, `--from` after `--to`, a range beyond the server's
//! `reports.max_days`, an unknown zone) is refused by the server with the field named:
//! exit 1; an unknown register, owner or tariff plan: exit 4.

use std::io::Write;

use serde_json::Value;

use crate::client::{CliError, CliResult, exit};
use crate::cmd::Ctx;
use crate::output::{self, Format, note, print_table, structured};

/// `reports` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// One register (RNM).
    #[arg(long)]
    pub rnm: Option<String>,
    /// Registers of this owner INN.
    #[arg(long)]
    pub owner_inn: Option<String>,
    /// Registers on this tariff plan.
    #[arg(long)]
    pub tariff: Option<String>,
    /// First local day: YYYY-MM-DD, today or yesterday.
    #[arg(long, default_value = "yesterday")]
    pub from: String,
    /// Last local day, included (default: --from).
    #[arg(long)]
    pub to: Option<String>,
    /// Rows per day, week (ISO), month, register, owner or shift.
    #[arg(long, default_value = "day")]
    pub by: String,
    /// Count every register's days in this IANA zone instead of its own.
    #[arg(long)]
    pub time_zone: Option<String>,
}

/// VAT codes as people name them (1199); for 0 % and "not subject" the figure is the
/// turnover, not a tax.
const VAT_LABELS: [&str; 12] =
    ["20%", "10%", "20/120", "10/110", "0% turnover", "no-VAT turnover", "5%", "7%", "5/105", "7/107", "22%", "22/122"];

/// Kopecks as roubles: `1234.56`, `-0.05`.
pub fn roubles(kopecks: i128) -> String {
    let sign = if kopecks < 0 { "-" } else { "" };
    let k = kopecks.unsigned_abs();
    format!("{sign}{}.{:02}", k / 100, k % 100)
}

fn num(v: &Value, path: &[&str]) -> i128 {
    let mut cur = v;
    for p in path {
        cur = match cur.get(p) {
            Some(x) => x,
            None => return 0,
        };
    }
    cur.as_i64().map(i128::from).or_else(|| cur.as_u64().map(i128::from)).unwrap_or(0)
}

fn vat_cell(row: &Value) -> String {
    let parts: Vec<String> = (1..=12)
        .filter_map(|c| {
            let v = num(row, &["revenue", "vat", &c.to_string()]);
            (v != 0).then(|| format!("{} {}", VAT_LABELS[c - 1], roubles(v)))
        })
        .collect();
    if parts.is_empty() { "-".into() } else { parts.join(", ") }
}

fn table_row(group: String, row: &Value, with_name: bool) -> Vec<String> {
    let mut cells = vec![group];
    if with_name {
        cells.push(output::field(row, "name"));
    }
    cells.extend([
        num(row, &["receipts"]).to_string(),
        roubles(num(row, &["kinds", "sale", "total"])),
        roubles(num(row, &["kinds", "sale_return", "total"])),
        roubles(num(row, &["revenue", "total"])),
        roubles(num(row, &["revenue", "cash"])),
        roubles(num(row, &["revenue", "cashless"])),
        vat_cell(row),
        row.get("average_sale").and_then(Value::as_u64).map_or("-".into(), |a| roubles(i128::from(a))),
        num(row, &["corrections"]).to_string(),
        num(row, &["unreadable"]).to_string(),
    ]);
    cells
}

fn print_report(v: &Value) {
    let by = v.get("by").and_then(Value::as_str).unwrap_or("day");
    let with_name = matches!(by, "register" | "shift");
    let mut header = vec![by.to_uppercase()];
    if with_name {
        header.push("NAME".into());
    }
    header.extend(
        ["RECEIPTS", "SALES", "RETURNS", "REVENUE", "CASH", "CASHLESS", "VAT", "AVG SALE", "CORR", "UNREADABLE"]
            .map(str::to_owned),
    );
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = output::table(&header_refs);
    for row in v.get("rows").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        t.add_row(table_row(output::field(row, "group"), row, with_name));
    }
    if let Some(total) = v.get("total") {
        let mut cells = table_row("total".into(), total, with_name);
        if with_name {
            cells[1] = String::new();
        }
        t.add_row(cells);
    }
    let zones: Vec<&str> =
        v.get("time_zones").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    output::line(&format!(
        "Report {} … {} by {by}, {} registers; local days in {}; money in roubles (sales, returns: 1020 of receipts; revenue: sales − returns, corrections included)",
        output::field(v, "from"),
        output::field(v, "to"),
        output::field(v, "registers"),
        if zones.is_empty() { "-".to_owned() } else { zones.join(", ") },
    ));
    print_table(&t);
    if v.get("undated_shifts").and_then(Value::as_u64).is_some_and(|n| n > 0) {
        note(&format!("{} shifts without an open or close report were left out", output::field(v, "undated_shifts")));
    }
}

/// Runs `reports`.
pub async fn run(a: Args, ctx: &Ctx) -> CliResult<()> {
    let csv = match ctx.format {
        Format::Csv => true,
        Format::Table | Format::Json | Format::Yaml => false,
        Format::Raw | Format::Jsonl => {
            return Err(CliError::usage("reports print -o table, json, yaml or csv"));
        }
    };
    let q = vec![
        ("rnm", a.rnm.unwrap_or_default()),
        ("owner_inn", a.owner_inn.unwrap_or_default()),
        ("tariff", a.tariff.unwrap_or_default()),
        ("from", a.from),
        ("to", a.to.unwrap_or_default()),
        ("by", a.by),
        ("time_zone", a.time_zone.unwrap_or_default()),
        ("format", if csv { "csv" } else { "json" }.to_owned()),
    ];
    let mut resp = ctx.client.get_stream("/v1/reports", &q).await?;
    let broke = |why: String| CliError::new(exit::SERVER, format!("the report broke off: {why}"));
    if csv {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut ended_at_line = true;
        loop {
            let chunk = match tokio::time::timeout(ctx.client.timeout(), resp.chunk()).await {
                Err(_) => return Err(broke(format!("no data for {:?}", ctx.client.timeout()))),
                Ok(Err(e)) => return Err(broke(e.to_string())),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => c,
            };
            ended_at_line = chunk.ends_with(b"\n");
            out.write_all(&chunk).map_err(|e| CliError::new(exit::SERVER, format!("writing the report: {e}")))?;
        }
        out.flush().map_err(|e| CliError::new(exit::SERVER, format!("writing the report: {e}")))?;
        return if ended_at_line { Ok(()) } else { Err(broke("the report ended inside a line".into())) };
    }
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(ctx.client.timeout(), resp.chunk()).await {
            Err(_) => return Err(broke(format!("no data for {:?}", ctx.client.timeout()))),
            Ok(Err(e)) => return Err(broke(e.to_string())),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(c))) => body.extend_from_slice(&c),
        }
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| broke(format!("not a complete report ({e})")))?;
    if !structured(ctx.format, &v)? {
        print_report(&v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roubles_are_exact() {
        assert_eq!(roubles(0), "0.00");
        assert_eq!(roubles(5), "0.05");
        assert_eq!(roubles(123_456), "1234.56");
        assert_eq!(roubles(-105), "-1.05");
    }

    #[test]
    fn vat_lists_the_rates_present() {
        let row = serde_json::json!({"revenue": {"vat": {"1": 1667, "11": -200, "6": 0}}});
        assert_eq!(vat_cell(&row), "20% 16.67, 22% -2.00");
        assert_eq!(vat_cell(&serde_json::json!({})), "-");
    }
}
