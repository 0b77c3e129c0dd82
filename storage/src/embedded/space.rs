//! Free space of the store's file system: the watermark below which intake pauses, and
//! the "disk full" state after a journal write failed for lack of space.
//!
//! * **Watermark** ([`MinFreeSpace`]). A monitor thread looks at the file system of the
//!   data directory (`statvfs`, space available to unprivileged users) every
//!   `space_check_interval`, and the writer looks again whenever it has written a
//!   sixteenth of the mark since the last look, so intake stops before the disk is full
//!   even when it fills faster than the monitor ticks. Below the mark new documents and
//!   admin writes are refused at once (`StoreError::Unavailable`, nothing written, counted
//!   as `ofd_storage_appends_refused_total{reason="disk_space"}`); delivery bookkeeping
//!   (which only shrinks the outbox) still goes through. A group the writer already holds
//!   is written unless that would leave less than half the mark, so the headroom below
//!   the mark stays for fjall's memtable flushes and compactions. Intake resumes by
//!   itself once the free space is a tenth of the mark (at least 1 MiB) above it
//!   (hysteresis: a disk hovering at the mark does not flap).
//! * **Disk full.** A journal write that still fails with ENOSPC/EDQUOT (the disk filled
//!   faster than the checks, or the watermark is off) wrote nothing that was synced and
//!   acknowledged, but fjall refuses writes after it. The store then pauses intake the
//!   same way and the writer reopens the database in-process as soon as space is back
//!   (see `writer.rs` and docs/storage-embedded.md, "Full disk").
//!
//! Each state change is logged once; the gauges `ofd_storage_free_bytes`,
//! `ofd_storage_min_free_bytes` and `ofd_storage_intake_paused` follow every look.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::StoreError;
use crate::metrics as m;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// The free space the store keeps on its file system: below it, intake pauses.
///
/// Written as a size (`"256MiB"`, `"16 MiB"`, `"1GB"`, `"0"` = no watermark), a share of
/// the file system (`"5%"`, at most 50 %), or the smaller of both
/// (`"min(256MiB, 10%)"`, the default: 256 MiB, but on a file system smaller than
/// 2.5 GiB a tenth of it, so a small test disk is not refused from the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinFreeSpace {
    /// A number of bytes.
    Size(u64),
    /// A share of the file system's size, in hundredths of a percent (`500` = 5 %).
    Share(u32),
    /// The smaller of a size and a share.
    Smaller(u64, u32),
}

impl Default for MinFreeSpace {
    fn default() -> Self {
        Self::Smaller(256 * MIB, 1000)
    }
}

impl MinFreeSpace {
    /// Largest share accepted (hundredths of a percent): more than half of the disk kept
    /// free is almost surely "95 % used" misread as "95 % free".
    pub const MAX_SHARE: u32 = 5000;

    /// The mark in bytes on a file system of `total` bytes.
    pub fn resolve(&self, total: u64) -> u64 {
        let share = |h: u32| u64::try_from(u128::from(total) * u128::from(h) / 10_000).unwrap_or(u64::MAX);
        match *self {
            Self::Size(b) => b,
            Self::Share(h) => share(h),
            Self::Smaller(b, h) => b.min(share(h)),
        }
    }
}

impl fmt::Display for MinFreeSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Size(b) => f.write_str(&exact_size(b)),
            Self::Share(h) => f.write_str(&share_text(h)),
            Self::Smaller(b, h) => write!(f, "min({}, {})", exact_size(b), share_text(h)),
        }
    }
}

impl FromStr for MinFreeSpace {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let help = "write a size (\"256MiB\", \"16 MiB\", \"0\" for none), a share of the file system (\"5%\") \
                    or the smaller of both (\"min(256MiB, 10%)\")";
        if let Some(inner) = t.strip_prefix("min(").and_then(|r| r.strip_suffix(')')) {
            let Some((a, b)) = inner.split_once(',') else {
                return Err(format!("{s:?}: min( ) takes a size and a share; {help}"));
            };
            return match (parse_part(a), parse_part(b)) {
                (Ok(Self::Size(b)), Ok(Self::Share(h))) | (Ok(Self::Share(h)), Ok(Self::Size(b))) => {
                    Ok(Self::Smaller(b, h))
                }
                (Err(e), _) | (_, Err(e)) => Err(format!("{s:?}: {e}; {help}")),
                _ => Err(format!("{s:?}: min( ) takes one size and one share; {help}")),
            };
        }
        parse_part(t).map_err(|e| format!("{e}; {help}"))
    }
}

