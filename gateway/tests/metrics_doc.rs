//! The metrics catalogue (`gateway/src/metrics.rs`) and its generated documentation
//! (`docs/metrics.md`) agree, and the catalogue keeps the naming rules SREs rely on:
//! prefixed names, `_total` counters and nothing else ending so, base units, explicit
//! histogram buckets, and bounded label sets (never a register, FN or INN).
//!
//! Regenerate the document with
//! `cargo run -q -p gateway --bin gateway -- metrics-doc > docs/metrics.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use gateway::metrics::{CATALOGUE, Kind, render_markdown};

fn doc_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md")
}

#[test]
fn docs_metrics_md_is_generated_from_the_catalogue() {
    let on_disk = std::fs::read_to_string(doc_path()).expect("docs/metrics.md exists");
    let generated = render_markdown();
    if on_disk != generated {
        let first = on_disk
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| on_disk.lines().count().min(generated.lines().count()));
        panic!(
            "docs/metrics.md differs from the catalogue (first difference at line {}):\n  file: {:?}\n  code: {:?}\n\
             regenerate it: cargo run -q -p gateway --bin gateway -- metrics-doc > docs/metrics.md",
            first + 1,
            on_disk.lines().nth(first).unwrap_or("<end of file>"),
            generated.lines().nth(first).unwrap_or("<end of output>"),
        );
    }
    // every metric is in the table, by its exact name
    for m in CATALOGUE {
        assert!(on_disk.contains(&format!("| `{}` |", m.name)), "{} missing from docs/metrics.md", m.name);
    }
}

#[test]
fn names_are_unique_prefixed_and_well_formed() {
    let mut seen = HashSet::new();
    for m in CATALOGUE {
        assert!(seen.insert(m.name), "{} is defined twice", m.name);
        assert!(
            m.name.starts_with("ofd_gateway_") || m.name.starts_with("ofd_storage_") || m.name.starts_with("process_"),
            "{}: names start with ofd_gateway_, ofd_storage_ or (standard process metrics) process_",
            m.name
        );
        assert!(
            m.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{}: snake_case ASCII only",
            m.name
        );
        assert!(!m.name.contains("__") && !m.name.ends_with('_'), "{}: malformed name", m.name);
        assert!(!m.help.trim().is_empty(), "{}: help text is empty", m.name);
        assert!(m.help.ends_with('.'), "{}: help text is a sentence ending with a period", m.name);
    }
}

#[test]
fn counters_end_in_total_and_nothing_else_does() {
    for m in CATALOGUE {
        match m.kind {
            Kind::Counter => assert!(m.name.ends_with("_total"), "counter {} must end in _total", m.name),
            _ => assert!(!m.name.ends_with("_total"), "{} is a {} but ends in _total", m.name, m.kind.as_str()),
        }
        // suffixes Prometheus adds itself must not be part of a name
        for s in ["_bucket", "_count", "_sum", "_created"] {
            assert!(!m.name.ends_with(s), "{} ends in {s}, which the exposition format reserves", m.name);
        }
    }
}

#[test]
fn units_are_base_units() {
    // Prometheus convention: seconds, bytes, ratios 0..1; the unit is the last word before
    // `_total` (counters) or the last word.
    let forbidden = [
        "milliseconds",
        "millis",
        "ms",
        "microseconds",
        "us",
        "nanoseconds",
        "ns",
        "minutes",
        "hours",
        "days",
        "kilobytes",
        "kb",
        "megabytes",
        "mb",
        "kib",
        "mib",
        "percent",
        "pct",
        "bits",
    ];
    for m in CATALOGUE {
        for word in m.name.split('_') {
            assert!(
                !forbidden.contains(&word),
                "{}: `{word}` is not a base unit (use seconds, bytes or a 0..1 ratio)",
                m.name
            );
        }
        let lower = m.help.to_ascii_lowercase();
        if m.name.ends_with("_seconds") || m.name.ends_with("_seconds_total") {
            assert!(!lower.contains("millisecond"), "{}: help says milliseconds for a seconds metric", m.name);
        }
    }
    // every duration histogram is in seconds, every size histogram says what it counts
    for m in CATALOGUE.iter().filter(|m| m.kind == Kind::Histogram) {
        assert!(
            m.name.ends_with("_seconds") || m.name.ends_with("_bytes") || m.name.ends_with("_documents"),
            "histogram {} must end in its unit (_seconds, _bytes, _documents)",
            m.name
        );
    }
}

#[test]
fn histograms_have_explicit_increasing_buckets() {
    for m in CATALOGUE {
        if m.kind == Kind::Histogram {
            assert!(
                m.buckets.len() >= 4,
                "histogram {} needs explicit buckets (metrics-exporter-prometheus renders a summary otherwise)",
                m.name
            );
            assert!(m.buckets.iter().all(|b| b.is_finite() && *b > 0.0), "{}: buckets are positive and finite", m.name);
            assert!(m.buckets.windows(2).all(|w| w[0] < w[1]), "{}: buckets strictly increase", m.name);
        } else {
            assert!(m.buckets.is_empty(), "{} is a {} and has buckets", m.name, m.kind.as_str());
        }
    }
}

/// Label names whose values come from closed sets in the code (enums, route templates,
/// configured rule names, the crate version). A new label belongs here only when its
/// values are bounded by construction; per-register identities never are.
const BOUNDED_LABELS: &[&str] = &[
    "transport", // tcp | tls | quic
    "doc_type",  // document type names (DOC_TYPE_LABELS) or `other`
    "code",      // response codes / error codes (enum codes)
    "reason",    // CloseReason / Refusal
    "kind",      // duplicate kind, FNS request kind
    "result",    // outcome enums
    "rule",      // alert rule names (configured by admins: tens, not per register)
    "severity",  // alert severity enum
    "status",    // HTTP status of the admin API, alert status
    "state",     // resend job final state
    "route",     // admin API path templates (never the concrete path)
    "op",        // storage operation names
    "error",     // storage error codes
    "follower",  // journal followers: derive | fns
    "bucket",    // tag-number hundreds 1000-1099 … 2900-2999 | other (ffd::tags::tag_bucket: 21)
    "action",    // unknown tags: accepted | refused
    "version",   // build info
];

#[test]
fn labels_are_bounded_and_never_identify_a_register() {
    let identities = [
        "register",
        "rnm",
        "fn",
        "fn_number",
        "fd",
        "inn",
        "owner_inn",
        "kkt",
        "serial",
        "peer",
        "ip",
        "addr",
        "path",
        "token",
        "user",
    ];
    for m in CATALOGUE {
        let mut seen = HashSet::new();
        for l in m.labels {
            assert!(seen.insert(*l), "{}: label {l} repeated", m.name);
            let lower = l.to_ascii_lowercase();
            for id in identities {
                assert!(
                    lower != id && !lower.starts_with(&format!("{id}_")) && !lower.ends_with(&format!("_{id}")),
                    "{}: label `{l}` would identify a register/connection (hundreds of thousands of series)",
                    m.name
                );
            }
            assert!(
                BOUNDED_LABELS.contains(l),
                "{}: label `{l}` is not in the list of bounded labels (metrics_doc.rs BOUNDED_LABELS); \
                 add it there only if its values come from a closed set",
                m.name
            );
            assert!(!l.starts_with("__") && *l != "le" && *l != "quantile", "{}: reserved label {l}", m.name);
        }
    }
}
