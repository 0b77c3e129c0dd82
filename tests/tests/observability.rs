//! The dashboards and alert rules against the real thing: a gateway under loadgen traffic
//! and a real Prometheus (Debian's `prometheus` package) scraping it every second.
//!
//! `every_dashboard_and_rule_query_runs_against_a_real_gateway_under_load`:
//! 1. starts a local FNS receiver (failing 20% of the requests, so delivery errors exist)
//!    and a gateway forwarding to it, with fast background intervals, and a register
//!    alert rule (paid period ending within 400 days) that fires for every onboarded
//!    register, its webhook on the receiver;
//! 2. starts Prometheus with the shipped scrape job (`grafana/prometheus/prometheus.yml`,
//!    job `ofd-gateway`, its target replaced by the test gateway, 1 s intervals) and the
//!    shipped alert rules;
//! 3. runs loadgen over TCP (with duplicates and malformed documents), TLS (a connection
//!    per document: handshakes), QUIC, and a population that is not onboarded (refusals),
//!    at the same time, for a few seconds, plus admin API requests during the run and a
//!    small late onboarding (a second burst of alert transitions and webhooks);
//! 4. extracts every `expr` of every panel of every dashboard, substitutes the Grafana
//!    variables (`$job`, `$instance`, `$__rate_interval`, ...), runs each through
//!    `/api/v1/query` (must succeed) and, for the panels of `grafana/traffic-panels.yml`,
//!    through `/api/v1/query_range` over the run: every target of such a panel must have a
//!    finite sample (`nonempty`) or a sample above 0 (`nonzero`);
//! 5. runs every rule expression, checks Prometheus evaluated every rule without error,
//!    that the template-variable queries find the gateway, that the rejection-ratio alert
//!    is pending under the injected rejections, and, after `kill -9`, that
//!    OfdGatewayDown and OfdGatewayNoneServing become pending;
//! 6. checks every metric family the gateway exports is in the catalogue.
//!
//! `dashboards_are_well_formed` checks the JSON statically (no Prometheus needed).
//!
//! Prometheus and promtool are installed by `scripts/test.sh`; without them the test FAILS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod promql_support;

use promql_support::{exported, metric_names};

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::{GatewayOpts, GatewayProcess, bin, http_request};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

// ---------------------------------------------------------------- dashboards

/// One panel target.
#[derive(Debug, Clone)]
struct PanelExpr {
    dashboard: String,
    panel: String,
    expr: String,
}

fn dashboards() -> Vec<(PathBuf, Value)> {
    let dir = root().join("grafana/dashboards");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("grafana/dashboards")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v.into_iter()
        .map(|p| {
            let j = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, j)
        })
        .collect()
}

/// Panels of a dashboard, rows flattened.
fn panels(d: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten().cloned());
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn panel_exprs() -> Vec<PanelExpr> {
    let mut out = Vec::new();
    for (_, d) in dashboards() {
        let uid = d["uid"].as_str().unwrap().to_owned();
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push(PanelExpr {
                        dashboard: uid.clone(),
                        panel: p["title"].as_str().unwrap().to_owned(),
                        expr: e.to_owned(),
                    });
                }
            }
        }
    }
    out
}

/// `grafana/traffic-panels.yml`: dashboard uid -> panel title -> `nonzero` | `nonempty`.
fn traffic_panels() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(root().join("grafana/traffic-panels.yml")).expect("traffic-panels.yml");
    serde_norway::from_str(&text).expect("traffic-panels.yml parses")
}

/// Grafana's variables, with the values a user of the test gateway would have.
fn substitute(expr: &str, instance: &str) -> String {
    let out = expr
        .replace("$__rate_interval", "10s")
        .replace("${__rate_interval}", "10s")
        .replace("$__interval", "2s")
        .replace("$__range", "1m")
        .replace("${job}", "ofd-gateway")
        .replace("$job", "ofd-gateway")
        .replace("${instance}", instance)
        .replace("$instance", instance);
    assert!(!out.contains('$'), "unknown Grafana variable left in {out}");
    out
}