fn parse_part(s: &str) -> Result<MinFreeSpace, String> {
    let s = s.trim();
    if let Some(p) = s.strip_suffix('%') {
        let p = p.trim();
        let (whole, frac) = p.split_once('.').unwrap_or((p, ""));
        if whole.is_empty() || frac.len() > 2 || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} is not a percentage with at most two decimals"));
        }
        let whole: u32 = whole.parse().map_err(|_| format!("{s:?} is too large"))?;
        let frac: u32 = format!("{frac:0<2}").parse().map_err(|_| format!("{s:?} is not a percentage"))?;
        let h = whole.checked_mul(100).and_then(|w| w.checked_add(frac)).ok_or(format!("{s:?} is too large"))?;
        if h > MinFreeSpace::MAX_SHARE {
            return Err(format!("{s:?} would keep more than half of the file system free (at most 50%)"));
        }
        return Ok(MinFreeSpace::Share(h));
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("{s:?} is not a size"));
    }
    let n: u64 = s[..digits].parse().map_err(|_| format!("{s:?} is too large"))?;
    let unit = match s[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => KIB,
        "mib" | "m" => MIB,
        "gib" | "g" => 1024 * MIB,
        "tib" | "t" => 1024 * 1024 * MIB,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        u => return Err(format!("unknown unit {u:?} (B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)")),
    };
    n.checked_mul(unit).map(MinFreeSpace::Size).ok_or(format!("{s:?} is too large"))
}

/// A size exactly, in the largest binary unit that divides it (read back by `FromStr`).
fn exact_size(b: u64) -> String {
    for (unit, name) in [(1024 * 1024 * MIB, "TiB"), (1024 * MIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if b >= unit && b.is_multiple_of(unit) {
            return format!("{}{name}", b / unit);
        }
    }
    b.to_string()
}

fn share_text(h: u32) -> String {
    if h.is_multiple_of(100) { format!("{}%", h / 100) } else { format!("{}.{:02}%", h / 100, h % 100) }
}

/// A size for people (log lines, health reasons).
pub(crate) fn human(b: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let f = b as f64;
    if b >= 1024 * MIB {
        format!("{:.1} GiB", f / (1024.0 * MIB as f64))
    } else if b >= MIB {
        format!("{:.1} MiB", f / MIB as f64)
    } else if b >= KIB {
        format!("{:.1} KiB", f / KIB as f64)
    } else {
        format!("{b} B")
    }
}

/// Whether an I/O error means "no space" (ENOSPC, or EDQUOT: a quota is a full disk for
/// this process).
pub(crate) fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}

/// What one look at the file system found.
#[derive(Debug, Clone, Copy)]
struct Look {
    free: u64,
    mark: u64,
}

/// The free-space state of one store, shared by the store handle, the writer and the
/// monitor thread.
pub(crate) struct Space {
    dir: PathBuf,
    setting: MinFreeSpace,
    /// Bytes available at the last look.
    free: AtomicU64,
    /// The mark in bytes at the last look.
    mark: AtomicU64,
    /// Bytes the writer committed since the last look (an upper bound).
    written: AtomicU64,
    /// Below the watermark: intake refused.
    paused: AtomicBool,
    /// A journal write failed for lack of space; writes wait for the writer's reopen.
    full: AtomicBool,
    full_reason: Mutex<String>,
    /// The last look failed (logged once per failure streak).
    look_failed: AtomicBool,
}

impl Space {
    /// The state of `dir`'s file system now.
    pub(crate) fn new(dir: &Path, setting: MinFreeSpace) -> Result<Self, StoreError> {
        let s = Self {
            dir: dir.to_path_buf(),
            setting,
            free: AtomicU64::new(u64::MAX),
            mark: AtomicU64::new(0),
            written: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            full: AtomicBool::new(false),
            full_reason: Mutex::new(String::new()),
            look_failed: AtomicBool::new(false),
        };
        s.look().map_err(|e| StoreError::Io(format!("free space of {}: {e}", dir.display())))?;
        Ok(s)
    }

