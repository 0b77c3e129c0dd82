//! The real gateway binary with its store on a small tmpfs that another "process" (a
//! filler file) fills:
//!
//! * below `storage.min_free_space` (set through `GATEWAY_STORAGE__MIN_FREE_SPACE`) no
//!   document is acknowledged, admin writes are refused, `/readyz` fails with the reason,
//!   `ofd_storage_intake_paused` is 1, the pause is logged once (not once per document),
//!   and the process stays up; removing the filler resumes intake with no restart;
//! * with no watermark the journal write itself meets ENOSPC: nothing is acknowledged
//!   that is not stored, nothing acknowledged is lost (also across a restart), and the
//!   store reopens by itself once space is back — same process;
//! * a gateway restarted into a full disk starts, reports not-ready with the reason, and
//!   becomes ready when space returns.
//!
//! Each test mounts its own tmpfs at `<data_dir>/store` (root only; otherwise it prints
//! `skipped: <why>`), unmounted at the end or after a panic (the gateway is killed first).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use e2e::{GatewayOpts, GatewayProcess, TestRegister, assert_exit, exchange, http_request, unix_now};
use storage::tmpfs::Tmpfs;

const MIB: u64 = 1024 * 1024;

/// A temp data directory with a tmpfs of `size` at `store/`, or `None` (skipped). Declared
/// before the gateway, they are dropped after it: the process is killed, then the tmpfs
/// unmounted, then the directory removed.
fn data_dir_on_tmpfs(size: u64) -> Option<(tempfile::TempDir, Tmpfs)> {
    let dir = tempfile::Builder::new().prefix("e2e-disk-").tempdir().unwrap();
    match Tmpfs::mount(&dir.path().join("store"), size) {
        Ok(fs) => Some((dir, fs)),
        Err(why) => {
            println!("skipped: {why}");
            None
        }
    }
}

fn onboard(gw: &GatewayProcess, r: &TestRegister) {
    let args = r.add_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_exit(&gw.adminctl(&args), 0);
}

/// `GET <path>` on the metrics listener: the status and the body as text.
fn metrics_get(gw: &GatewayProcess, path: &str) -> (u16, String) {
    let (status, body) = http_request(gw.addrs().metrics.unwrap(), "GET", path, None, None);
    (status, body.as_str().map_or_else(|| body.to_string(), str::to_owned))
}

fn readyz(gw: &GatewayProcess) -> (u16, String) {
    metrics_get(gw, "/readyz?verbose")
}

fn scrape(gw: &GatewayProcess) -> String {
    metrics_get(gw, "/metrics").1
}

/// The value of a metric without labels.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in the scrape"))
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_nearly_full_disk_pauses_intake_and_resuming_needs_no_restart() {
    let Some((dir, fs)) = data_dir_on_tmpfs(48 * MIB) else { return };
    let mut gw =
        GatewayProcess::start_in(dir.path(), GatewayOpts::default().env("GATEWAY_STORAGE__MIN_FREE_SPACE", "16MiB"));
    let pid = gw.addrs().pid;
    let reg = TestRegister::new(7101);
    onboard(&gw, &reg);
    let t = unix_now();
    assert!(exchange(gw.tcp(), &reg.receipt(1, t)).is_some(), "acknowledged with room on the disk");
    assert_eq!(readyz(&gw).0, 200);

    let free = fs.fill_to(8 * MIB).unwrap();
    assert!(free < 16 * MIB);
    wait_until("/readyz fails", Duration::from_secs(5), || readyz(&gw).0 == 503);
    let (_, body) = readyz(&gw);
    assert!(body.contains("[-]storage") && body.contains("disk space") && body.contains("min_free_space"), "{body}");
    let m = scrape(&gw);
    assert_eq!(metric(&m, "ofd_storage_intake_paused"), 1.0);
    assert!(metric(&m, "ofd_storage_free_bytes") < (16 * MIB) as f64);
    assert_eq!(metric(&m, "ofd_storage_min_free_bytes"), (16 * MIB) as f64);
    assert_eq!(metric(&m, "ofd_gateway_ready"), 0.0);

    // no acknowledgment for new documents, nor for a retransmission, however many come
    for fd in 2..=30 {
        assert!(exchange(gw.tcp(), &reg.receipt(fd, t)).is_none(), "FD {fd} acknowledged below the mark");
    }
    assert!(exchange(gw.tcp(), &reg.receipt(1, t)).is_none());
    // admin writes are refused with the reason
    let other = TestRegister::new(7102);
    let args = other.add_args();
    let out = gw.adminctl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(out.status.code(), Some(0), "admin write below the mark");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("disk space"), "{text}");
    let m = scrape(&gw);
    assert!(
        m.lines()
            .any(|l| l.starts_with("ofd_storage_appends_refused_total{reason=\"disk_space\"}") && !l.ends_with(" 0")),
        "refusals counted"
    );
    assert!(gw.is_running(), "the process stays up");

    fs.unfill().unwrap();
    wait_until("/readyz passes again", Duration::from_secs(5), || readyz(&gw).0 == 200);
    assert_eq!(metric(&scrape(&gw), "ofd_storage_intake_paused"), 0.0);
    assert!(exchange(gw.tcp(), &reg.receipt(2, t)).is_some(), "intake resumed");
    assert_exit(&gw.adminctl(&args.iter().map(String::as_str).collect::<Vec<_>>()), 0);
    assert!(gw.is_running());
    assert_eq!(gw.addrs().pid, pid, "same process, no restart");

    // one line per change of state, not one per refused document
    let log = gw.stderr_log();
    assert_eq!(count(&log, "intake paused"), 1, "{log}");
    assert_eq!(count(&log, "intake resumed"), 1, "{log}");
    let per_document = count(&log, "not acknowledged");
    assert!(per_document <= 2, "{per_document} per-document storage lines for 30 refusals:\n{log}");
}