#[test]
fn dashboards_are_well_formed() {
    let ds = dashboards();
    let mut uids = BTreeSet::new();
    for uid in ["ofd-ingest", "ofd-connections", "ofd-storage", "ofd-fns", "ofd-alerts", "ofd-process"] {
        assert!(ds.iter().any(|(_, d)| d["uid"] == uid), "dashboard {uid} missing");
    }
    for (path, d) in &ds {
        let at = path.display().to_string();
        let uid = d["uid"].as_str().unwrap_or_else(|| panic!("{at}: no uid"));
        assert!(uids.insert(uid.to_owned()), "{at}: uid {uid} used twice");
        assert_eq!(path.file_stem().unwrap().to_str().unwrap(), uid, "{at}: file named after its uid");
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "{at}: title");
        assert!(d["description"].as_str().is_some_and(|t| t.len() > 20), "{at}: description");
        let vars: Vec<&str> =
            d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        for v in ["datasource", "job", "instance"] {
            assert!(vars.contains(&v), "{at}: template variable {v} missing");
        }
        let mut titles = BTreeSet::new();
        let mut ids = BTreeSet::new();
        let ps = panels(d);
        assert!(ps.len() >= 4, "{at}: too few panels");
        for p in &ps {
            let title = p["title"].as_str().unwrap_or_else(|| panic!("{at}: panel without title"));
            let pat = format!("{at}: panel {title:?}");
            assert!(titles.insert(title.to_owned()), "{pat}: title used twice in the dashboard");
            assert!(ids.insert(p["id"].as_u64().expect("panel id")), "{pat}: id used twice");
            assert!(
                p["description"].as_str().is_some_and(|t| t.trim().len() > 10),
                "{pat}: every panel has a description"
            );
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str();
            assert!(unit.is_some_and(|u| !u.is_empty()), "{pat}: every panel has a unit");
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{pat}: data source is the variable");
            let grid = &p["gridPos"];
            assert!(grid["w"].as_u64().is_some_and(|w| w > 0 && w <= 24), "{pat}: gridPos.w");
            assert!(grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24, "{pat}: fits the grid");
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{pat}: no targets"));
            assert!(!targets.is_empty(), "{pat}: no targets");
            for t in targets {
                let expr = t["expr"].as_str().unwrap_or_else(|| panic!("{pat}: target without expr"));
                assert!(expr.contains("$job") || expr.contains("${job}"), "{pat}: select $job: {expr}");
                assert!(expr.contains("$instance"), "{pat}: select $instance: {expr}");
                for m in metric_names(expr) {
                    assert!(exported(&m), "{pat}: {m} is not in the catalogue (gateway/src/metrics.rs)");
                }
                if expr.contains("rate(") || expr.contains("increase(") {
                    assert!(expr.contains("[$__rate_interval]"), "{pat}: rate windows use $__rate_interval: {expr}");
                }
                let _ = substitute(expr, "x:1");
            }
        }
    }
    // the traffic list names existing panels
    let traffic = traffic_panels();
    for (uid, ps) in &traffic {
        let (_, d) = ds.iter().find(|(_, d)| d["uid"] == uid.as_str()).unwrap_or_else(|| panic!("no dashboard {uid}"));
        let titles: BTreeSet<String> = panels(d).iter().map(|p| p["title"].as_str().unwrap().to_owned()).collect();
        for (title, need) in ps {
            assert!(titles.contains(title), "traffic-panels.yml: {uid} has no panel {title:?}");
            assert!(matches!(need.as_str(), "nonzero" | "nonempty"), "traffic-panels.yml: {need}");
        }
    }
    // the panels the issue asks to show traffic are marked
    for (uid, title) in [
        ("ofd-ingest", "Documents received"),
        ("ofd-ingest", "Acknowledgments by response code"),
        ("ofd-ingest", "Ack latency percentiles"),
        ("ofd-connections", "Open connections by transport"),
        ("ofd-connections", "Accepted connections by transport"),
        ("ofd-connections", "Bytes received"),
        ("ofd-storage", "Group-commit batch size"),
        ("ofd-storage", "Commit latency (write + sync)"),
        ("ofd-process", "Resident memory"),
        ("ofd-process", "Open files vs limit"),
    ] {
        assert!(traffic.get(uid).is_some_and(|p| p.contains_key(title)), "{uid}/{title} must be a traffic panel");
    }
    // the generator and the committed JSON agree (when Python is there to run it)
    match Command::new("python3").arg(root().join("grafana/generate.py")).arg("--check").output() {
        Ok(out) => assert!(
            out.status.success(),
            "grafana/generate.py --check: the JSON was edited by hand or the generator changed without \
             re-running it:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("note: python3 not available ({e}); generator freshness not checked"),
    }
    // provisioning files parse and point at the dashboards and the data source uid
    let p: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(root().join("grafana/provisioning/datasources/prometheus.yml")).unwrap(),
    )
    .unwrap();
    assert_eq!(p["apiVersion"].as_u64(), Some(1));
    assert_eq!(p["datasources"][0]["uid"].as_str(), Some("prometheus"));
    assert_eq!(p["datasources"][0]["type"].as_str(), Some("prometheus"));
    let p: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(root().join("grafana/provisioning/dashboards/ofd.yml")).unwrap(),
    )
    .unwrap();
    assert_eq!(p["apiVersion"].as_u64(), Some(1));
    assert_eq!(p["providers"][0]["type"].as_str(), Some("file"));
    assert!(p["providers"][0]["options"]["path"].as_str().is_some());
}

