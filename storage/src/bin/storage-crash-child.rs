//! Child process of the crash test (`storage/tests/crash.rs`).
//!
//! `storage-crash-child <dir> <mode> <run> <start-fd>` opens the embedded store in `<dir>`
//! and appends batches of documents from several concurrent tasks (one FN per task, like
//! registers) until it is killed. After each append it prints one line per document
//!
//! ```text
//! ok <fn> <fd> <sha256 of raw, hex> <sha256 of the ack the store returned, hex>
//! ```
//!
//! and flushes stdout. The parent kills it with SIGKILL at random moments and checks
//! that everything printed survived.
//!
//! Modes:
//! * `durable`: correct behaviour: print only after the append returned `Durable`.
//! * `early-ack` (negative control): print BEFORE appending, like a gateway that acks
//!   before the write. The parent must detect losses.
//! * `no-persist` (negative control): the store commits without persisting (fjall's
//!   `durability(None)` trap) and still says `Durable`; the tail of the journal stays in
//!   a user-space buffer that SIGKILL loses.
//!
//! Documents are a deterministic function of (FN, FD), so a restarted child resending an
//! FD it appended before sends the same bytes (a register retransmitting). The ack
//! includes the run number, so if a retransmission ever replaced the stored ack, the
//! parent would see an ack digest different from the one printed first.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use ffd::FnNumber;
use sha2::{Digest, Sha256};
use storage::embedded::{EmbeddedOptions, EmbeddedStore};
use storage::model::{AppendOutcome, DocumentRecord};
use storage::{DocumentStore, Durability, Rnm, Timestamp};

/// Concurrent appenders (registers).
const TASKS: u32 = 8;
/// Pause of each appender between batches, milliseconds.
const PACE_MS: u64 = 15;

/// The FN of task `j`.
pub fn task_fn(j: u32) -> FnNumber {
    FnNumber::from_ascii(format!("99990789{j:08}").as_bytes().try_into().expect("16 ASCII digits"))
}

/// Deterministic raw bytes of (FN, FD): ~500 bytes.
fn raw_of(f: &FnNumber, fd: u32) -> Bytes {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&[0xA5, 0x03, 0x01]);
    out.extend_from_slice(f.as_bytes());
    out.extend_from_slice(&fd.to_be_bytes());
    let mut x = u64::from(fd) ^ 0x9E37_79B9_7F4A_7C15 ^ u64::from(f.as_bytes()[15]);
    while out.len() < 500 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    Bytes::from(out)
}

fn hex_sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn document(f: FnNumber, fd: u32, run: u32) -> DocumentRecord {
    let raw = raw_of(&f, fd);
    let mut ack = b"ACK".to_vec();
    ack.extend_from_slice(&run.to_be_bytes());
    ack.extend_from_slice(&fd.to_be_bytes());
    ack.extend_from_slice(&Sha256::digest(&raw)[..8]);
    let rnm = Rnm::parse("0000000005008570").expect("fixed RNM");
    DocumentRecord {
        ffd_version: Some(4),
        total: Some(u64::from(fd)),
        fiscal_sign: Some(fd),
        ..DocumentRecord::accepted(f, fd, rnm, 3, Timestamp::now(), raw, Bytes::from(ack))
    }
}

/// Paced like real registers, so that the parent's checks stay bounded.
async fn pace() {
    tokio::time::sleep(std::time::Duration::from_millis(PACE_MS)).await;
}

fn print_lines(lines: &[String]) {
    let out = std::io::stdout();
    let mut out = out.lock();
    for l in lines {
        // A write error means the parent is gone: nothing left to do.
        if writeln!(out, "{l}").is_err() {
            std::process::exit(0);
        }
    }
    if out.flush().is_err() {
        std::process::exit(0);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: storage-crash-child <dir> <durable|early-ack|no-persist> <run> <start-fd>");
        std::process::exit(2);
    }
    let mode = args[2].clone();
    let run: u32 = args[3].parse().expect("run number");
    let start_fd: u32 = args[4].parse().expect("start FD");
    let opts = EmbeddedOptions { unsafe_ack_without_persist: mode == "no-persist", ..Default::default() };
    if !["durable", "early-ack", "no-persist"].contains(&mode.as_str()) {
        eprintln!("unknown mode {mode}");
        std::process::exit(2);
    }
    let store = match EmbeddedStore::open(&args[1], opts) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("open failed: {e}");
            std::process::exit(3);
        }
    };
    print_lines(&["ready".to_owned()]);
    let early = mode == "early-ack";
    let mut tasks = Vec::new();
    for j in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let f = task_fn(j);
            let mut fd = start_fd;
            let mut x = u64::from(run) * 7919 + u64::from(j) + 1;
            loop {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let n = 1 + (x % 8) as u32;
                let docs: Vec<_> = (fd..fd + n).map(|d| document(f, d, run)).collect();
                fd += n;
                if early {
                    let lines: Vec<_> = docs
                        .iter()
                        .map(|d| format!("ok {} {} {} {}", f, d.fd, hex_sha(&d.raw), hex_sha(&d.ack)))
                        .collect();
                    print_lines(&lines);
                    // Give the kill a window between "acked" and "written".
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                let committed = match store.append_documents(docs.clone(), Durability::Durable).await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("append failed: {e}");
                        std::process::exit(4);
                    }
                };
                if committed.durability != Durability::Durable || early {
                    pace().await;
                    continue;
                }
                let lines: Vec<_> = docs
                    .iter()
                    .zip(&committed.outcomes)
                    .map(|(d, o)| {
                        let ack = match o {
                            AppendOutcome::Stored => &d.ack,
                            AppendOutcome::Duplicate { ack, identical: true } => ack,
                            // Same bytes every time: a conflicting duplicate is a bug the
                            // parent should see.
                            AppendOutcome::Duplicate { identical: false, .. } => {
                                return format!("conflict {} {}", f, d.fd);
                            }
                        };
                        format!("ok {} {} {} {}", f, d.fd, hex_sha(&d.raw), hex_sha(ack))
                    })
                    .collect();
                // Acknowledge at once (as the gateway does), then pause.
                print_lines(&lines);
                pace().await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
