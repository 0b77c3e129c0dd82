//! Benchmark of the embedded store, all on one disk in one run:
//!
//! (a) the raw sync rate of the disk: 4 KiB append + `fdatasync` (and + `fsync`) in a loop;
//! (b) durable appends/s through the group commit with 1, 16 and 256 concurrent appenders
//!     of ~500-byte documents, with latency percentiles and the mean batch size, for
//!     each sync mode;
//! (c) recovery: time to open a store holding N (default 1,000,000) documents, and its
//!     disk use.
//!
//! ```text
//! cargo run --release -p storage --bin storage-bench -- [--dir PATH] [--seconds S]
//!     [--recovery-docs N] [--json FILE] [--skip-recovery]
//! ```
//!
//! The data directory defaults to `./storage-bench-data` (removed at the end); put it on
//! the disk you want to measure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ffd::FnNumber;
use storage::embedded::{EmbeddedOptions, EmbeddedStore, SyncMode};
use storage::model::DocumentRecord;
use storage::{DocumentStore, Durability, Rnm, Store, Timestamp};
// `Store` brings `close` into scope.

struct Args {
    dir: PathBuf,
    seconds: f64,
    recovery_docs: u64,
    json: Option<PathBuf>,
    skip_recovery: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        dir: PathBuf::from("storage-bench-data"),
        seconds: 5.0,
        recovery_docs: 1_000_000,
        json: None,
        skip_recovery: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(value("--dir")?),
            "--seconds" => a.seconds = value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--recovery-docs" => {
                a.recovery_docs = value("--recovery-docs")?.parse().map_err(|e| format!("--recovery-docs: {e}"))?
            }
            "--json" => a.json = Some(PathBuf::from(value("--json")?)),
            "--skip-recovery" => a.skip_recovery = true,
            "-h" | "--help" => {
                println!(
                    "storage-bench [--dir PATH] [--seconds S] [--recovery-docs N] [--json FILE] [--skip-recovery]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Debug, Clone)]
struct Latencies {
    ops: u64,
    per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
}

impl Latencies {
    fn from(mut us: Vec<u64>, elapsed: Duration) -> Self {
        us.sort_unstable();
        Self {
            ops: us.len() as u64,
            per_sec: us.len() as f64 / elapsed.as_secs_f64(),
            p50_us: percentile(&us, 0.50),
            p99_us: percentile(&us, 0.99),
            p999_us: percentile(&us, 0.999),
            max_us: us.last().copied().unwrap_or(0),
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ops": self.ops, "per_sec": self.per_sec, "p50_us": self.p50_us,
            "p99_us": self.p99_us, "p999_us": self.p999_us, "max_us": self.max_us,
        })
    }
}

/// (a) 4 KiB append + sync loop on a file in `dir`.
fn raw_sync(dir: &Path, seconds: f64, data_only: bool) -> std::io::Result<Latencies> {
    let path = dir.join(if data_only { "raw-fdatasync.bin" } else { "raw-fsync.bin" });
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
    let block = vec![0xA5u8; 4096];
    let mut us = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        f.write_all(&block)?;
        if data_only {
            f.sync_data()?;
        } else {
            f.sync_all()?;
        }
        us.push(t.elapsed().as_micros() as u64);
    }
    let elapsed = start.elapsed();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(Latencies::from(us, elapsed))
}

fn rnm() -> Rnm {
    Rnm::parse("0000000005008570").expect("fixed RNM")
}

fn fn_of(n: u64) -> FnNumber {
    FnNumber::parse_strict(&format!("{:016}", 9_999_000_000_000_000u64 + n)).expect("16 digits")
}

