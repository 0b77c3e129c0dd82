//! Every metric exists before its first event: a fresh gateway (no traffic, no FNS
//! endpoint, no alert rule, no admin request yet) is scraped once, and every metric named
//! in `docs/metrics.md` and in `grafana/` (dashboards, alert rules) has a sample — a
//! panel showing "No data" and a rule over an absent series are silent failures.
//! Histograms are there with their buckets (empty), and `doc_type` carries names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod promql_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use e2e::{GatewayOpts, GatewayProcess, http_request};
use gateway::metrics::{CATALOGUE, DOC_TYPE_LABELS, Kind};
use promql_support::{exported, metric_names};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Metric names used by the shipped dashboards and rules (histogram suffixes removed).
fn grafana_names() -> BTreeSet<String> {
    let mut files = Vec::new();
    for dir in ["grafana/dashboards", "grafana/prometheus/rules"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for n in metric_names(&text) {
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| n.strip_suffix(s).filter(|b| CATALOGUE.iter().any(|m| m.name == *b)))
                .map_or(n.clone(), str::to_owned);
            out.insert(base);
        }
    }
    out
}

/// Metric names listed in docs/metrics.md.
fn documented_names() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|n| n.starts_with("ofd_") || n.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

/// Samples of the scrape: metric family → series lines.
fn families(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = CATALOGUE
            .iter()
            .find(|m| {
                m.name == name
                    || (m.kind == Kind::Histogram
                        && ["_bucket", "_count", "_sum"].iter().any(|s| name.strip_suffix(s) == Some(m.name)))
            })
            .map_or(name, |m| m.name);
        out.entry(family.to_owned()).or_default().push(line.to_owned());
    }
    out
}

#[test]
fn a_fresh_gateway_exports_every_documented_and_dashboarded_metric() {
    let gw = GatewayProcess::start(GatewayOpts::default());
    let (status, body) = http_request(gw.addrs().metrics.unwrap(), "GET", "/metrics", None, None);
    assert_eq!(status, 200);
    let text = body.as_str().map(str::to_owned).unwrap_or_else(|| body.to_string());
    let got = families(&text);

    let documented = documented_names();
    assert!(documented.len() >= 40, "docs/metrics.md lists the catalogue: {documented:?}");
    let dashboarded = grafana_names();
    let unknown: Vec<&String> = dashboarded.iter().filter(|n| !exported(n)).collect();
    assert!(unknown.is_empty(), "grafana/ uses metrics outside the catalogue: {unknown:?}");
    assert!(dashboarded.len() >= 20, "names used by grafana/: {dashboarded:?}");
    let missing: Vec<&String> = documented.union(&dashboarded).filter(|n| !got.contains_key(*n)).collect();
    assert!(missing.is_empty(), "absent from a fresh gateway's /metrics: {missing:?}");

    // histograms have their buckets (empty) up to +Inf
    for m in CATALOGUE.iter().filter(|m| m.kind == Kind::Histogram) {
        let lines = &got[m.name];
        assert!(lines.iter().any(|l| l.contains("le=\"+Inf\"")), "{}: no +Inf bucket in {lines:?}", m.name);
        assert!(lines.iter().any(|l| l.starts_with(&format!("{}_count", m.name))), "{}: no _count", m.name);
    }
    // doc_type carries the documented names, every one of them, and nothing else
    let mut doc_types: BTreeSet<String> = BTreeSet::new();
    for l in &got["ofd_gateway_documents_received_total"] {
        let v = l.split("doc_type=\"").nth(1).unwrap().split('"').next().unwrap();
        doc_types.insert(v.to_owned());
    }
    let want: BTreeSet<String> = DOC_TYPE_LABELS.iter().map(|(_, n, _)| (*n).to_owned()).collect();
    assert_eq!(doc_types, want);
    assert!(want.contains("receipt") && want.contains("shift_open") && want.contains("other"));
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
    for n in &want {
        assert!(doc.contains(&format!("| `{n}` |")), "docs/metrics.md documents doc_type {n}");
    }
}
