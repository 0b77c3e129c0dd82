//! Facts about the process: the file-descriptor limit (reported at start: it bounds the
//! TCP/TLS connections one process can hold) and the standard `process_*` metrics,
//! read from `/proc` at each scrape.

use crate::metrics as m;

/// Soft and hard RLIMIT_NOFILE.
pub fn fd_limit() -> (u64, u64) {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY-free: getrlimit only writes into the struct we pass.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    if rc == 0 { (r.rlim_cur, r.rlim_max) } else { (0, 0) }
}

/// Descriptors kept for storage files, listeners, the admin plane and outgoing HTTP.
pub const FD_RESERVE: u64 = 256;

/// TCP/TLS connections the limit allows.
pub fn connection_capacity() -> usize {
    let (soft, _) = fd_limit();
    usize::try_from(soft.saturating_sub(FD_RESERVE).max(16)).unwrap_or(usize::MAX)
}

fn clock_ticks() -> f64 {
    #[allow(unsafe_code)]
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn page_size() -> f64 {
    #[allow(unsafe_code)]
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as f64 } else { 4096.0 }
}

/// Resident set size in bytes (from /proc/self/statm).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some((pages * page_size()) as u64)
}

/// Updates the `process_*` metrics.
pub fn update_metrics() {
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // fields after the parenthesised command name; utime=14, stime=15, starttime=22
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            let ticks = clock_ticks();
            metrics::counter!(m::PROCESS_CPU).absolute(((num(14) + num(15)) / ticks) as u64);
            if let Some(boot) = boot_time() {
                metrics::gauge!(m::PROCESS_START).set(boot + num(22) / ticks);
            }
        }
    }
    if let Some(rss) = rss_bytes() {
        metrics::gauge!(m::PROCESS_RSS).set(rss as f64);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!(m::PROCESS_OPEN_FDS).set(dir.count() as f64);
    }
    metrics::gauge!(m::PROCESS_MAX_FDS).set(fd_limit().0 as f64);
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}
