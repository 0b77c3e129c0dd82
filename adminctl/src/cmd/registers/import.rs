//! `registers import FILE`: read and check the CSV locally, send it in batches (validated
//! first unless `--partial`, so a file is applied whole or not at all), report every
//! invalid row by its CSV line.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;

use serde_json::{Value, json};

use crate::client::{CliError, CliResult, exit};
use crate::cmd::Ctx;
use crate::output::{self, field, note, print_table, structured};

/// Columns of the import CSV, in order.
pub const CSV_COLUMNS: [&str; 9] =
    ["rnm", "kkt_serial", "owner_inn", "name", "address", "group", "fn_number", "tariff", "paid_until"];
const REQUIRED_COLUMNS: [&str; 5] = ["rnm", "kkt_serial", "owner_inn", "name", "fn_number"];

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
    let data = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))?;
        buf
    } else {
        std::fs::read(path).map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?
    };
    let lines = LineIndex::new(&data);
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(data.as_slice());
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
                let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
                errors.push(row_error(line, "row", format!("unreadable CSV row: {e}")));
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(CliError::usage(format!("reading {}: {e}", path.display())));
                }
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| lines.line_at(p.byte()));
        let mut obj = serde_json::Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            obj.insert(h.clone(), if v.is_empty() { Value::Null } else { Value::String(v.to_owned()) });
        }
        let rnm = obj.get("rnm").and_then(Value::as_str).unwrap_or("").to_owned();
        let fnn = obj.get("fn_number").and_then(Value::as_str).unwrap_or("").to_owned();
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
        rows.push(Row { line, value: Value::Object(obj) });
    }
    Ok((rows, errors))
}

/// The file's line numbers, as an editor shows them (the header is line 1), from byte
/// offsets. The csv crate's own line count is off by one for every CRLF file (it counts
/// the `\r\n` of the previous record after the record has started), so the lines are
/// counted here from the bytes.
struct LineIndex<'a> {
    data: &'a [u8],
    /// Byte offset of every `\n`.
    newlines: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(data: &'a [u8]) -> Self {
        let newlines = data.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i).collect();
        Self { data, newlines }
    }

    /// 1-based line of the first byte at or after `byte` that is not a line break.
    fn line_at(&self, byte: u64) -> u64 {
        let mut at = usize::try_from(byte).unwrap_or(usize::MAX).min(self.data.len());
        while self.data.get(at).is_some_and(|b| *b == b'\n' || *b == b'\r') {
            at += 1;
        }
        1 + self.newlines.partition_point(|&n| n < at) as u64
    }
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
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} rows ({eta})") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_owned());
    pb
}

fn sort_errors(errors: &mut [Value]) {
    errors.sort_by_key(|e| e.get("line").and_then(Value::as_u64).unwrap_or(0));
}

pub(super) async fn import(ctx: &Ctx, path: &Path, partial: bool, dry_run: bool, batch: usize) -> CliResult<()> {
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
        format!("{} invalid rows were skipped; the valid rows were applied", outcome.errors.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(data: &str) -> Vec<u64> {
        let idx = LineIndex::new(data.as_bytes());
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(data.as_bytes());
        rdr.records().map(|r| idx.line_at(r.expect("record").position().expect("position").byte())).collect()
    }

    #[test]
    fn file_lines_with_lf_crlf_blank_lines_and_quoted_breaks() {
        assert_eq!(lines_of("a,b\n1,2\n3,4\n"), [2, 3]);
        assert_eq!(lines_of("a,b\r\n1,2\r\n3,4\r\n"), [2, 3]);
        assert_eq!(lines_of("a,b\r\n1,2\r\n\r\n3,4"), [2, 4]);
        assert_eq!(lines_of("a,b\n\"x\ny\",2\n3,4\n"), [2, 4]);
        assert_eq!(lines_of("a,b\r\n\"x\r\ny\",2\r\n3,4\r\n"), [2, 4]);
    }
}
