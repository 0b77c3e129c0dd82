//! The SRE alert rules (`grafana/prometheus/rules/*.yml`) and the Prometheus scrape
//! configuration, checked with Prometheus' own tool:
//!
//! * `promtool check config` (the config and the rule files it loads) and
//!   `promtool check rules`;
//! * `promtool test rules` on `grafana/prometheus/tests/*.yml`, the unit tests of every
//!   alert with `input_series` / `exp_alerts`;
//! * the unit tests are not vacuous: for every alert, a copy of the rules where that alert
//!   never fires, and one where it always fires, must both FAIL the tests;
//! * every alert has a `for`, a severity, a summary, a description and a runbook link to an
//!   existing section of `docs/runbook.md`, and is tested both firing and not firing;
//! * the rules name only metrics of the catalogue (`gateway::metrics::CATALOGUE`).
//!
//! promtool comes from Debian's `prometheus` package, which `scripts/test.sh` installs; the
//! tests FAIL (not skip) without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod promql_support;

use promql_support::{exported, metric_names};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_norway::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn prom_dir() -> PathBuf {
    root().join("grafana/prometheus")
}

/// `promtool`, or a failure that says how to get it.
fn promtool() -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("promtool").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "promtool is not installed: run scripts/test.sh (it installs Debian's `prometheus` package), \
         or `sudo apt-get install prometheus`; CI installs it, \
         so these tests fail rather than skip without it"
    );
    Command::new("promtool")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run promtool")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no YAML files in {}", dir.display());
    v
}

