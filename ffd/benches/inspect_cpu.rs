//! Documents per second per core for the ingest hot path, measured in CPU time.
//!
//! `cargo bench -p ffd --bench inspect_cpu [-- ITERATIONS]`
//!
//! The criterion benchmark (`codec`) reports wall-clock time, which on a shared machine
//! includes the time this thread waited for a core. Here the same work as
//! `codec`'s `inspect/*` (`check_frame` + `Message::new` + session check code + `inspect`)
//! runs a fixed number of times and is divided by the thread's on-CPU time from
//! `/proc/thread-self/schedstat` (Linux; wall time elsewhere), which is what "per core"
//! means. Each input is measured three times; the median is reported.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use ffd::testkit::{SAMPLE_S1, receipt_message};
use ffd::{FfdVersion, FrameStatus, Limits, Message, check_frame, inspect};

/// On-CPU nanoseconds of this thread, if the kernel says.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn run(msg: &Bytes, limits: &Limits, iters: u64) -> u64 {
    let mut accepted = 0;
    for _ in 0..iters {
        let buf = black_box(msg);
        if let Ok(FrameStatus::Complete { header, len }) = check_frame(buf, limits) {
            let m = Message::new(header, buf.slice(..len));
            if inspect(&m, limits).is_ok_and(|i| i.verdict.is_ok()) {
                accepted += 1;
            }
        }
    }
    accepted
}

fn main() {
    let iters: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2_000_000);
    let limits = Limits::default();
    let mut inputs: Vec<(String, Bytes)> = [1usize, 3, 6]
        .into_iter()
        .map(|n| {
            let m = receipt_message(FfdVersion::V1_2, 42, n);
            (format!("receipt {n} lines"), m)
        })
        .collect();
    inputs.push(("S1".to_owned(), Bytes::from_static(SAMPLE_S1)));
    let clock = if cpu_ns().is_some() { "cpu" } else { "wall" };
    println!("{:<16} {:>6} {:>12} {:>16}", "input", "bytes", "ns/doc", "docs/s per core");
    for (name, msg) in inputs {
        assert_eq!(run(&msg, &limits, 10_000), 10_000, "{name} must be accepted");
        let mut samples = Vec::new();
        for _ in 0..3 {
            let (c0, w0) = (cpu_ns(), Instant::now());
            let accepted = run(&msg, &limits, iters);
            let elapsed = match (c0, cpu_ns()) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => u64::try_from(w0.elapsed().as_nanos()).unwrap_or(u64::MAX),
            };
            assert_eq!(accepted, iters);
            samples.push(elapsed as f64 / iters as f64);
        }
        samples.sort_by(f64::total_cmp);
        let ns = samples[1];
        println!("{name:<16} {:>6} {:>9.0} {clock} {:>14.2}M", msg.len(), ns, 1e3 / ns);
    }
}
