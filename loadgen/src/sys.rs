//! What the operating system allows: the file-descriptor limit of this process (and how
//! many processes a connection count therefore needs), deferred port choice for bound
//! sockets, and the process's own memory and descriptor use.
//!
//! The two `libc` calls are the only `unsafe` code of the crate; each is a plain system
//! call on memory the function owns.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Descriptors kept free for everything that is not a connection (stdio, the runtime's
/// epoll and eventfds, the report file, QUIC's UDP sockets, listeners in tests).
pub const FD_RESERVE: u64 = 64;

/// `RLIMIT_NOFILE` of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FileLimit {
    /// The limit in force.
    pub soft: u64,
    /// The ceiling an unprivileged process may raise `soft` to.
    pub hard: u64,
}

impl FileLimit {
    /// Reads the limit.
    #[allow(unsafe_code)]
    pub fn current() -> io::Result<Self> {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit only writes the struct we pass, which lives on our stack.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { soft: r.rlim_cur, hard: r.rlim_max })
    }

    /// Connections one process can hold (each TCP or TLS connection is one descriptor).
    pub fn connection_capacity(&self) -> u64 {
        self.soft.saturating_sub(FD_RESERVE)
    }

    /// Processes needed to hold `connections` TCP/TLS connections at this limit.
    pub fn processes_needed(&self, connections: u64) -> u64 {
        let cap = self.connection_capacity().max(1);
        connections.div_ceil(cap).max(1)
    }

    /// Refuses a TCP/TLS connection count this process cannot hold, with the advice of
    /// how to split it.
    pub fn check_connections(&self, connections: u64, what: &str) -> Result<(), String> {
        let cap = self.connection_capacity();
        if connections <= cap {
            return Ok(());
        }
        let procs = self.processes_needed(connections);
        let per = connections.div_ceil(procs);
        Err(format!(
            "{connections} {what} need {connections} file descriptors, but this process may \
             open {} (RLIMIT_NOFILE soft {}, hard {}; {FD_RESERVE} kept in reserve). Run \
             {procs} loadgen processes of about {per} each, splitting the population with \
             --first-register 0, {per}, {}, ... and --count {per} (spread them over source \
             addresses with --source-ips), or use QUIC, whose connections share one UDP socket.",
            self.soft,
            self.soft,
            self.hard,
            per * 2,
        ))
    }
}

/// Lets the kernel choose the source port at `connect()` instead of `bind()`
/// (`IP_BIND_ADDRESS_NO_PORT`, Linux ≥ 4.2), so that a port can be reused towards
/// different destinations and a bound source address is not limited to ~28K ports
/// overall. Elsewhere this is a no-op.
#[allow(unsafe_code)]
pub fn set_bind_address_no_port(fd: BorrowedFd<'_>) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `one`, which outlives
        // the call; `fd` is a valid open socket borrowed for the duration of the call.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&raw const one).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = fd;
    Ok(())
}

/// Lowers the calling thread's timer slack to 1 µs (Linux; best effort), so that its
/// timed waits end when asked rather than up to 50 µs later.
#[allow(unsafe_code)]
pub fn lower_timer_slack() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_TIMERSLACK takes an integer argument and touches no memory of ours.
        let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0) };
    }
}

/// Resident set size of this process, from `/proc/self/status` (Linux), in bytes.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Descriptors this process has open (Linux), or `None` elsewhere.
pub fn open_fds() -> Option<u64> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count();
    Some(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_and_processes() {
        let l = FileLimit { soft: 20_000, hard: 20_000 };
        assert_eq!(l.connection_capacity(), 20_000 - FD_RESERVE);
        assert_eq!(l.processes_needed(1), 1);
        assert_eq!(l.processes_needed(19_936), 1);
        assert_eq!(l.processes_needed(19_937), 2);
        assert_eq!(l.processes_needed(100_000), 6);
        assert!(l.check_connections(19_000, "connections").is_ok());
        let err = l.check_connections(50_000, "connections").expect_err("over the limit");
        assert!(err.contains("Run 3 loadgen processes"), "{err}");
        assert!(err.contains("20000"), "{err}");
    }

    #[test]
    fn reads_the_real_limit() {
        let l = FileLimit::current().expect("getrlimit");
        assert!(l.soft > 0 && l.soft <= l.hard);
        assert!(open_fds().is_some_and(|n| n >= 3));
        assert!(rss_bytes().is_some_and(|b| b > 0));
    }
}
