//! Report aggregates at scale, on the embedded store:
//!
//! 1. fills a store with `--registers` registers (one FN each) × `--days` local days ×
//!    `--per-day` receipts built by `ffd::build` (real containers: sales and returns,
//!    several VAT rates, cash and cashless), appended by 8 concurrent appenders in
//!    batches of 64, as the gateway does under load;
//! 2. waits until the aggregates reflect everything (`settle`) and reports the
//!    `storage-reports` thread's CPU time per document (from /proc: the fold's cost,
//!    off the acknowledgment path) and the aggregation lag at the end of the fill;
//! 3. times the report a gateway runs for "every register, these 31 days":
//!    `report_totals` of all FNs over the range, in chunks of 500 FNs, merged by day —
//!    first after reopening (cold cache) then warm — and one register's 31 days.
//!
//! ```text
//! cargo run --release -p storage --bin report-bench -- [--dir PATH] [--registers N]
//!     [--days D] [--per-day K] [--keep]
//! ```
//! `--keep` leaves the filled directory for another run (which then skips the fill), or
//! for a gateway: the registers are stored too (owner INN 7702203276), so
//! `GET /v1/reports` on a gateway opened on the directory reports on all of them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffd::FnNumber;
use ffd::build::{self, Identity, Item, Receipt};
use ffd::tlv::{FfdVersion, Fvln};
use storage::embedded::{EmbeddedOptions, EmbeddedStore};
use storage::model::{Bucket, DocumentRecord, Register, Totals};
use storage::{DocumentStore, Durability, RegisterStore, ReportStore, Rnm, Store, Timestamp};