fn load_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Every alerting rule of every rule file: (file, rule).
fn alert_rules() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for f in yaml_files(&prom_dir().join("rules")) {
        let doc = load_yaml(&f);
        for g in doc["groups"].as_sequence().expect("groups") {
            for r in g["rules"].as_sequence().expect("rules") {
                if r.get("alert").is_some() {
                    out.push((f.clone(), r.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn promtool_checks_the_config_and_the_rule_files() {
    let config = prom_dir().join("prometheus.yml");
    let out = run(promtool().arg("check").arg("config").arg(&config));
    assert!(out.status.success(), "promtool check config {}:\n{}", config.display(), show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rule files found") && !text.contains(" 0 rule files"),
        "the config loads the rules:\n{text}"
    );

    for f in yaml_files(&prom_dir().join("rules")) {
        let out = run(promtool().arg("check").arg("rules").arg(&f));
        assert!(out.status.success(), "promtool check rules {}:\n{}", f.display(), show(&out));
    }
}

#[test]
fn promtool_unit_tests_of_the_alert_rules_pass() {
    for f in yaml_files(&prom_dir().join("tests")) {
        let out = run(promtool().arg("test").arg("rules").arg(&f));
        assert!(out.status.success(), "promtool test rules {}:\n{}", f.display(), show(&out));
    }
}

/// The anchors GitHub gives the headings of a Markdown file.
fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_alert_has_for_severity_summary_description_and_a_runbook_section() {
    let runbook = std::fs::read_to_string(root().join("docs/runbook.md")).expect("docs/runbook.md");
    let sections = anchors(&runbook);
    let rules = alert_rules();
    assert!(rules.len() >= 7, "the issue asks for at least 7 alerts, found {}", rules.len());
    let mut names = BTreeSet::new();
    for (file, r) in &rules {
        let name = s(r, "alert").unwrap();
        let at = format!("{} in {}", name, file.display());
        assert!(names.insert(name.to_owned()), "{at}: alert name used twice");
        assert!(s(r, "for").is_some(), "{at}: no `for` (use `0m` explicitly to fire at once)");
        let sev = r["labels"]["severity"].as_str().unwrap_or_else(|| panic!("{at}: no severity label"));
        assert!(matches!(sev, "critical" | "warning"), "{at}: severity {sev:?} is not critical|warning");
        let ann = &r["annotations"];
        for key in ["summary", "description", "runbook_url"] {
            let v = s(ann, key).unwrap_or_else(|| panic!("{at}: annotation {key} missing"));
            assert!(!v.trim().is_empty(), "{at}: annotation {key} empty");
        }
        let url = s(ann, "runbook_url").unwrap();
        let (page, anchor) = url.split_once('#').unwrap_or_else(|| panic!("{at}: runbook_url has no #section"));
        assert!(page.ends_with("/docs/runbook.md"), "{at}: runbook_url must point at docs/runbook.md: {url}");
        assert!(sections.contains(anchor), "{at}: docs/runbook.md has no section #{anchor} (sections: {sections:?})");
        assert_eq!(anchor, name.to_lowercase(), "{at}: the runbook section is named after the alert");
        assert!(
            s(r, "expr").unwrap().contains("job=\"ofd-gateway\""),
            "{at}: select the gateway job (job=\"ofd-gateway\") so other jobs never match"
        );
    }
    // the alerts the issue names
    for wanted in [
        "OfdGatewayDown",
        "OfdGatewayNotReady",
        "OfdGatewayAckLatencyHigh",
        "OfdGatewayRejectionRatioHigh",
        "OfdStoragePoisoned",
        "OfdFnsBacklogGrowing",
        "OfdGatewayFileDescriptorsNearLimit",
    ] {
        assert!(names.contains(wanted), "alert {wanted} missing");
    }
}

#[test]
fn every_alert_is_unit_tested_both_firing_and_not_firing() {
    // alert name -> (cases where it fires, cases where it must not)
    let mut cases: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for f in yaml_files(&prom_dir().join("tests")) {
        let doc = load_yaml(&f);
        for t in doc["tests"].as_sequence().expect("tests") {
            for a in t.get("alert_rule_test").and_then(Value::as_sequence).into_iter().flatten() {
                let name = s(a, "alertname").expect("alertname").to_owned();
                let fires = a.get("exp_alerts").and_then(Value::as_sequence).is_some_and(|v| !v.is_empty());
                let e = cases.entry(name).or_default();
                if fires {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
        }
    }
    for (_, r) in alert_rules() {
        let name = s(&r, "alert").unwrap();
        let (fires, quiet) = cases.get(name).copied().unwrap_or_default();
        assert!(fires >= 1, "{name}: no promtool case where it fires (non-empty exp_alerts)");
        assert!(quiet >= 1, "{name}: no promtool case where it must not fire (empty exp_alerts)");
    }
}

/// Runs the unit tests against a copy of the rules where alert `name`'s expression is
/// replaced by `expr`; returns whether they passed.
fn unit_tests_pass_with(name: &str, expr: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    for f in yaml_files(&prom_dir().join("rules")) {
        let mut doc = load_yaml(&f);
        for g in doc["groups"].as_sequence_mut().unwrap() {
            for r in g["rules"].as_sequence_mut().unwrap() {
                if s(r, "alert") == Some(name) {
                    r["expr"] = Value::String(expr.to_owned());
                }
            }
        }
        std::fs::write(dir.path().join("rules").join(f.file_name().unwrap()), serde_norway::to_string(&doc).unwrap())
            .unwrap();
    }
    let mut all_ok = true;
    for f in yaml_files(&prom_dir().join("tests")) {
        let copy = dir.path().join("tests").join(f.file_name().unwrap());
        std::fs::copy(&f, &copy).unwrap();
        let out = run(promtool().arg("test").arg("rules").arg(&copy));
        all_ok &= out.status.success();
    }
    all_ok
}

#[test]
fn unit_tests_catch_an_alert_that_never_fires_or_always_fires() {
    let names: Vec<String> = alert_rules().iter().map(|(_, r)| s(r, "alert").unwrap().to_owned()).collect();
    // one thread per alert: each runs promtool twice on its own copy
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                scope.spawn(move || {
                    let mut f = Vec::new();
                    if unit_tests_pass_with(name, "vector(0) > 1") {
                        f.push(format!("{name}: the unit tests pass even when it never fires"));
                    }
                    if unit_tests_pass_with(name, "vector(1)") {
                        f.push(format!("{name}: the unit tests pass even when it always fires"));
                    }
                    f
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn rules_use_only_metrics_of_the_catalogue() {
    let mut used = 0;
    for f in yaml_files(&prom_dir().join("rules")) {
        let doc = load_yaml(&f);
        for g in doc["groups"].as_sequence().unwrap() {
            for r in g["rules"].as_sequence().unwrap() {
                let expr = s(r, "expr").unwrap();
                for m in metric_names(expr) {
                    used += 1;
                    assert!(
                        exported(&m),
                        "{}: rule {:?} uses {m}, which gateway/src/metrics.rs does not define",
                        f.display(),
                        s(r, "alert").or(s(r, "record"))
                    );
                }
            }
        }
    }
    assert!(used > 10, "expected the rules to reference gateway metrics");
}
