//! PromQL helpers shared by the dashboard and alert-rule tests: which metric names an
//! expression uses, and whether the gateway's catalogue exports them.

use std::collections::BTreeSet;

/// Metric names in a PromQL expression (identifiers starting with a catalogue prefix).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("ofd_") || t.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

/// Whether `name` (as written in PromQL) is exported: a catalogue name, or a histogram's
/// `_bucket`/`_count`/`_sum` series.
pub fn exported(name: &str) -> bool {
    use gateway::metrics::{CATALOGUE, Kind};
    CATALOGUE.iter().any(|m| {
        m.name == name
            || (m.kind == Kind::Histogram
                && ["_bucket", "_count", "_sum"].iter().any(|suf| name.strip_suffix(suf) == Some(m.name)))
    })
}