// ---------------------------------------------------------------- Prometheus

fn require(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "{tool} is not installed: run scripts/test.sh (it installs Debian's `prometheus` package), or \
                 `sudo apt-get install prometheus` (a running system Prometheus is left alone: the tests start their \
                 own); CI installs it, so this test fails rather than skips without it"
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Percent-encoding for a query-string value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus child process on a free loopback port and a temporary data directory.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `config` (YAML text), waits until it is ready.
    fn start(config: &str) -> Self {
        let exe = require("prometheus");
        let dir = tempfile::Builder::new().prefix("e2e-prometheus-").tempdir().unwrap();
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        for _attempt in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let mut child = Command::new(&exe)
                .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn prometheus");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
                    if log.contains("address already in use") {
                        break; // another port
                    }
                    panic!("prometheus exited ({status}):\n{log}");
                }
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    let (status, _) = http_request(addr, "GET", "/-/ready", None, None);
                    if status == 200 {
                        return Self { child, addr, dir };
                    }
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "prometheus not ready within 30s:\n{}",
                        std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("prometheus could not bind a free port in 3 attempts");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn get(&self, path: &str) -> (u16, Value) {
        http_request(self.addr, "GET", path, None, None)
    }

    /// `/api/v1/query` at `time`; `Err(message)` unless `status: success`.
    fn query(&self, expr: &str, time: f64) -> Result<Value, String> {
        let (code, v) = self.get(&format!("/api/v1/query?query={}&time={time:.3}", enc(expr)));
        if code == 200 && v["status"] == "success" { Ok(v["data"].clone()) } else { Err(format!("HTTP {code}: {v}")) }
    }

    /// `/api/v1/query_range`; `Err(message)` unless `status: success`.
    fn query_range(&self, expr: &str, start: f64, end: f64, step: f64) -> Result<Value, String> {
        let (code, v) =
            self.get(&format!("/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={step}", enc(expr)));
        if code == 200 && v["status"] == "success" { Ok(v["data"].clone()) } else { Err(format!("HTTP {code}: {v}")) }
    }

    /// Polls `expr` until it returns a series, or the deadline.
    fn wait_for(&self, expr: &str, deadline: Instant) -> Value {
        loop {
            if let Ok(d) = self.query(expr, now_secs())
                && d["result"].as_array().is_some_and(|r| !r.is_empty())
            {
                return d;
            }
            assert!(Instant::now() < deadline, "Prometheus never returned data for {expr}\nlog:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The finite sample values of a matrix (or vector) result.
fn values(data: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    for series in data["result"].as_array().into_iter().flatten() {
        let samples: Vec<&Value> = match series.get("values").and_then(Value::as_array) {
            Some(vs) => vs.iter().collect(),
            None => series.get("value").into_iter().collect(),
        };
        for s in samples {
            if let Some(v) = s[1].as_str().and_then(|v| v.parse::<f64>().ok())
                && v.is_finite()
            {
                out.push(v);
            }
        }
    }
    out
}

/// The scrape configuration for the test: the shipped `ofd-gateway` job of
/// `grafana/prometheus/prometheus.yml` with its targets replaced by `target`, 1 s
/// intervals, and the shipped rule files by absolute path.
fn test_config(target: SocketAddr) -> String {
    let shipped: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(root().join("grafana/prometheus/prometheus.yml")).unwrap())
            .unwrap();
    let mut job = shipped["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|j| j["job_name"].as_str() == Some("ofd-gateway"))
        .expect("the shipped config has the ofd-gateway job")
        .clone();
    job["static_configs"] =
        serde_norway::from_str(&format!("[{{targets: ['{target}'], labels: {{dc: test}}}}]")).unwrap();
    job["scrape_interval"] = "1s".into();
    job["scrape_timeout"] = "1s".into();
    let rules: Vec<String> = std::fs::read_dir(root().join("grafana/prometheus/rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .map(|p| p.canonicalize().unwrap().display().to_string())
        .collect();
    let mut cfg = serde_norway::Mapping::new();
    cfg.insert(
        "global".into(),
        serde_norway::from_str("{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}").unwrap(),
    );
    cfg.insert("rule_files".into(), rules.into_iter().map(serde_norway::Value::from).collect());
    cfg.insert("scrape_configs".into(), serde_norway::Value::Sequence(vec![job]));
    serde_norway::to_string(&cfg).unwrap()
}

// ---------------------------------------------------------------- helpers

/// A binary of the gateway package other than `gateway` (e.g. `fns-receiver`): next to the
/// test executable, built with `cargo build -p gateway --bin NAME` when missing.
fn gateway_package_bin(name: &str) -> PathBuf {
    let gw = bin("gateway");
    let path = gw.with_file_name(name);
    if !path.exists() {
        let release = gw.parent().and_then(Path::file_name).is_some_and(|p| p == "release");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-p", "gateway", "--bin", name]);
        if release {
            cmd.arg("--release");
        }
        assert!(cmd.status().expect("cargo build").success(), "cargo build -p gateway --bin {name}");
    }
    path
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the local FNS receiver on a free port; returns it and its address.
fn fns_receiver(dir: &Path) -> (KillOnDrop, SocketAddr) {
    let addr_file = dir.join("fns-receiver.addr");
    let child = Command::new(gateway_package_bin("fns-receiver"))
        .args(["--listen", "127.0.0.1:0", "--fail-ratio", "0.2", "--addr-file"])
        .arg(&addr_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fns-receiver");
    let child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(a) = std::fs::read_to_string(&addr_file).ok().and_then(|t| t.trim().parse().ok()) {
            return (child, a);
        }
        assert!(Instant::now() < deadline, "fns-receiver did not write its address");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One loadgen run in the background; its output goes to a file.
struct Load {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

fn loadgen(name: &'static str, dir: &Path, args: &[String]) -> Load {
    let log = dir.join(format!("loadgen-{name}.log"));
    let child = Command::new(bin("loadgen"))
        .arg("run")
        .args(args)
        .args(["--no-progress", "--threads", "1"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .spawn()
        .expect("spawn loadgen");
    Load { name, child, log }
}

impl Load {
    /// Waits (bounded) and returns the exit code with the output for messages.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = format!(
            "loadgen {} (exit {:?}):\n{}{}",
            self.name,
            status.code(),
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default()
        );
        (status.code(), out)
    }
}

// ---------------------------------------------------------------- the test

#[test]
fn every_dashboard_and_rule_query_runs_against_a_real_gateway_under_load() {
    let t0 = Instant::now();
    require("prometheus");
    let work = tempfile::Builder::new().prefix("e2e-observability-").tempdir().unwrap();

    // 1. FNS receiver and gateway
    let (_receiver, fns_addr) = fns_receiver(work.path());
    let config = format!(
        r#"
[fns]
url = "http://{fns_addr}/documents"
poll_interval = "200ms"
retry_initial = "200ms"
retry_max = "1s"
backlog_interval = "1s"

[alerts]
interval = "1s"
notify_interval = "200ms"
webhook_retry_initial = "200ms"
webhook_retry_max = "1s"
"#
    );
    let mut gw = GatewayProcess::start(GatewayOpts::default().config(&config));
    let addrs = gw.addrs();
    let metrics = addrs.metrics.expect("metrics listener");
    let instance = metrics.to_string();
    let admin = gw.admin_url();
    let data_dir = gw.data_dir().display().to_string();

    // a register alert rule that fires for every onboarded register (loadgen onboards with
    // a paid period of one year), with its webhook on the FNS receiver
    let out = gw.adminctl(&[
        "alerts",
        "rules",
        "add",
        "paid-period-soon",
        "--paid-period-ending",
        "400",
        "--severity",
        "warning",
        "--webhook",
        &format!("http://{fns_addr}/alerts"),
    ]);
    e2e::assert_exit(&out, 0);

    // 2. Prometheus with the shipped job and rules
    let prom = Prometheus::start(&test_config(metrics));
    let deadline = Instant::now() + Duration::from_secs(30);
    prom.wait_for(r#"up{job="ofd-gateway"} == 1"#, deadline);

    // 3. traffic: four loadgen runs at once
    let load_start = now_secs();
    let common = |transport: &str, target: SocketAddr, first: u32, count: u32, rate: u32, secs: u32| -> Vec<String> {
        [
            "--transport",
            transport,
            "--target",
            &target.to_string(),
            "--first-register",
            &first.to_string(),
            "--count",
            &count.to_string(),
            "--rate",
            &rate.to_string(),
            "--duration",
            &format!("{secs}s"),
            "--gateway-data-dir",
            &data_dir,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let onboard = |mut v: Vec<String>| -> Vec<String> {
        v.extend(["--onboard".into(), "--admin".into(), admin.clone()]);
        v
    };
    let mut tcp = onboard(common("tcp", gw.tcp(), 0, 40, 300, 6));
    tcp.extend(["--duplicates", "0.05", "--malformed", "0.05"].map(String::from));
    let mut tls = onboard(common("tls", addrs.tls.expect("tls"), 1000, 10, 40, 6));
    tls.extend(["--behaviour", "per-document"].map(String::from));
    let quic = onboard(common("quic", addrs.quic.expect("quic"), 2000, 10, 60, 6));
    // registers nobody onboarded: every document refused (no ack, connection closed)
    let mut unknown = common("tcp", gw.tcp(), 9000, 5, 40, 4);
    unknown.extend(["--behaviour", "per-document", "--max-resends", "0", "--timeout", "2s"].map(String::from));
    // admin API traffic during the run (the admin panels show rates, not just a series)
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        let admin_addr = addrs.admin.expect("admin listener");
        let token = gw.dev_token().expect("development admin token");
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (status, body) = http_request(admin_addr, "GET", "/v1/registers?limit=5", Some(&token), None);
                assert_eq!(status, 200, "GET /v1/registers: {body}");
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let runs = vec![
        loadgen("tcp", work.path(), &tcp),
        loadgen("tls", work.path(), &tls),
        loadgen("quic", work.path(), &quic),
        loadgen("unknown", work.path(), &unknown),
    ];
    let mut reports = Vec::new();
    for r in runs {
        let name = r.name;
        let (code, out) = r.finish();
        if name == "unknown" {
            assert!(code != Some(2) && out.contains("refusals"), "the unknown-FN run did not run:\n{out}");
        } else {
            assert_eq!(code, Some(0), "{out}");
        }
        reports.push(out);
    }
    // a second, later onboarding: its alert transitions and webhooks come after Prometheus
    // has seen those counters, so their rates are visible (the first increments of a new
    // series are not)
    let (code, out) = loadgen("late", work.path(), &onboard(common("tcp", gw.tcp(), 3000, 3, 10, 1))).finish();
    assert_eq!(code, Some(0), "{out}");
    reports.push(out);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    poller.join().expect("admin poller");
    let load_end = now_secs();

    // wait until Prometheus scraped the end of the run and FNS deliveries happened
    let deadline = Instant::now() + Duration::from_secs(30);
    prom.wait_for(&format!(r#"timestamp(up{{job="ofd-gateway"}}) > {}"#, load_end + 2.0), deadline);
    prom.wait_for(r#"ofd_gateway_fns_deliveries_total{job="ofd-gateway",result="delivered"} > 0"#, deadline);

    // 4a. every panel expression runs
    let exprs = panel_exprs();
    assert!(exprs.len() > 60, "only {} panel expressions found", exprs.len());
    let mut errors = Vec::new();
    for e in &exprs {
        let q = substitute(&e.expr, &instance);
        if let Err(msg) = prom.query(&q, now_secs()) {
            errors.push(format!("{} / {}: {q}\n  {msg}", e.dashboard, e.panel));
        }
    }
    assert!(errors.is_empty(), "panel queries failed:\n{}", errors.join("\n"));

    // 4b. traffic panels have data over the run (retried: FNS and alert panels lag a little)
    let traffic = traffic_panels();
    let mut pending: Vec<(String, String, String)> =
        traffic.iter().flat_map(|(uid, ps)| ps.iter().map(move |(t, n)| (uid.clone(), t.clone(), n.clone()))).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let end = now_secs();
        let mut still = Vec::new();
        for (uid, title, need) in pending {
            // every target of the panel must show it
            let mut ok = true;
            let mut seen = Vec::new();
            for e in exprs.iter().filter(|e| e.dashboard == uid && e.panel == title) {
                let q = substitute(&e.expr, &instance);
                let data = prom.query_range(&q, load_start - 5.0, end, 1.0).unwrap();
                let vs = values(&data);
                let good = match need.as_str() {
                    "nonzero" => vs.iter().any(|v| *v > 0.0),
                    _ => !vs.is_empty(),
                };
                seen.push(format!("{q} -> {} finite samples, max {:?}", vs.len(), vs.iter().cloned().reduce(f64::max)));
                ok &= good;
            }
            if !ok {
                still.push((uid, title, need, seen));
            }
        }
        if still.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let msg: Vec<String> =
                still.iter().map(|(u, t, n, seen)| format!("{u} / {t} ({n}):\n    {}", seen.join("\n    "))).collect();
            panic!(
                "traffic panels without the data they must show:\n{}\n\nloadgen:\n{}",
                msg.join("\n"),
                reports.join("\n")
            );
        }
        pending = still.into_iter().map(|(u, t, n, _)| (u, t, n)).collect();
        std::thread::sleep(Duration::from_secs(1));
    }

    // 4c. the template-variable queries find this gateway
    let (_, v) = prom.get(&format!("/api/v1/label/job/values?match[]={}", enc("ofd_gateway_build_info")));
    assert!(v["data"].as_array().unwrap().iter().any(|j| j == "ofd-gateway"), "label_values(job): {v}");
    let (_, v) = prom.get(&format!(
        "/api/v1/label/instance/values?match[]={}",
        enc(r#"ofd_gateway_build_info{job=~"ofd-gateway"}"#)
    ));
    assert!(v["data"].as_array().unwrap().iter().any(|i| i == instance.as_str()), "label_values(instance): {v}");

    // 5a. every rule expression runs, and Prometheus evaluated every rule without error
    let mut n_rules = 0;
    for f in std::fs::read_dir(root().join("grafana/prometheus/rules")).unwrap() {
        let doc: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(f.unwrap().path()).unwrap()).unwrap();
        for g in doc["groups"].as_sequence().unwrap() {
            for r in g["rules"].as_sequence().unwrap() {
                let expr = r["expr"].as_str().unwrap();
                n_rules += 1;
                if let Err(msg) = prom.query(expr, now_secs()) {
                    errors.push(format!("rule {:?}: {expr}\n  {msg}", r["alert"]));
                }
            }
        }
    }
    assert!(errors.is_empty(), "rule queries failed:\n{}", errors.join("\n"));
    let (_, v) = prom.get("/api/v1/rules");
    let loaded: Vec<&Value> =
        v["data"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    assert_eq!(loaded.len(), n_rules, "Prometheus loaded every rule: {v}");
    for r in &loaded {
        assert_eq!(r["health"], "ok", "rule {} evaluated with an error: {}", r["name"], r["lastError"]);
    }

    // 5b. the rejection-ratio alert sees the injected rejections (malformed + unknown FNs)
    prom.wait_for(
        r#"ALERTS{alertname="OfdGatewayRejectionRatioHigh",alertstate="pending"}"#,
        Instant::now() + Duration::from_secs(15),
    );

    // 6. everything the gateway exports is in the catalogue, with the catalogue's type
    let (_, text) = http_request(metrics, "GET", "/metrics", None, None);
    let text = text.as_str().expect("Prometheus text").to_owned();
    let mut families = 0;
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut it = line["# TYPE ".len()..].split_whitespace();
        let (name, kind) = (it.next().unwrap(), it.next().unwrap());
        families += 1;
        let def = gateway::metrics::CATALOGUE
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("the gateway exports {name}, which is not in the catalogue"));
        assert_eq!(def.kind.as_str(), kind, "{name}: exported as {kind}, catalogued as {}", def.kind.as_str());
    }
    assert!(families > 30, "only {families} metric families exported:\n{text}");

    // 5c. kill -9: the node-down alerts go pending
    gw.kill_9();
    let deadline = Instant::now() + Duration::from_secs(15);
    prom.wait_for(r#"ALERTS{alertname="OfdGatewayDown",alertstate="pending"}"#, deadline);
    prom.wait_for(r#"ALERTS{alertname="OfdGatewayNoneServing",alertstate="pending"}"#, deadline);

    eprintln!(
        "observability e2e: {} panel expressions, {} traffic panels, {n_rules} rules, {families} metric families; {:.1}s",
        exprs.len(),
        traffic.values().map(BTreeMap::len).sum::<usize>(),
        t0.elapsed().as_secs_f64()
    );
}
