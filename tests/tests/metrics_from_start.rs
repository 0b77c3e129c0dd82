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

// ---------------------------------------------------------------- through a real Prometheus

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prometheus scraping one target every second (killed on drop).
struct Prometheus {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus(target: std::net::SocketAddr) -> Prometheus {
    let exe = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .expect("prometheus is not installed: scripts/test.sh installs it (Debian package prometheus)");
    let dir = tempfile::Builder::new().prefix("e2e-prometheus-").tempdir().unwrap();
    let cfg = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: ofd-gateway\n    static_configs: [{{targets: ['{target}']}}]\n"
    );
    std::fs::write(dir.path().join("p.yml"), cfg).unwrap();
    for _ in 0..3 {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut child = std::process::Command::new(&exe)
            .arg(format!("--config.file={}", dir.path().join("p.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=error")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break; // port taken: another
            }
            if std::net::TcpStream::connect(addr).is_ok() && http_request(addr, "GET", "/-/ready", None, None).0 == 200
            {
                return Prometheus { child, addr, _dir: dir };
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("prometheus did not start");
}

fn query(p: &Prometheus, expr: &str) -> serde_json::Value {
    let (status, v) = http_request(p.addr, "GET", &format!("/api/v1/query?query={}", enc(expr)), None, None);
    assert_eq!((status, v["status"].as_str()), (200, Some("success")), "{expr}: {v}");
    v["data"]["result"].clone()
}

/// Every expression of every dashboard panel has a series on a gateway that has seen no
/// traffic, no FNS endpoint, no alert rule and no admin request: no panel shows "No data"
/// (issue 15 counted 36 of 112 without one). Alert rule expressions are empty while
/// nothing fires; their metrics are checked by name above.
#[test]
fn every_dashboard_expression_has_a_series_on_a_fresh_gateway() {
    let gw = GatewayProcess::start(GatewayOpts::default());
    let prom = prometheus(gw.addrs().metrics.unwrap());
    // two scrapes at least, so that rate() over 10 s has two samples
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while query(&prom, "count_over_time(up{job=\"ofd-gateway\"}[10s]) >= 3").as_array().is_none_or(Vec::is_empty) {
        assert!(std::time::Instant::now() < deadline, "Prometheus did not scrape the gateway");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let mut exprs = Vec::new();
    for e in std::fs::read_dir(root().join("grafana/dashboards")).unwrap() {
        let path = e.unwrap().path();
        let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut stack = vec![d];
        while let Some(v) = stack.pop() {
            for p in v["panels"].as_array().into_iter().flatten() {
                for t in p["targets"].as_array().into_iter().flatten() {
                    if let Some(e) = t["expr"].as_str() {
                        exprs.push((p["title"].as_str().unwrap_or("").to_owned(), e.to_owned()));
                    }
                }
                stack.push(p.clone());
            }
        }
    }
    assert!(exprs.len() >= 50, "{}", exprs.len());
    let mut empty = Vec::new();
    for (title, e) in &exprs {
        let q = e
            .replace("$__rate_interval", "10s")
            .replace("${__rate_interval}", "10s")
            .replace("$__interval", "2s")
            .replace("$__range", "1m")
            .replace("${job}", "ofd-gateway")
            .replace("$job", "ofd-gateway")
            .replace("${instance}", ".*")
            .replace("$instance", ".*");
        if query(&prom, &q).as_array().is_none_or(Vec::is_empty) {
            empty.push(format!("{title}: {q}"));
        }
    }
    assert!(empty.is_empty(), "{} of {} expressions have no series:\n{}", empty.len(), exprs.len(), empty.join("\n"));
}