    /// Looks at the file system now and applies what it found (gauges, transitions).
    pub(crate) fn look(&self) -> Result<(), String> {
        let before = self.written.load(Ordering::SeqCst);
        let st = match rustix::fs::statvfs(&self.dir) {
            Ok(st) => st,
            Err(e) => {
                if !self.look_failed.swap(true, Ordering::SeqCst) {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the free space of the store's file system; keeping the last state");
                }
                return Err(e.to_string());
            }
        };
        self.look_failed.store(false, Ordering::SeqCst);
        let unit = st.f_frsize.max(1);
        let free = st.f_bavail.saturating_mul(unit);
        let total = st.f_blocks.saturating_mul(unit);
        let mark = self.setting.resolve(total);
        self.free.store(free, Ordering::SeqCst);
        self.mark.store(mark, Ordering::SeqCst);
        // what was written before the look is in `free` now; what came after is not
        let _ = self.written.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| Some(w.saturating_sub(before)));
        #[allow(clippy::cast_precision_loss)]
        {
            metrics::gauge!(m::FREE_BYTES).set(free as f64);
            metrics::gauge!(m::MIN_FREE_BYTES).set(mark as f64);
        }
        self.apply(Look { free, mark });
        Ok(())
    }

    /// Pauses or resumes intake for what a look found; logs each change once.
    fn apply(&self, l: Look) {
        if l.mark > 0 && l.free < l.mark {
            if !self.paused.swap(true, Ordering::SeqCst) {
                tracing::warn!(
                    dir = %self.dir.display(),
                    free = %human(l.free),
                    min_free_space = %human(l.mark),
                    resume_at = %human(resume_at(l.mark)),
                    "disk space low, intake paused: new documents and admin writes are refused (no acknowledgment) until free space is back above min_free_space"
                );
            }
        } else if self.paused.load(Ordering::SeqCst)
            && l.free >= resume_at(l.mark)
            && !self.full.load(Ordering::SeqCst)
            && self.paused.swap(false, Ordering::SeqCst)
        {
            tracing::info!(dir = %self.dir.display(), free = %human(l.free), "disk space recovered, intake resumed: free space is back above min_free_space");
        }
        self.update_gauge();
    }

    fn update_gauge(&self) {
        let paused = self.paused.load(Ordering::SeqCst) || self.full.load(Ordering::SeqCst);
        metrics::gauge!(m::INTAKE_PAUSED).set(if paused { 1.0 } else { 0.0 });
    }

    /// New intake (documents, admin writes): refused while paused.
    pub(crate) fn admit(&self) -> Result<(), StoreError> {
        match self.degraded() {
            None => Ok(()),
            Some(reason) => Err(StoreError::Unavailable(reason)),
        }
    }

    /// Whether intake is paused (below the mark, or the disk was full).
    pub(crate) fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst) || self.full.load(Ordering::SeqCst)
    }

    /// The writer is about to write `bytes`: looks again when it has written a sixteenth
    /// of the mark since the last look (or is near the mark), and refuses when the write
    /// would leave less than half the mark (the headroom kept for flushes and
    /// compactions). A refusal wrote nothing.
    pub(crate) fn reserve(&self, bytes: u64) -> Result<(), StoreError> {
        let mark = self.mark.load(Ordering::SeqCst);
        if mark > 0 {
            let since = self.written.load(Ordering::SeqCst).saturating_add(bytes);
            let left = self.free.load(Ordering::SeqCst).saturating_sub(since);
            if since >= (mark / 16).max(64 * KIB) || left < mark {
                let _ = self.look();
            }
            let since = self.written.load(Ordering::SeqCst).saturating_add(bytes);
            let free = self.free.load(Ordering::SeqCst);
            let left = free.saturating_sub(since);
            if left < mark / 2 {
                // below the mark too, so intake is paused already (`look` above)
                return Err(StoreError::Unavailable(format!(
                    "disk space: {} free on {}, and writing {} more would leave less than half of \
                     min_free_space ({}), the headroom kept for the store's flushes and compactions",
                    human(free),
                    self.dir.display(),
                    human(bytes),
                    human(mark)
                )));
            }
        }
        self.written.fetch_add(bytes, Ordering::SeqCst);
        Ok(())
    }

    /// A journal write failed for lack of space: pause intake until the writer reopened.
    pub(crate) fn disk_full(&self, error: &str) -> String {
        let reason = format!(
            "disk full: a journal write on {} failed ({error}); nothing of that group was acknowledged. \
             Writes are refused until {} are free again, then the store reopens itself",
            self.dir.display(),
            human(resume_at(self.mark.load(Ordering::SeqCst)))
        );
        if let Ok(mut r) = self.full_reason.lock() {
            r.clone_from(&reason);
        }
        self.paused.store(true, Ordering::SeqCst);
        if !self.full.swap(true, Ordering::SeqCst) {
            tracing::error!(%reason, "embedded store: out of disk space");
        }
        self.update_gauge();
        reason
    }

    /// Whether a journal write failed for lack of space and the writer has not reopened
    /// the database since.
    pub(crate) fn is_full(&self) -> bool {
        self.full.load(Ordering::SeqCst)
    }

    /// Whether there is room again to reopen after a full disk (looks now).
    pub(crate) fn room_to_reopen(&self) -> bool {
        self.look().is_ok() && self.free.load(Ordering::SeqCst) >= resume_at(self.mark.load(Ordering::SeqCst))
    }

    /// The writer reopened the database: the full state ends (intake resumes if the look
    /// says so).
    pub(crate) fn reopened(&self) {
        self.full.store(false, Ordering::SeqCst);
        self.written.store(0, Ordering::SeqCst);
        let _ = self.look();
        self.update_gauge();
    }

    /// Why intake is paused, if it is (the store's `Degraded` reason).
    pub(crate) fn degraded(&self) -> Option<String> {
        if self.full.load(Ordering::SeqCst) {
            return Some(self.full_reason.lock().map(|r| r.clone()).unwrap_or_else(|_| "disk full".into()));
        }
        if self.paused.load(Ordering::SeqCst) {
            let free = self.free.load(Ordering::SeqCst);
            let mark = self.mark.load(Ordering::SeqCst);
            return Some(format!(
                "disk space: {} free on {}, below min_free_space {} ({}); new documents and admin writes are \
                 refused until {} are free",
                human(free),
                self.dir.display(),
                human(mark),
                self.setting,
                human(resume_at(mark))
            ));
        }
        None
    }
}