/// A ~500-byte document (raw ≈ 440 bytes, ack ≈ 60 bytes, like real receipts and acks).
fn document(f: FnNumber, fd: u32) -> DocumentRecord {
    let mut raw = Vec::with_capacity(440);
    raw.extend_from_slice(f.as_bytes());
    raw.extend_from_slice(&fd.to_be_bytes());
    let mut x = u64::from(fd).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while raw.len() < 440 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        raw.extend_from_slice(&x.to_le_bytes());
    }
    DocumentRecord {
        fn_number: f,
        fd,
        rnm: rnm(),
        doc_type: 3,
        ffd_version: Some(4),
        doc_time: Some(Timestamp::now()),
        received_at: Timestamp::now(),
        total: Some(12_345),
        fiscal_sign: Some(fd),
        response_code: 0,
        flk_error: None,
        opaque: false,
        telemetry: None,
        raw: Bytes::from(raw),
        ack: Bytes::from(vec![0x5A; 60]),
    }
}

struct AppendResult {
    mode: &'static str,
    appenders: u64,
    lat: Latencies,
    mean_batch: f64,
    syncs_per_sec: f64,
}

/// (b) `appenders` tasks, each appending one document at a time, durably.
async fn appends(dir: &Path, mode: SyncMode, appenders: u64, seconds: f64) -> Result<AppendResult, String> {
    let path = dir.join(format!("appends-{mode:?}-{appenders}"));
    let _ = std::fs::remove_dir_all(&path);
    let opts = EmbeddedOptions { sync_mode: mode, ..Default::default() };
    let store = Arc::new(EmbeddedStore::open(&path, opts).map_err(|e| e.to_string())?);
    let before = store.writer_stats();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..appenders {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let f = fn_of(a);
            let mut us = Vec::new();
            let mut fd = 1u32;
            while Instant::now() < deadline {
                let d = document(f, fd);
                fd += 1;
                let t = Instant::now();
                let c = store.append_documents(vec![d], Durability::Durable).await.map_err(|e| e.to_string())?;
                if c.durability != Durability::Durable {
                    return Err("append not durable".to_owned());
                }
                us.push(t.elapsed().as_micros() as u64);
            }
            Ok::<_, String>(us)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    let elapsed = start.elapsed();
    let after = store.writer_stats();
    store.close().await.map_err(|e| e.to_string())?;
    drop(store);
    let _ = std::fs::remove_dir_all(&path);
    let commits = after.synced_commits - before.synced_commits;
    Ok(AppendResult {
        mode: match mode {
            SyncMode::SyncAll => "SyncAll",
            SyncMode::SyncData => "SyncData",
        },
        appenders,
        mean_batch: (after.documents - before.documents) as f64 / commits.max(1) as f64,
        syncs_per_sec: commits as f64 / elapsed.as_secs_f64(),
        lat: Latencies::from(all, elapsed),
    })
}

fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => {
                    // Allocated blocks, not apparent size (journals are pre-sized sparse).
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::MetadataExt;
                        total += m.blocks() * 512;
                    }
                    #[cfg(not(unix))]
                    {
                        total += m.len();
                    }
                }
                Err(_) => {}
            }
        }
    }
    total
}

struct Recovery {
    docs: u64,
    fill_secs: f64,
    open_secs: f64,
    disk_bytes: u64,
}

