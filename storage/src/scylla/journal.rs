//! The journal: one entry per answered append, in the order appends happened, per
//! delivery partition (see the schema, `journal`). This module knows its rows: positions,
//! the entry format, reading forward from a position, and the followers' cursors. The
//! followers themselves are `derive` (time index, directories, activity) and `delivery`
//! (the FNS forwarder).
//!
//! Positions are the appending node's wall clock in microseconds. An append writes its
//! entry within half the settle time of taking the position, or is not acknowledged, so
//! an entry can only appear behind what a follower has read by at most the settle time:
//! each follower re-reads that last window behind its read position, and never persists a
//! cursor younger than the settle time.

use bytes::Bytes;
use scylla::value::CqlTimestamp;

use super::keys::{self, fn_text, hour_of_pos};
use super::rows::{from_json, from_ts, to_json};
use super::state::{Entry, Pos};
use super::store::ScyllaStore;
use crate::error::StoreError;
use crate::model::{DELIVERY_PARTITIONS, DocumentRecord, delivery_partition};

/// Entries one read returns at most.
pub(super) const READ_LIMIT: i32 = 1000;

/// Row of `jr_after`.
pub(super) type EntryRow =
    (i64, String, i64, Option<String>, Option<String>, Option<bool>, Option<bool>, Option<CqlTimestamp>, Option<i32>);

/// The partition of a delivery partition number, as stored.
pub(super) fn part_value(p: u16) -> Result<i16, StoreError> {
    if p >= DELIVERY_PARTITIONS {
        return Err(StoreError::Invalid(format!("delivery partition {p} out of range 0..{DELIVERY_PARTITIONS}")));
    }
    i16::try_from(p).map_err(|_| StoreError::Invalid(format!("delivery partition {p}")))
}

/// What an entry carries of a document: its record without the raw bytes and the ack.
pub(super) fn meta_of(doc: &DocumentRecord) -> Result<String, StoreError> {
    to_json(&DocumentRecord { raw: Bytes::new(), ack: Bytes::new(), ..doc.clone() })
}

fn entry_of(part: u16, row: EntryRow) -> Result<Entry, StoreError> {
    let (pos, fn_text, fd, _rnm, meta, dup, done, next, attempts) = row;
    let what = format!("journal entry {part}/{pos}/{}/{fd}", fn_text.trim_end());
    let meta: DocumentRecord = from_json(&what, meta.as_deref().unwrap_or(""))?;
    Ok(Entry {
        at: Pos { pos, fn_text, fd },
        meta,
        dup: dup.unwrap_or(false),
        done: done.unwrap_or(false),
        next_attempt_at: next.map(from_ts),
        attempts: u32::try_from(attempts.unwrap_or(0)).unwrap_or(0),
    })
}

impl ScyllaStore {
    /// Writes the entry of an answered append (`meta` of the document that was stored,
    /// whoever wrote it). Returns its position.
    pub(super) async fn write_entry(&self, doc: &DocumentRecord, dup: bool) -> Result<(u16, Pos), StoreError> {
        let part = delivery_partition(&doc.fn_number);
        let f = fn_text(&doc.fn_number)?;
        let at = Pos { pos: keys::monotonic_now(), fn_text: f, fd: keys::fd_value(doc.fd) };
        let values =
            (part_value(part)?, at.hour(), at.pos, at.fn_text.as_str(), at.fd, doc.rnm.as_str(), meta_of(doc)?, dup);
        self.write(&self.st.jr_insert, values).await?;
        Ok((part, at))
    }

    /// Entries of `part` after `from` (exclusive) with positions below `until` (µs),
    /// at most `limit`, in order. Visits hour partitions one by one from `from`'s hour to
    /// `until`'s (an empty hour costs one small read).
    pub(super) async fn read_entries(
        &self,
        part: u16,
        from: &Pos,
        until: i64,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let p = part_value(part)?;
        let mut out = Vec::new();
        let mut hour = from.hour();
        let last_hour = hour_of_pos(until);
        let mut after = from.clone();
        while hour <= last_hour && out.len() < limit {
            let want = i32::try_from(limit - out.len()).unwrap_or(READ_LIMIT).min(READ_LIMIT);
            let rows: Vec<EntryRow> =
                self.rows(&self.st.jr_after, (p, hour, after.pos, after.fn_text.as_str(), after.fd, want)).await?;
            let n = rows.len();
            for r in rows {
                if r.0 >= until {
                    return Ok(out);
                }
                let e = entry_of(part, r)?;
                after = e.at.clone();
                out.push(e);
            }
            if n < usize::try_from(want).unwrap_or(0) {
                // this hour is exhausted
                hour += 1;
                after = Pos::before(i64::from(hour).saturating_mul(3_600_000_000));
            }
        }
        Ok(out)
    }

