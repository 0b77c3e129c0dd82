//! Alerts to a real Prometheus Alertmanager (Debian's `prometheus-alertmanager`, started
//! on free loopback ports with a webhook receiver of its own — the real `fns-receiver`):
//! a paid-period rule fires for two registers of one owner, the alerts arrive at
//! `/api/v2/alerts` with the routing labels (rule, severity, tariff, owner_inn), are
//! grouped by rule into one notification, and resolve — in Alertmanager and with a
//! "resolved" notification — when the condition clears (the paid period is renewed).
//!
//! Alertmanager is installed by `scripts/test.sh`; without it the test FAILS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fns_support;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{GatewayProcess, TestRegister, assert_exit, http_request, stderr};
use fns_support::{Receiver, opts, wait_for};
use serde_json::Value;

fn require(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{tool} is not installed: scripts/test.sh installs it (Debian package prometheus-alertmanager)")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An Alertmanager on a free port (killed on drop).
struct Alertmanager {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start(webhook: &str) -> Self {
        let exe = require("prometheus-alertmanager");
        let dir = tempfile::Builder::new().prefix("e2e-alertmanager-").tempdir().unwrap();
        let config = format!(
            "route:\n  receiver: hook\n  group_by: ['rule']\n  group_wait: 200ms\n  group_interval: 500ms\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{webhook}'\n        send_resolved: true\n"
        );
        std::fs::write(dir.path().join("alertmanager.yml"), config).unwrap();
        for _attempt in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
            let mut child = Command::new(&exe)
                .arg(format!("--config.file={}", dir.path().join("alertmanager.yml").display()))
                .arg(format!("--storage.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn alertmanager");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(dir.path().join("alertmanager.log")).unwrap_or_default();
                    if log.contains("address already in use") {
                        break;
                    }
                    panic!("alertmanager exited ({status}):\n{log}");
                }
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                    && http_request(addr, "GET", "/-/ready", None, None).0 == 200
                {
                    return Self { child, addr, dir };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("alertmanager not ready within 20s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("alertmanager could not bind a free port in 3 attempts");
    }

    fn get(&self, path: &str) -> Value {
        let (status, v) = http_request(self.addr, "GET", path, None, None);
        assert_eq!(status, 200, "GET {path}: {v}\n{}", self.log());
        v
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rfc3339_in_days(days: u64) -> String {
    let t = std::time::SystemTime::now() + Duration::from_secs(days * 86_400);
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    fns_support::rfc3339(u32::try_from(secs).unwrap())
}

#[test]
fn alerts_arrive_group_and_resolve_in_a_real_alertmanager() {
    let hook = Receiver::start(&[]);
    let am = Alertmanager::start(&hook.alerts_url());
    let gw = GatewayProcess::start(
        opts(None)
            .env("GATEWAY_ALERTS__ALERTMANAGER_URL", &format!("http://{}", am.addr))
            .env("GATEWAY_ALERTS__ALERTMANAGER_INTERVAL", "300ms"),
    );
    // two registers of one owner on a plan whose paid period ends in 10 days
    assert_exit(&gw.adminctl(&["tariffs", "create", "basic", "--period-days", "365", "--price", "100"]), 0);
    let regs = [TestRegister::new(8_800), TestRegister::new(8_801)];
    assert_eq!(regs[0].inn, regs[1].inn);
    let paid = rfc3339_in_days(10);
    for r in &regs {
        let mut args = r.add_args();
        args.extend(["--tariff".into(), "basic".into(), "--paid-until".into(), paid.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_exit(&gw.adminctl(&args), 0);
    }
    let out =
        gw.adminctl(&["alerts", "rules", "add", "paid-ending", "--paid-period-ending", "30", "--severity", "critical"]);
    assert_exit(&out, 0);

    // both arrive, with the routing labels
    let alerts = wait_for(Duration::from_secs(20), "two alerts in Alertmanager", || {
        let v = am.get("/api/v2/alerts?active=true");
        (v.as_array().map_or(0, Vec::len) == 2).then_some(v)
    });
    let owner = regs[0].inn.to_string();
    for a in alerts.as_array().unwrap() {
        let l = &a["labels"];
        assert_eq!((l["rule"].as_str(), l["alertname"].as_str()), (Some("paid-ending"), Some("paid-ending")), "{a}");
        assert_eq!(l["severity"], "critical", "{a}");
        assert_eq!(l["tariff"], "basic", "{a}");
        assert_eq!(l["owner_inn"], owner.as_str(), "{a}");
        assert!(regs.iter().any(|r| l["rnm"] == r.rnm.as_str()), "{a}");
        assert!(a["annotations"]["summary"].as_str().unwrap().contains("paid period ends within 30 days"), "{a}");
        assert_eq!(a["status"]["state"], "active", "{a}");
    }
    // grouped by rule: one group of two, one notification carrying both
    let groups = am.get("/api/v2/alerts/groups");
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["labels"]["rule"], "paid-ending");
    assert_eq!(groups[0]["alerts"].as_array().unwrap().len(), 2);
    let firing = wait_for(Duration::from_secs(20), "a firing notification from Alertmanager", || {
        let v = hook.get("/alerts");
        v["alerts"].as_array().unwrap().iter().find(|n| n["status"] == "firing" && n["receiver"] == "hook").cloned()
    });
    assert_eq!(firing["groupLabels"]["rule"], "paid-ending", "{firing}");
    assert_eq!(firing["alerts"].as_array().unwrap().len(), 2, "{firing}");

    // the condition clears (the period is renewed): resolved in Alertmanager, and notified
    let out = gw.adminctl(&["tariffs", "renew", "--owner-inn", &owner, "--yes"]);
    assert_exit(&out, 0);
    wait_for(Duration::from_secs(20), "the alerts resolved in Alertmanager", || {
        let v = am.get("/api/v2/alerts?active=true");
        v.as_array().unwrap().is_empty().then_some(())
    });
    let resolved = wait_for(Duration::from_secs(20), "a resolved notification from Alertmanager", || {
        let v = hook.get("/alerts");
        v["alerts"].as_array().unwrap().iter().find(|n| n["status"] == "resolved").cloned()
    });
    assert_eq!(resolved["alerts"].as_array().unwrap().len(), 2, "{resolved}");
    assert!(resolved["alerts"].as_array().unwrap().iter().all(|a| a["status"] == "resolved"), "{resolved}");
    assert!(!gw.stderr_log().contains("pushing alerts to Alertmanager"), "{}", gw.stderr_log());

    // a bad URL is refused by --check-config, naming the field
    let out = Command::new(e2e::bin("gateway"))
        .arg("--check-config")
        .env("GATEWAY_ALERTS__ALERTMANAGER_URL", "ftp://x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("alerts.alertmanager_url"), "{}", stderr(&out));
}