/// What happened to one document sent while the disk filled.
struct Sent {
    msg: Bytes,
    ack: Option<Bytes>,
}

#[test]
fn enospc_past_the_watermark_acknowledges_nothing_unstored_and_loses_nothing() {
    let Some((dir, fs)) = data_dir_on_tmpfs(32 * MIB) else { return };
    let mut gw =
        GatewayProcess::start_in(dir.path(), GatewayOpts::default().env("GATEWAY_STORAGE__MIN_FREE_SPACE", "0"));
    let pid = gw.addrs().pid;
    let regs: Vec<TestRegister> = (7201..=7204).map(TestRegister::new).collect();
    for r in &regs {
        onboard(&gw, r);
    }
    let t = unix_now();
    // four registers send while the disk fills, each until it met three refusals
    let addr = gw.tcp();
    let senders: Vec<_> = regs
        .iter()
        .cloned()
        .map(|r| {
            std::thread::spawn(move || {
                let mut sent = BTreeMap::new();
                let mut refused = 0;
                for fd in 1..=20_000u32 {
                    let msg = r.receipt(fd, t);
                    let ack = exchange(addr, &msg);
                    refused += usize::from(ack.is_none());
                    sent.insert(fd, Sent { msg, ack });
                    if refused == 3 {
                        break;
                    }
                }
                (r, sent)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    fs.fill_up().unwrap();
    let sent: Vec<(TestRegister, BTreeMap<u32, Sent>)> = senders.into_iter().map(|h| h.join().unwrap()).collect();
    let acked: usize = sent.iter().map(|(_, s)| s.values().filter(|d| d.ack.is_some()).count()).sum();
    println!("{acked} documents acknowledged before the disk was full");

    let (status, body) = readyz(&gw);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("disk full"), "{body}");
    let m = scrape(&gw);
    assert_eq!(metric(&m, "ofd_storage_poisoned"), 0.0, "a refused journal write does not poison");
    assert_eq!(metric(&m, "ofd_storage_intake_paused"), 1.0);
    assert!(gw.is_running());

    fs.unfill().unwrap();
    wait_until("the store reopens by itself", Duration::from_secs(10), || readyz(&gw).0 == 200);
    assert!(gw.is_running());
    assert_eq!(gw.addrs().pid, pid, "recovered without a restart");
    let log = gw.stderr_log();
    assert_eq!(count(&log, "out of disk space"), 1, "{log}");
    assert_eq!(count(&log, "reopened after a full disk"), 1, "{log}");

    // every document, retransmitted: an acknowledged one gets its first ack again, byte
    // for byte (stored, not lost); a refused one gets an ack now, and the same one after
    // a restart
    let mut answers = Vec::new();
    for (_, docs) in &sent {
        for d in docs.values() {
            let again = exchange(gw.tcp(), &d.msg).expect("answered after recovery");
            if let Some(first) = &d.ack {
                assert_eq!(&again, first, "an acknowledged document kept its acknowledgment");
            }
            answers.push((d.msg.clone(), again));
        }
    }
    gw.restart();
    wait_until("ready after the restart", Duration::from_secs(10), || readyz(&gw).0 == 200);
    for (msg, ack) in &answers {
        assert_eq!(exchange(gw.tcp(), msg).as_ref(), Some(ack), "the same answer after a restart");
    }
    // and each is stored once, with that acknowledgment
    let token = gw.dev_token().unwrap();
    for (r, docs) in &sent {
        for (fd, d) in docs {
            let (status, v) = gw.http("GET", &format!("/v1/documents/{}/{fd}", r.fn_number), Some(&token), None);
            assert_eq!(status, 200, "{}/{fd}: {v}", r.fn_number);
            let ack = answers.iter().find(|(m, _)| m == &d.msg).map(|(_, a)| a).unwrap();
            assert_eq!(v["ack_hex"].as_str(), Some(hex_of(&ack[30..]).as_str()), "{}/{fd}", r.fn_number);
        }
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_restart_into_a_full_disk_waits_not_ready_then_serves() {
    let Some((dir, fs)) = data_dir_on_tmpfs(48 * MIB) else { return };
    let data = dir.path();
    let mut gw = GatewayProcess::start_in(data, GatewayOpts::default().env("GATEWAY_STORAGE__MIN_FREE_SPACE", "16MiB"));
    let reg = TestRegister::new(7301);
    onboard(&gw, &reg);
    let t = unix_now();
    let first = exchange(gw.tcp(), &reg.receipt(1, t)).expect("acknowledged");
    assert!(gw.terminate(), "clean stop");

    fs.fill_up().unwrap();
    gw.restart(); // waits for the addresses file: the process started
    assert!(data.join("gateway.addrs.json").exists());
    let (status, body) = readyz(&gw);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("disk space"), "{body}");
    assert!(exchange(gw.tcp(), &reg.receipt(2, t)).is_none(), "nothing acknowledged on a full disk");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(gw.is_running(), "waits instead of exiting");
    assert!(gw.stderr_log().contains("not ready"), "says so at start");

    fs.unfill().unwrap();
    wait_until("ready once space returns", Duration::from_secs(5), || readyz(&gw).0 == 200);
    assert_eq!(exchange(gw.tcp(), &reg.receipt(1, t)), Some(first), "stored before the restart");
    assert!(exchange(gw.tcp(), &reg.receipt(2, t)).is_some());
}