/// (c) Fill a store with `docs` documents, close it, time the reopen.
async fn recovery(dir: &Path, docs: u64) -> Result<Recovery, String> {
    let path = dir.join("recovery");
    let _ = std::fs::remove_dir_all(&path);
    let store = Arc::new(EmbeddedStore::open(&path, EmbeddedOptions::default()).map_err(|e| e.to_string())?);
    let fill = Instant::now();
    const WRITERS: u64 = 8;
    const BATCH: u64 = 500;
    let per_writer = docs.div_ceil(WRITERS);
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // 1000 FNs per writer, like many registers.
            let mut done = 0u64;
            while done < per_writer {
                let n = BATCH.min(per_writer - done);
                let batch: Vec<_> =
                    (done..done + n).map(|i| document(fn_of(w * 1000 + i % 1000), (i / 1000) as u32 + 1)).collect();
                store.append_documents(batch, Durability::Durable).await.map_err(|e| e.to_string())?;
                done += n;
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let fill_secs = fill.elapsed().as_secs_f64();
    store.close().await.map_err(|e| e.to_string())?;
    drop(store);

    let t = Instant::now();
    let store = EmbeddedStore::open(&path, EmbeddedOptions::default()).map_err(|e| e.to_string())?;
    // The first read proves the store serves.
    let got = store
        .get_document(&storage::model::DocumentKey { fn_number: fn_of(0), fd: 1 })
        .await
        .map_err(|e| e.to_string())?;
    let open_secs = t.elapsed().as_secs_f64();
    if got.is_none() {
        return Err("recovered store lacks the first document".into());
    }
    store.close().await.map_err(|e| e.to_string())?;
    drop(store);
    let disk_bytes = dir_size(&path);
    let _ = std::fs::remove_dir_all(&path);
    Ok(Recovery { docs: per_writer * WRITERS, fill_secs, open_secs, disk_bytes })
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("storage-bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("storage-bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let dir = args.dir.canonicalize().map_err(|e| format!("{}: {e}", args.dir.display()))?;
    println!("storage-bench in {} ({} s per scenario)", dir.display(), args.seconds);

    let fdatasync = raw_sync(&dir, args.seconds, true).map_err(|e| e.to_string())?;
    let fsync = raw_sync(&dir, args.seconds, false).map_err(|e| e.to_string())?;
    println!("\n(a) raw disk: 4 KiB append + sync");
    println!("{:<12} {:>10} {:>9} {:>9} {:>9} {:>9}", "sync", "ops/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs");
    for (name, l) in [("fdatasync", &fdatasync), ("fsync", &fsync)] {
        println!("{:<12} {:>10.0} {:>9} {:>9} {:>9} {:>9}", name, l.per_sec, l.p50_us, l.p99_us, l.p999_us, l.max_us);
    }

    println!("\n(b) durable appends through the group commit (one ~500 B document per append)");
    println!(
        "{:<9} {:>9} {:>11} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}",
        "mode", "appenders", "appends/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "docs/batch", "syncs/s"
    );
    let mut results = Vec::new();
    for mode in [SyncMode::SyncAll, SyncMode::SyncData] {
        for n in [1u64, 16, 256] {
            let r = appends(&dir, mode, n, args.seconds).await?;
            println!(
                "{:<9} {:>9} {:>11.0} {:>9} {:>9} {:>9} {:>9} {:>11.1} {:>9.0}",
                r.mode,
                r.appenders,
                r.lat.per_sec,
                r.lat.p50_us,
                r.lat.p99_us,
                r.lat.p999_us,
                r.lat.max_us,
                r.mean_batch,
                r.syncs_per_sec
            );
            results.push(r);
        }
    }

    let rec = if args.skip_recovery {
        None
    } else {
        let r = recovery(&dir, args.recovery_docs).await?;
        println!("\n(c) recovery");
        println!(
            "{} documents written in {:.1} s ({:.0} docs/s in batches of 500); reopen + first read {:.2} s; disk {:.1} MiB ({:.0} B/doc)",
            r.docs,
            r.fill_secs,
            r.docs as f64 / r.fill_secs,
            r.open_secs,
            r.disk_bytes as f64 / (1024.0 * 1024.0),
            r.disk_bytes as f64 / r.docs as f64
        );
        Some(r)
    };

    if let Some(path) = &args.json {
        let j = serde_json::json!({
            "dir": dir.display().to_string(),
            "seconds_per_scenario": args.seconds,
            "raw": { "fdatasync": fdatasync.json(), "fsync": fsync.json() },
            "appends": results.iter().map(|r| serde_json::json!({
                "mode": r.mode, "appenders": r.appenders, "latency": r.lat.json(),
                "mean_batch_documents": r.mean_batch, "syncs_per_sec": r.syncs_per_sec,
            })).collect::<Vec<_>>(),
            "recovery": rec.as_ref().map(|r| serde_json::json!({
                "documents": r.docs, "fill_secs": r.fill_secs, "open_secs": r.open_secs,
                "disk_bytes": r.disk_bytes,
            })),
        });
        let text = serde_json::to_string_pretty(&j).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if dir.ends_with("storage-bench-data") {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