struct Args {
    dir: PathBuf,
    registers: u32,
    days: u32,
    per_day: u32,
    keep: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args { dir: PathBuf::from("report-bench-data"), registers: 10_000, days: 31, per_day: 32, keep: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> Result<u32, String> {
            it.next().ok_or(format!("{name} needs a value"))?.parse().map_err(|e| format!("{name}: {e}"))
        };
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(it.next().ok_or("--dir needs a value")?),
            "--registers" => a.registers = num("--registers")?,
            "--days" => a.days = num("--days")?,
            "--per-day" => a.per_day = num("--per-day")?,
            "--keep" => a.keep = true,
            "-h" | "--help" => {
                println!("report-bench [--dir PATH] [--registers N] [--days D] [--per-day K] [--keep]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.registers == 0 || a.days == 0 || a.per_day == 0 {
        return Err("--registers, --days and --per-day must be at least 1".into());
    }
    Ok(a)
}

fn fn_of(i: u32) -> FnNumber {
    FnNumber::from_ascii(format!("99990789{i:08}").as_bytes().try_into().expect("16 digits"))
}

fn owner() -> storage::Inn {
    storage::Inn::parse("7702203276").expect("valid INN")
}

fn serial_of(i: u32) -> String {
    format!("{:012}", 100_000 + i)
}

fn rnm_of(i: u32) -> String {
    Rnm::compose(u64::from(i) + 1, &owner(), &serial_of(i)).as_str().to_owned()
}

/// The first local day of the fill: 2026-11-01.
const FIRST_DAY: i64 = 20_758;

fn identity(i: u32) -> Identity {
    Identity {
        fn_number: fn_of(i),
        rnm: rnm_of(i),
        user_inn: "7702203276".into(),
        kkt_serial: serial_of(i),
        ofd_inn: "7704211201".into(),
        user_name: "ООО Ромашка".into(),
        address: "Москва".into(),
        place: "Магазин".into(),
        cashier: "Кассир".into(),
        ffd: FfdVersion::V1_2,
    }
}

fn document(id: &Identity, rnm: &Rnm, day: u32, k: u32, per_day: u32) -> DocumentRecord {
    let fd = day * per_day + k + 1;
    let time = u32::try_from((FIRST_DAY + i64::from(day)) * 86_400 + 9 * 3600 + i64::from(k) * 900).expect("fits");
    let x = u64::from(fd).wrapping_mul(0x9E37_79B9) ^ u64::from(id.fn_number.as_bytes()[15]);
    let item = |n: u64, vat: u8| Item {
        name: "Товар".into(),
        price: 1_000 + n % 50_000,
        quantity: Fvln { scale: 0, mantissa: 1 + n % 3 },
        vat,
        subject: 1,
        method: 4,
    };
    let r = Receipt {
        operation: if x % 20 == 0 { 2 } else { 1 },
        items: vec![item(x, 11), item(x >> 7, 2), item(x >> 13, 6)],
        cash: (x >> 3) % 40_000,
        shift: day + 1,
        number: k + 1,
        taxation: 1,
    };
    let tlv = build::receipt(id, fd, time, &r);
    let raw = build::message(id, fd, &tlv).slice(ffd::session::SESSION_HEADER_LEN..);
    let received_at = Timestamp::from_unix_secs(i64::from(time) - 3 * 3600);
    DocumentRecord {
        ffd_version: Some(4),
        doc_time: Some(Timestamp::from_unix_secs(i64::from(time))),
        total: Some(r.total()),
        ..DocumentRecord::accepted(
            id.fn_number,
            fd,
            rnm.clone(),
            3,
            received_at,
            raw,
            bytes::Bytes::from_static(b"ack"),
        )
    }
}

/// CPU seconds (user + system) of this process's thread named `name`.
fn thread_cpu(name: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let mut total = 0.0;
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let u: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let s: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        total += (u + s) / ticks;
    }
    total
}

async fn fill(store: Arc<EmbeddedStore>, a: &Args) -> Result<u64, String> {
    let appenders = 8u32;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..appenders {
        let store = store.clone();
        let (registers, days, per_day) = (a.registers, a.days, a.per_day);
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            for day in 0..days {
                for k in 0..per_day {
                    let mut batch = Vec::with_capacity(64);
                    for i in (w..registers).step_by(appenders as usize) {
                        let id = identity(i);
                        let rnm = Rnm::parse(&id.rnm).map_err(|e| e.to_string())?;
                        batch.push(document(&id, &rnm, day, k, per_day));
                        if batch.len() == 64 {
                            n += batch.len() as u64;
                            store
                                .append_documents(std::mem::take(&mut batch), Durability::Buffered)
                                .await
                                .map_err(|e| e.to_string())?;
                        }
                    }
                    n += batch.len() as u64;
                    if !batch.is_empty() {
                        store.append_documents(batch, Durability::Buffered).await.map_err(|e| e.to_string())?;
                    }
                }
            }
            Ok::<u64, String>(n)
        }));
    }
    let mut total = 0;
    let mut last = Instant::now();
    for t in tasks {
        total += t.await.map_err(|e| e.to_string())??;
        if last.elapsed() > Duration::from_secs(30) {
            last = Instant::now();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("fill: {total} documents in {secs:.0} s ({:.0}/s)", total as f64 / secs);
    Ok(total)
}

async fn report(store: &EmbeddedStore, a: &Args) -> Result<(Duration, usize, u64), String> {
    let fns: Vec<FnNumber> = (0..a.registers).map(fn_of).collect();
    let first = i32::try_from(FIRST_DAY).expect("fits");
    let days = first..=first + i32::try_from(a.days).expect("fits") - 1;
    let started = Instant::now();
    let mut by_day: BTreeMap<i32, Totals> = BTreeMap::new();
    let mut rows = 0;
    for chunk in fns.chunks(500) {
        for b in store.report_totals(chunk, days.clone()).await.map_err(|e| e.to_string())? {
            rows += 1;
            if let Bucket::Day(d) = b.bucket {
                by_day.entry(d).or_default().merge(&b.totals);
            }
        }
    }
    let took = started.elapsed();
    let receipts: u64 = by_day.values().map(|t| t.receipts()).sum();
    Ok((took, rows, receipts))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("report-bench: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let a = args()?;
    let expected = u64::from(a.registers) * u64::from(a.days) * u64::from(a.per_day);
    let filled = a.dir.join("filled");
    if !filled.exists() {
        let _ = std::fs::remove_dir_all(&a.dir);
        let store = Arc::new(EmbeddedStore::open(&a.dir, EmbeddedOptions::default()).map_err(|e| e.to_string())?);
        let cpu0 = thread_cpu("storage-reports");
        // the registers, so that a gateway opened on this directory reports on them
        let now = Timestamp::now();
        let regs: Vec<Register> = (0..a.registers)
            .map(|i| {
                let rnm = Rnm::parse(&rnm_of(i)).expect("composed RNM");
                Register { name: format!("Shop {i}"), ..Register::new(rnm, serial_of(i), owner(), fn_of(i), now) }
            })
            .collect();
        for chunk in regs.chunks(1000) {
            let n = chunk.len();
            store.put_registers(chunk.to_vec(), vec![None; n]).await.map_err(|e| e.to_string())?;
        }
        let n = fill(store.clone(), &a).await?;
        let t = Instant::now();
        store.settle().await.map_err(|e| e.to_string())?;
        let lag = t.elapsed();
        let cpu = thread_cpu("storage-reports") - cpu0;
        println!(
            "aggregation: {:.2} µs of storage-reports CPU per document ({cpu:.1} s for {n}); caught up {:.1} s after the last append",
            cpu * 1e6 / n as f64,
            lag.as_secs_f64()
        );
        store.close().await.map_err(|e| e.to_string())?;
        std::fs::write(&filled, n.to_string()).map_err(|e| e.to_string())?;
    }
    let store = EmbeddedStore::open(&a.dir, EmbeddedOptions::default()).map_err(|e| e.to_string())?;
    store.settle().await.map_err(|e| e.to_string())?;
    let size = store.disk_space().unwrap_or(0);
    println!("store: {expected} documents, {:.2} GiB on disk", size as f64 / f64::from(1u32 << 30));
    for run in ["cold", "warm", "warm"] {
        let (took, rows, receipts) = report(&store, &a).await?;
        println!(
            "report ({run}): {} registers × {} days grouped by day: {} ms ({rows} rows, {receipts} receipts)",
            a.registers,
            a.days,
            took.as_millis()
        );
        if receipts != expected {
            return Err(format!("the report counts {receipts} receipts, {expected} were stored"));
        }
    }
    let t = Instant::now();
    let first = i32::try_from(FIRST_DAY).expect("fits");
    let one = store.report_totals(&[fn_of(7)], first..=first + 30).await.map_err(|e| e.to_string())?;
    println!("report of one register, 31 days: {} µs ({} rows)", t.elapsed().as_micros(), one.len());
    store.close().await.map_err(|e| e.to_string())?;
    if !a.keep {
        let _ = std::fs::remove_dir_all(&a.dir);
    }
    Ok(())
}
