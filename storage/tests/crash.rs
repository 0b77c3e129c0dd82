//! Crash test: a child process appends documents durably and prints each one only after
//! the store said `Durable`; we SIGKILL it at random moments (≥ 20 times), restart it on
//! the same directory, and after every kill check, with the store opened here:
//!
//! * every printed document is stored with the same raw bytes and the same ack (0 lost);
//! * no document is stored twice (the FN listing and the register index agree, one entry
//!   per key) and the child never saw a conflicting duplicate of its own bytes;
//! * the outbox holds exactly one entry per stored (undelivered) document, and the
//!   backlog counter agrees;
//! * the report aggregates (totals by bucket, FD continuity), rebuilt by the reopened
//!   store from what the crash left, equal a recomputation from the stored documents:
//!   nothing counted twice, nothing left out.
//!
//! Negative controls prove the harness can fail: a child that prints before it appends,
//! and one that commits without persisting (fjall's `durability(None)` trap) — both must
//! be caught losing documents.
//!
//! What this cannot show: a power loss or kernel crash (`kill -9` leaves the page cache
//! to the OS, which still writes it out). That needs LazyFS or dm-log-writes; see
//! docs/storage-embedded.md.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ffd::FnNumber;
use rand::Rng;
use sha2::{Digest, Sha256};
use storage::embedded::{EmbeddedOptions, EmbeddedStore};
use storage::model::{Bucket, DELIVERY_PARTITIONS, DocumentKey, Recomputed};
use storage::{DeliveryStore, DocumentStore, PageRequest, ReportStore, Rnm, Store, Timestamp};

const CHILD: &str = env!("CARGO_BIN_EXE_storage-crash-child");

/// What the child printed: (FN, FD) → (sha of raw, sha of ack).
type Acked = BTreeMap<(String, u32), (String, String)>;

#[derive(Debug, Default)]
struct Verdict {
    lost: Vec<String>,
    dup: Vec<String>,
    outbox: Vec<String>,
    reports: Vec<String>,
    stored: usize,
}

impl Verdict {
    fn clean(&self) -> bool {
        self.lost.is_empty() && self.dup.is_empty() && self.outbox.is_empty() && self.reports.is_empty()
    }
}

struct Run {
    child: Child,
    reader: std::thread::JoinHandle<Vec<String>>,
    ready: std::sync::mpsc::Receiver<()>,
}

fn spawn(dir: &Path, mode: &str, run: u32, start_fd: u32) -> Run {
    let mut child = Command::new(CHILD)
        .arg(dir)
        .arg(mode)
        .arg(run.to_string())
        .arg(start_fd.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn crash child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, ready) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut r = BufReader::new(stdout);
        let mut buf = String::new();
        loop {
            buf.clear();
            match r.read_line(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    // A line cut by the kill has no newline: it was never fully "said".
                    if !buf.ends_with('\n') {
                        break;
                    }
                    let l = buf.trim_end().to_owned();
                    if l == "ready" {
                        let _ = tx.send(());
                    } else {
                        lines.push(l);
                    }
                }
            }
        }
        lines
    });
    Run { child, reader, ready }
}

/// Kills the child with SIGKILL after `delay` (counted from spawn, or from "ready" when
/// `after_ready`), and returns what it printed.
fn kill_after(mut run: Run, delay: Duration, after_ready: bool) -> Vec<String> {
    if after_ready {
        // If the child dies or hangs before being ready, the kill below still happens.
        let _ = run.ready.recv_timeout(Duration::from_secs(20));
    }
    std::thread::sleep(delay);
    // Child::kill sends SIGKILL on Unix: no destructor, no flush, no journal persist.
    run.child.kill().expect("SIGKILL the child");
    let status = run.child.wait().expect("reap child");
    assert!(!status.success(), "the child was killed, not exited: {status:?}");
    run.reader.join().expect("reader thread")
}

/// Adds the child's lines to `acked`; returns acks that changed for an already acked
/// document (a retransmission must get the first ack back, byte for byte).
fn record(lines: &[String], acked: &mut Acked, conflicts: &mut Vec<String>) -> Vec<String> {
    let mut changed = Vec::new();
    for l in lines {
        let parts: Vec<&str> = l.split(' ').collect();
        match parts.as_slice() {
            ["ok", f, fd, raw, ack] => {
                let fd: u32 = fd.parse().expect("FD printed by the child");
                let entry = ((*f).to_owned(), fd);
                let value = ((*raw).to_owned(), (*ack).to_owned());
                match acked.get(&entry) {
                    Some(prev) if *prev != value => {
                        changed.push(format!("{}/{}: ack changed", entry.0, entry.1));
                    }
                    Some(_) => {}
                    None => {
                        acked.insert(entry, value);
                    }
                }
            }
            ["conflict", f, fd] => conflicts.push(format!("{f}/{fd}")),
            _ => panic!("unexpected child output {l:?}"),
        }
    }
    changed
}