    /// The persisted cursor of a follower, or the start of the journal (when the schema
    /// was applied).
    pub(super) async fn cursor(&self, part: u16, kind: &str) -> Result<Pos, StoreError> {
        let row: Option<(Option<i32>, Option<i64>)> = self.one(&self.st.cur_get, (part_value(part)?, kind)).await?;
        let start = self.schema_epoch.millis().saturating_mul(1000);
        Ok(match row {
            Some((_, Some(pos))) => Pos::before(pos.max(start)),
            _ => Pos::before(start),
        })
    }

    /// Persists a follower's cursor with the fenced timestamp of its lease.
    pub(super) async fn set_cursor(&self, part: u16, kind: &str, at: &Pos, lease: &str) -> Result<(), StoreError> {
        let ts = self.fenced(lease)?;
        let now = CqlTimestamp(keys::now_micros() / 1000);
        self.write(&self.st.cur_set, (part_value(part)?, kind, at.hour(), at.pos, now, ts)).await
    }

    /// Deletes the hour partitions of `part` that both followers have passed (at most
    /// 24 per call, oldest first): the journal does not grow without bound even before
    /// its rows expire.
    pub(super) async fn prune(
        &self,
        part: u16,
        derive_at: &Pos,
        fns_at: &Pos,
        from_hour: i32,
    ) -> Result<i32, StoreError> {
        let p = part_value(part)?;
        let below = derive_at.hour().min(fns_at.hour());
        let mut h = from_hour;
        let stop = below.min(from_hour.saturating_add(24));
        while h < stop {
            self.write(&self.st.jr_drop_hour, (p, h)).await?;
            h += 1;
        }
        Ok(h)
    }

    /// The wall clock minus the settle time, µs: positions below it are final.
    pub(super) fn settled_before(&self) -> i64 {
        keys::now_micros().saturating_sub(i64::try_from(self.cfg.journal_settle().as_micros()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Timestamp;

    #[test]
    fn positions_order_by_time_then_key_and_cursors_sit_before_their_time() {
        let a = Pos { pos: 10, fn_text: "1".into(), fd: 1 };
        let b = Pos { pos: 10, fn_text: "1".into(), fd: 2 };
        let c = Pos { pos: 11, fn_text: "0".into(), fd: 0 };
        assert!(a < b && b < c);
        assert!(Pos::before(10) < a);
        assert!(Pos::before(11) > b);
        assert_eq!(Pos::before(7_200_000_001).hour(), 2);
    }

    #[test]
    fn entries_decode_their_meta_and_defaults() {
        let doc = DocumentRecord {
            fn_number: ffd::FnNumber::parse_strict("9999078900005488").expect("fn"),
            fd: 7,
            rnm: crate::ids::Rnm::parse("0000000005008570").expect("rnm"),
            doc_type: 3,
            ffd_version: Some(4),
            doc_time: None,
            received_at: Timestamp(1000),
            total: Some(5),
            fiscal_sign: None,
            response_code: 0,
            flk_error: None,
            opaque: false,
            telemetry: None,
            raw: Bytes::from_static(b"raw"),
            ack: Bytes::from_static(b"ack"),
        };
        let meta = meta_of(&doc).expect("meta");
        assert!(!meta.contains("726177"), "no raw bytes in the entry");
        let e = entry_of(3, (5, "9999078900005488".into(), 7, None, Some(meta), None, None, None, Some(-2)))
            .expect("entry");
        assert_eq!(e.key(), doc.key());
        assert_eq!((e.dup, e.done, e.attempts, e.next_attempt_at), (false, false, 0, None));
        assert!(e.meta.raw.is_empty() && e.meta.ack.is_empty());
        assert_eq!(e.meta.total, Some(5));
        assert!(entry_of(3, (5, "x".into(), 7, None, Some("{".into()), None, None, None, None)).is_err());
        assert_eq!(part_value(64).expect_err("range").code(), "invalid");
    }
}
