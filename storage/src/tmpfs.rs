//! A small tmpfs for tests of full and nearly full disks: mounted on a directory with
//! mount(8) (needs root or CAP_SYS_ADMIN; [`Tmpfs::mount`] says why it could not, so a
//! test can print `skipped: <why>` and return), filled with a filler file to a given free
//! space, and unmounted when dropped — also when the test panics.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs; unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes on `dir` (created if missing).
    pub fn mount(dir: &Path, size: u64) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount(8): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs is not permitted here ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { dir: dir.to_path_buf() })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Bytes available on the file system now.
    pub fn free(&self) -> u64 {
        rustix::fs::statvfs(&self.dir).map(|s| s.f_bavail.saturating_mul(s.f_frsize)).unwrap_or(0)
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Grows the filler file until at most `leave` bytes are free (another process
    /// filling the disk). Returns the free bytes afterwards.
    pub fn fill_to(&self, leave: u64) -> std::io::Result<u64> {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.filler())?;
        let chunk = vec![0x5Au8; 64 * 1024];
        loop {
            let free = self.free();
            if free <= leave {
                break;
            }
            let n = usize::try_from((free - leave).min(chunk.len() as u64)).unwrap_or(chunk.len());
            match f.write(&chunk[..n]) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => return Err(e),
            }
        }
        f.sync_all()?;
        Ok(self.free())
    }

    /// Fills the file system completely (until a write fails with ENOSPC).
    pub fn fill_up(&self) -> std::io::Result<()> {
        self.fill_to(0)?;
        let mut f = std::fs::OpenOptions::new().append(true).open(self.filler())?;
        loop {
            match f.write(&[0u8; 512]) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes the filler (the other process frees its space).
    pub fn unfill(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.filler()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.dir).output().is_ok_and(|o| o.status.success());
        if !ok {
            // still in use (a child process not reaped yet): detach it now, freed when unused
            let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
        }
        // the mount point, empty again (its parent may be a temp dir being removed)
        let _ = std::fs::remove_dir(&self.dir);
    }
}