fn fn_of(s: &str) -> FnNumber {
    FnNumber::parse_strict(s).expect("FN printed by the child")
}

fn hex_sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Opens the store left by the killed child and checks it against what was acked.
async fn verify(dir: &Path, acked: &Acked) -> Verdict {
    let store = EmbeddedStore::open(dir, EmbeddedOptions::default()).expect("recovery opens");
    let mut v = Verdict::default();
    for ((f, fd), (raw, ack)) in acked {
        let key = DocumentKey { fn_number: fn_of(f), fd: *fd };
        match store.get_document(&key).await.expect("get") {
            None => v.lost.push(format!("{f}/{fd} missing")),
            Some(d) => {
                if &hex_sha(&d.raw) != raw {
                    v.lost.push(format!("{f}/{fd} raw bytes differ"));
                }
                if &hex_sha(&d.ack) != ack {
                    v.lost.push(format!("{f}/{fd} ack differs"));
                }
            }
        }
    }
    // Every stored key, once, by FN (the primary) and by register (the time index).
    let fns: BTreeSet<&String> = acked.keys().map(|(f, _)| f).collect();
    let mut stored: BTreeSet<DocumentKey> = BTreeSet::new();
    let mut recomputed: BTreeMap<FnNumber, Recomputed> = BTreeMap::new();
    for f in &fns {
        let mut req = PageRequest::first(1000);
        loop {
            let page = store.documents_by_fn(&fn_of(f), 0..=u32::MAX, req.clone()).await.expect("by fn");
            for d in &page.items {
                if !stored.insert(d.key()) {
                    v.dup.push(format!("{}/{} listed twice by FN", d.fn_number, d.fd));
                }
                recomputed.entry(d.fn_number).or_default().fold(d);
            }
            match page.next {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
    }
    let rnm = Rnm::parse("0000000005008570").expect("rnm");
    let mut by_rnm = BTreeSet::new();
    let mut req = PageRequest::first(1000);
    loop {
        let page = store
            .documents_by_register(&rnm, Timestamp(0), Timestamp(i64::MAX), req.clone())
            .await
            .expect("by register");
        for d in &page.items {
            if !by_rnm.insert(d.key()) {
                v.dup.push(format!("{}/{} indexed twice", d.fn_number, d.fd));
            }
        }
        match page.next {
            Some(c) => req.cursor = Some(c),
            None => break,
        }
    }
    if by_rnm != stored {
        v.dup.push(format!("register index has {} documents, FN listing {}", by_rnm.len(), stored.len()));
    }
    // The outbox: exactly one due entry per stored document (none were delivered).
    let mut due = BTreeMap::new();
    for p in 0..DELIVERY_PARTITIONS {
        let batch = store.due_deliveries(p, Timestamp(i64::MAX), 10_000).await.expect("due");
        // `due_deliveries` has no cursor: the child is paced so that one call sees a
        // whole partition.
        assert!(batch.len() < 10_000, "test assumes < 10k pending per partition");
        for d in &batch {
            *due.entry(d.key).or_insert(0u32) += 1;
        }
    }
    for (k, n) in &due {
        if *n != 1 {
            v.outbox.push(format!("{}/{} due {n} times", k.fn_number, k.fd));
        }
        if !stored.contains(k) {
            v.outbox.push(format!("{}/{} due but not stored", k.fn_number, k.fd));
        }
    }
    for k in &stored {
        if !due.contains_key(k) {
            v.outbox.push(format!("{}/{} stored but not queued", k.fn_number, k.fd));
        }
    }
    let backlog = store.backlog().await.expect("backlog");
    if backlog.pending != stored.len() as u64 {
        v.outbox.push(format!("backlog counter {} != {} stored", backlog.pending, stored.len()));
    }
    // The report aggregates, rebuilt by this open from what the crash left.
    store.settle().await.expect("settle");
    for (f, want) in &recomputed {
        let days = want.buckets.keys().map(|b| match b {
            Bucket::Day(d) => *d,
            Bucket::UtcHour(h) => i32::try_from(h.div_euclid(24)).expect("a day number"),
        });
        let (lo, hi) = (days.clone().min().unwrap_or(0), days.max().unwrap_or(0));
        let got: BTreeMap<Bucket, _> = store
            .report_totals(&[*f], lo..=hi)
            .await
            .expect("report totals")
            .into_iter()
            .map(|b| (b.bucket, b.totals))
            .collect();
        if got != want.buckets {
            v.reports.push(format!("{f}: totals {got:?} != recomputed {:?}", want.buckets));
        }
        let cont = store.continuity(&[*f]).await.expect("continuity");
        let shape = |c: &storage::model::Continuity| (c.low, c.high, c.received, c.missing());
        match cont.first() {
            Some(c) if shape(&c.continuity) == shape(&want.continuity) => {}
            other => v.reports.push(format!("{f}: continuity {other:?} != recomputed {:?}", want.continuity)),
        }
    }
    v.stored = stored.len();
    store.close().await.expect("close");
    v
}

/// Runs `kills` kill/restart cycles in `mode`; returns the verdicts and what was acked.
async fn crash_loop(mode: &str, kills: u32, seed: u64) -> (Vec<Verdict>, Acked, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng: rand::rngs::StdRng = rand::SeedableRng::seed_from_u64(seed);
    let mut acked = Acked::new();
    let mut conflicts = Vec::new();
    let mut verdicts = Vec::new();
    for run in 0..kills {
        // Resend the last few acknowledged FDs (a register that did not get its ack
        // retransmits), then continue with new ones.
        let max_fd = acked.keys().map(|(_, fd)| *fd).max().unwrap_or(0);
        let start_fd = max_fd.saturating_sub(20).max(1);
        let child = spawn(dir.path(), mode, run, start_fd);
        // Mostly mid-append; sometimes during start-up and journal recovery.
        let (delay, after_ready) = if rng.random_bool(0.2) {
            (Duration::from_millis(rng.random_range(0..60)), false)
        } else {
            (Duration::from_millis(rng.random_range(50..700)), true)
        };
        let lines = kill_after(child, delay, after_ready);
        let changed = record(&lines, &mut acked, &mut conflicts);
        let mut v = verify(dir.path(), &acked).await;
        v.lost.extend(changed);
        eprintln!(
            "{mode} run {run}: killed after {delay:?}{}, {} acked lines, {} acked total, {} stored, lost {}, dup {}, outbox {}",
            if after_ready { " (after ready)" } else { "" },
            lines.len(),
            acked.len(),
            v.stored,
            v.lost.len(),
            v.dup.len(),
            v.outbox.len()
        );
        verdicts.push(v);
    }
    (verdicts, acked, conflicts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_document() {
    let started = Instant::now();
    let seed = rand::rng().random();
    eprintln!("crash test seed {seed}");
    let (verdicts, acked, conflicts) = crash_loop("durable", 24, seed).await;
    assert!(conflicts.is_empty(), "conflicting duplicates of identical bytes: {conflicts:?}");
    for (i, v) in verdicts.iter().enumerate() {
        assert!(v.clean(), "seed {seed}, after kill {i}: {v:#?}");
    }
    assert!(acked.len() > 200, "the child acknowledged only {} documents: the test exercised too little", acked.len());
    let retransmitted = verdicts.len();
    eprintln!("{retransmitted} kills, {} documents acknowledged, 0 lost, in {:?}", acked.len(), started.elapsed());
}

/// The harness must be able to fail. (1) The verifier reports a fabricated acked
/// document that was never stored. (2) A child that acks before writing is caught.
/// (3) A child whose commits are never persisted (fjall `durability(None)`) is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_controls_are_detected() {
    // (1) Verification itself.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut fake = Acked::new();
    fake.insert(("9999078900000000".to_owned(), 1), (hex_sha(b"x"), hex_sha(b"y")));
    let v = verify(dir.path(), &fake).await;
    assert_eq!(v.lost.len(), 1, "a missing acknowledged document is reported");

    // (2) Ack before the durable write.
    let (verdicts, _, _) = crash_loop("early-ack", 6, 1).await;
    let lost: usize = verdicts.iter().map(|v| v.lost.len()).sum();
    assert!(lost > 0, "acking before the write must be caught losing documents");

    // (3) Commit without persisting.
    let (verdicts, _, _) = crash_loop("no-persist", 8, 2).await;
    let lost: usize = verdicts.iter().map(|v| v.lost.len()).sum();
    eprintln!("no-persist control: {lost} acknowledged documents lost");
    assert!(lost > 0, "commits without persist must be caught losing documents");
}

/// The store a child writes is usable through the `Store` trait object too (guards the
/// test's own assumptions: same FN rendering as the child).
#[test]
fn child_fn_numbers_parse() {
    let f = fn_of("9999078900000007");
    assert_eq!(f.to_string(), "9999078900000007");
    let _: Option<&dyn Store> = None;
}