/// Where intake resumes: a tenth of the mark (at least 1 MiB) above it.
fn resume_at(mark: u64) -> u64 {
    mark.saturating_add((mark / 10).max(MIB))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_and_print_back() {
        for (text, v) in [
            ("256MiB", MinFreeSpace::Size(256 * MIB)),
            ("16 MiB", MinFreeSpace::Size(16 * MIB)),
            ("0", MinFreeSpace::Size(0)),
            ("1048576", MinFreeSpace::Size(MIB)),
            ("2gb", MinFreeSpace::Size(2_000_000_000)),
            ("5%", MinFreeSpace::Share(500)),
            ("0.5 %", MinFreeSpace::Share(50)),
            ("min(256MiB, 10%)", MinFreeSpace::Smaller(256 * MIB, 1000)),
            ("min(10%, 1GiB)", MinFreeSpace::Smaller(1024 * MIB, 1000)),
        ] {
            assert_eq!(text.parse::<MinFreeSpace>(), Ok(v), "{text}");
            assert_eq!(v.to_string().parse::<MinFreeSpace>(), Ok(v), "{v} reads back");
        }
        assert_eq!(MinFreeSpace::default().to_string(), "min(256MiB, 10%)");
        for bad in ["", "lots", "12 parsecs", "51%", "5.555%", "min(5%, 6%)", "min(1MiB)", "-1", "99999999999999 TiB"] {
            assert!(bad.parse::<MinFreeSpace>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn the_default_is_256_mib_or_a_tenth_of_a_small_disk() {
        let d = MinFreeSpace::default();
        assert_eq!(d.resolve(100 * 1024 * MIB), 256 * MIB);
        assert_eq!(d.resolve(1000 * MIB), 100 * MIB);
        assert_eq!(MinFreeSpace::Share(500).resolve(1000 * MIB), 50 * MIB);
        assert_eq!(MinFreeSpace::Size(0).resolve(1000 * MIB), 0);
    }

    #[test]
    fn out_of_space_errors_are_recognised() {
        assert!(is_out_of_space(&std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error())));
        assert!(is_out_of_space(&std::io::Error::from_raw_os_error(rustix::io::Errno::DQUOT.raw_os_error())));
        assert!(!is_out_of_space(&std::io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error())));
    }
}
