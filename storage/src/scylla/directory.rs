//! The directory tables: which buckets of a bucketed table are non-empty (FD buckets of
//! an FN, days of a register's time index, days of the audit log, RNM prefixes…), so that
//! ranged reads visit only buckets that exist. Entries are idempotent upserts; a
//! per-process cache saves rewriting them.

use super::store::ScyllaStore;
use crate::error::StoreError;

impl ScyllaStore {
    /// Upserts a numeric directory entry unless this process already did.
    pub(super) async fn dir_int(&self, kind: &str, owner: &str, entry: i64, ttl_secs: i32) -> Result<(), StoreError> {
        let key = format!("i|{kind}|{owner}|{entry}");
        if self.dirs.contains(&key) {
            return Ok(());
        }
        // claimed before the write, so that the entries of one round that share it write
        // it once; given back if the write fails (the caller's round fails and is retried)
        self.dirs.insert(key.clone());
        let r = self.write(&self.st.dir_int_insert, (kind, owner, entry, ttl_secs)).await;
        if r.is_err() {
            self.dirs.remove(&key);
        }
        r
    }

    /// Upserts a text directory entry unless this process already did.
    pub(super) async fn dir_text(&self, kind: &str, owner: &str, entry: &str) -> Result<(), StoreError> {
        let key = format!("t|{kind}|{owner}|{entry}");
        if self.dirs.contains(&key) {
            return Ok(());
        }
        self.dirs.insert(key.clone());
        let r = self.write(&self.st.dir_text_insert, (kind, owner, entry)).await;
        if r.is_err() {
            self.dirs.remove(&key);
        }
        r
    }

    /// Numeric directory entries in `[lo, hi]`, ascending or descending.
    pub(super) async fn dir_int_range(
        &self,
        kind: &str,
        owner: &str,
        lo: i64,
        hi: i64,
        descending: bool,
    ) -> Result<Vec<i64>, StoreError> {
        if lo > hi {
            return Ok(Vec::new());
        }
        let stmt = if descending { &self.st.dir_int_desc } else { &self.st.dir_int_asc };
        let rows: Vec<(i64,)> = self.all_rows(stmt, (kind, owner, lo, hi)).await?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }

    /// Text directory entries from `from` (inclusive), ascending.
    pub(super) async fn dir_text_from(&self, kind: &str, owner: &str, from: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = self.all_rows(&self.st.dir_text_from, (kind, owner, from)).await?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }
}

/// TTLs of directory entries (seconds; 0 = none).
pub(super) mod dir_ttl {
    use super::super::keys::RETENTION_SECS;

    fn secs(v: i64) -> i32 {
        i32::try_from(v).unwrap_or(i32::MAX)
    }

    /// FD buckets of an FN: an FN lives at most ~3 years, so its last documents expire
    /// within retention + 3 years of its first.
    pub fn fn_docs() -> i32 {
        secs(RETENTION_SECS + 4 * 365 * 86_400)
    }
    /// Days of a register's time index.
    pub fn reg_docs() -> i32 {
        secs(RETENTION_SECS + 2 * 86_400)
    }
    /// Days of the audit log.
    pub fn audit() -> i32 {
        secs(RETENTION_SECS + 2 * 86_400)
    }
    /// Days of notifications (their rows live 366 days).
    pub fn notes() -> i32 {
        secs(368 * 86_400)
    }
}

#[cfg(test)]
mod tests {
    use crate::scylla::state::DirCache;

    #[test]
    fn dir_cache_is_bounded() {
        let c = DirCache::default();
        c.insert("a".into());
        assert!(c.contains("a"));
        for i in 0..DirCache::MAX {
            c.insert(i.to_string());
        }
        assert!(!c.contains("a"), "cleared when full");
    }
}
