//! Output: `-o table` (people), `-o json` (scripts: the server's JSON, pretty-printed with
//! sorted keys, so the same state always prints the same bytes), `-o yaml`, and `-o raw`
//! (only `documents show`: the container bytes in hex).

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

use crate::client::{CliError, CliResult};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// JSON (stable: sorted keys).
    Json,
    /// YAML.
    Yaml,
    /// Raw bytes in hex (documents show only).
    Raw,
    /// JSON lines, one document a line (documents export only).
    Jsonl,
    /// CSV (documents export: one document a row; reports: the full matrix).
    Csv,
}

/// Prints a value as JSON or YAML; `Ok(false)` for table (the caller renders it).
pub fn structured(format: Format, value: &Value) -> CliResult<bool> {
    match format {
        Format::Json => {
            let text = serde_json::to_string_pretty(value)
                .map_err(|e| CliError::new(1, format!("cannot render JSON: {e}")))?;
            line(&text);
            Ok(true)
        }
        Format::Yaml => {
            let text =
                serde_norway::to_string(value).map_err(|e| CliError::new(1, format!("cannot render YAML: {e}")))?;
            print_raw(&text);
            Ok(true)
        }
        Format::Table | Format::Raw | Format::Jsonl | Format::Csv => Ok(false),
    }
}

/// A duration as people write it: `45 s`, `5 min`, `36 h`, `1 day`, `2 days 5 h` (the
/// same words as the gateway's alert texts; adminctl does not depend on the gateway).
pub fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, mins, s) = (secs / 86_400, secs / 3_600, secs / 60 % 60, secs % 60);
    let days_text = if days == 1 { "1 day".to_owned() } else { format!("{days} days") };
    if secs == 0 {
        "0 s".to_owned()
    } else if secs.is_multiple_of(86_400) {
        days_text
    } else if secs < 60 {
        format!("{s} s")
    } else if secs < 3_600 {
        if s == 0 { format!("{mins} min") } else { format!("{mins} min {s} s") }
    } else if secs < 3 * 86_400 {
        if mins == 0 { format!("{hours} h") } else { format!("{hours} h {mins} min") }
    } else if hours % 24 == 0 {
        days_text
    } else {
        format!("{days_text} {} h", hours % 24)
    }
}

/// Writes a line to stdout (ignoring a closed pipe).
pub fn line(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
}

fn print_raw(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{s}");
}

/// Writes to stderr as it is (a progress line redrawn with `\r`).
pub fn note_inline(s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{s}");
    let _ = err.flush();
}

/// Writes a line to stderr.
pub fn note(s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{s}");
}

/// A new table with a header.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(if std::io::stdout().is_terminal() {
            ContentArrangement::Dynamic
        } else {
            ContentArrangement::Disabled
        })
        .set_header(header.to_vec());
    t
}

/// Prints a table.
pub fn print_table(t: &Table) {
    line(&t.to_string());
}

/// A cell from a JSON value: strings bare, null as "-", others as JSON.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) if s.is_empty() => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A cell from a JSON object field.
pub fn field(v: &Value, key: &str) -> String {
    cell(v.get(key))
}

/// A key/value table of selected fields.
pub fn key_values(rows: &[(&str, String)]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    for (k, v) in rows {
        t.add_row(vec![(*k).to_owned(), v.clone()]);
    }
    t
}

/// A table of the `items` of a list answer with the given (header, key) columns.
pub fn items_table(value: &Value, columns: &[(&str, &str)]) -> Table {
    let header: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let mut t = table(&header);
    for item in value.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        t.add_row(columns.iter().map(|(_, k)| field(item, k)).collect::<Vec<_>>());
    }
    t
}

/// Prints a list answer: structured, or a table plus a "next page" hint.
pub fn list(format: Format, value: &Value, columns: &[(&str, &str)], what: &str) -> CliResult<()> {
    if structured(format, value)? {
        return Ok(());
    }
    let n = value.get("items").and_then(Value::as_array).map_or(0, Vec::len);
    if n == 0 {
        note(&format!("no {what}"));
        return Ok(());
    }
    print_table(&items_table(value, columns));
    if let Some(next) = value.get("next").and_then(Value::as_str) {
        note(&format!("more {what}: --cursor {next} (or --all)"));
    }
    Ok(())
}

/// Refuses `-o raw` for commands that have no raw form.
pub fn no_raw(format: Format) -> CliResult<()> {
    if format == Format::Raw {
        return Err(CliError::usage("-o raw is only available for `documents show`"));
    }
    if matches!(format, Format::Jsonl | Format::Csv) {
        return Err(CliError::usage(
            "-o jsonl is only available for `documents export`, -o csv for `documents export` and `reports`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let d = |s: u64| human_duration(std::time::Duration::from_secs(s));
        assert_eq!(
            [d(0), d(45), d(330), d(3_600), d(86_400), d(36 * 3_600), d(2 * 86_400), d(3 * 86_400 + 5 * 3_600)],
            ["0 s", "45 s", "5 min 30 s", "1 h", "1 day", "36 h", "2 days", "3 days 5 h"]
        );
    }
}
