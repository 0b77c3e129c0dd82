//! `DeliveryStore`: the FNS outbox, delivery states and leases.
//!
//! # The outbox
//!
//! Each append writes an entry into `fns_outbox` at position `pos` = the appending
//! node's wall clock (µs), partition (delivery partition, hour of `pos`), *before* the
//! document's commit record. A per-partition cursor (`fns_outbox_cursor`) marks the
//! position before which every entry is done (delivered, or superseded) or parked.
//!
//! `due_deliveries` reads the parked entries and scans forward from the cursor, returns
//! the due entries whose document exists with the same `received_at` (the entry of the
//! attempt that won), marks superseded entries done, and moves the cursor over the
//! leading done entries — but never over positions younger than `outbox_settle`: an
//! append only commits its document if its outbox entry became visible within half that
//! time, so no entry can appear behind the cursor later. Entries are marked done with
//! updates (never deleted one by one), so scans read no row tombstones; an hour partition
//! behind the cursor is deleted as a whole.
//!
//! An entry that blocks the cursor for long — it failed `PARK_AFTER_ATTEMPTS` times, or its
//! document never committed — is moved to `fns_outbox_parked` (at most `PARK_CAP` per
//! partition) so that one poison document does not stall the partition. Parked entries
//! are still retried on every call.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use scylla::value::{CqlTimestamp, Row};

use super::keys::{self, fd_bucket, fn_text};
use super::rows::{DeliveryRow, DeliveryRowTuple, from_ts, ts};
use super::store::{OpTimer, ScyllaStore, ordered, unordered};
use crate::error::StoreError;
use crate::ids::Timestamp;
use crate::model::{BacklogStats, DELIVERY_PARTITIONS, Delivery, DeliveryStatus, DocumentKey, delivery_partition};
use crate::store::{DeliveryStore, PageRequest};

/// Failed attempts after which an entry blocking the cursor is parked.
const PARK_AFTER_ATTEMPTS: u32 = 3;
/// Parked entries per partition at most.
const PARK_CAP: usize = 1000;
/// Entries parked per call at most.
const PARK_PER_CALL: usize = 100;
/// A parked entry whose document never committed is dropped after this long (a register
/// retries for at most 30 days before its FN blocks; a late write cannot land later).
const ORPHAN_DROP_AFTER: Duration = Duration::from_secs(31 * 86_400);
/// Outbox rows one call reads at most.
const SCAN_ROWS: usize = 20_000;
/// Hour partitions one call visits at most.
const SCAN_HOURS: i32 = 24 * 7;
/// Point reads in flight while verifying candidates.
const FAN_OUT: usize = 32;

/// A position in the outbox: (hour, pos, fn, fd).
type Position = (i32, i64, String, i64);

/// A stored cursor row.
pub(super) type CursorRow = (Option<i32>, Option<i64>, Option<String>, Option<i64>);

/// An entry's identity in a scan: (hour, pos, fn, fd, parked).
type EntryId = (i32, i64, String, i64, bool);

/// One outbox row.
#[derive(Debug, Clone)]
struct Entry {
    hour: i32,
    pos: i64,
    fn_text: String,
    fd: i64,
    queued_at: Timestamp,
    next_attempt_at: Timestamp,
    attempts: u32,
    done: bool,
    /// Read from fns_outbox_parked.
    parked: bool,
    parked_at: Option<Timestamp>,
}

impl Entry {
    fn position(&self) -> Position {
        (self.hour, self.pos, self.fn_text.clone(), self.fd)
    }
}

/// What verification found out about a due entry.
#[derive(Debug)]
enum Verdict {
    /// Deliver it.
    Deliver(Delivery),
    /// Already delivered, or superseded by another entry of the same document.
    Done,
    /// Its document does not exist (an append that never committed).
    Orphan,
}

pub(super) type ObRow = (i64, String, i64, Option<CqlTimestamp>, Option<CqlTimestamp>, Option<i32>, Option<bool>);

pub(super) type ParkRow =
    (i32, i64, String, i64, Option<CqlTimestamp>, Option<CqlTimestamp>, Option<i32>, Option<CqlTimestamp>);

fn entry_from_ob(hour: i32, r: ObRow) -> Entry {
    let (pos, fn_text, fd, queued, next, attempts, done) = r;
    let queued_at = queued.map(from_ts).unwrap_or_default();
    Entry {
        hour,
        pos,
        fn_text,
        fd,
        queued_at,
        next_attempt_at: next.map(from_ts).unwrap_or(queued_at),
        attempts: u32::try_from(attempts.unwrap_or(0)).unwrap_or(0),
        done: done.unwrap_or(false),
        parked: false,
        parked_at: None,
    }
}

fn entry_from_park(r: ParkRow) -> Entry {
    let (hour, pos, fn_text, fd, queued, next, attempts, parked_at) = r;
    let queued_at = queued.map(from_ts).unwrap_or_default();
    Entry {
        hour,
        pos,
        fn_text,
        fd,
        queued_at,
        next_attempt_at: next.map(from_ts).unwrap_or(queued_at),
        attempts: u32::try_from(attempts.unwrap_or(0)).unwrap_or(0),
        done: false,
        parked: true,
        parked_at: parked_at.map(from_ts),
    }
}

fn partition_of(p: u16) -> Result<i16, StoreError> {
    if p >= DELIVERY_PARTITIONS {
        return Err(StoreError::Invalid(format!("delivery partition {p} out of range 0..{DELIVERY_PARTITIONS}")));
    }
    i16::try_from(p).map_err(|_| StoreError::Invalid(format!("delivery partition {p}")))
}

fn delivery_of(key: DocumentKey, row: &DeliveryRow, queued_at: Timestamp) -> Delivery {
    Delivery {
        key,
        partition: delivery_partition(&key.fn_number),
        status: if row.delivered { DeliveryStatus::Delivered } else { DeliveryStatus::Pending },
        queued_at,
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at,
        last_attempt_at: row.last_attempt_at,
        last_error: row.last_error.clone(),
        delivered_at: row.delivered_at,
    }
}

impl ScyllaStore {
    async fn read_delivery(&self, fn_text: &str, fd: u32) -> Result<Option<DeliveryRow>, StoreError> {
        let row: Option<DeliveryRowTuple> =
            self.one(&self.st.dlv_get, (fn_text, fd_bucket(fd), keys::fd_value(fd))).await?;
        match row {
            Some(t) => DeliveryRow::from_tuple(t, &format!("{}/{fd}", fn_text.trim_end())),
            None => Ok(None),
        }
    }

    async fn doc_received_at(&self, fn_text: &str, fd: u32) -> Result<Option<Timestamp>, StoreError> {
        let row: Option<(Option<CqlTimestamp>,)> =
            self.one(&self.st.doc_received, (fn_text, fd_bucket(fd), keys::fd_value(fd))).await?;
        Ok(row.and_then(|(t,)| t).map(from_ts))
    }

    /// The cursor of a partition: everything before it is done or parked.
    async fn read_cursor(&self, partition: i16) -> Result<Position, StoreError> {
        let row: Option<CursorRow> = self.one(&self.st.cur_get, (partition,)).await?;
        Ok(match row {
            Some((Some(h), Some(p), Some(f), Some(fd))) => (h, p, f, fd),
            // no entry can be older than the schema
            _ => {
                let epoch_us = self.schema_epoch.millis().saturating_sub(86_400_000).saturating_mul(1000);
                (keys::hour_of_pos(epoch_us), i64::MIN, String::new(), -1)
            }
        })
    }

    /// Decides what to do with one due entry, and does the bookkeeping for entries that
    /// turn out done.
    async fn verify(&self, partition: i16, e: &Entry) -> Result<Verdict, StoreError> {
        let fd = keys::fd_from_value(e.fd)?;
        let key = DocumentKey { fn_number: keys::fn_from_text(&e.fn_text)?, fd };
        let (doc_at, dlv) =
            futures::try_join!(self.doc_received_at(&e.fn_text, fd), self.read_delivery(&e.fn_text, fd))?;
        let Some(doc_at) = doc_at else {
            return Ok(Verdict::Orphan);
        };
        let superseded = doc_at != e.queued_at;
        match dlv {
            Some(row) if !row.delivered && !superseded => Ok(Verdict::Deliver(delivery_of(key, &row, e.queued_at))),
            row => {
                // delivered, superseded by the winning attempt's entry, or no state
                let wts = keys::update_timestamp(row.as_ref().and_then(|r| r.writetime));
                self.retire(partition, e, wts, row.is_some()).await?;
                Ok(Verdict::Done)
            }
        }
    }

    /// Marks an entry done (or removes it from the parked set) and drops it from its
    /// delivery row.
    async fn retire(&self, partition: i16, e: &Entry, wts: i64, has_delivery_row: bool) -> Result<(), StoreError> {
        let bucket = fd_bucket(keys::fd_from_value(e.fd)?);
        let p = vec![(e.hour, e.pos)];
        if e.parked {
            self.write(&self.st.park_delete, (partition, e.hour, e.pos, e.fn_text.as_str(), e.fd)).await?;
            if has_delivery_row {
                self.write(&self.st.dlv_unpark, (wts, p, e.fn_text.as_str(), bucket, e.fd)).await?;
            }
        } else {
            self.write(&self.st.ob_done, (wts, partition, e.hour, e.pos, e.fn_text.as_str(), e.fd)).await?;
            if has_delivery_row {
                self.write(&self.st.dlv_drop_position, (wts, p, e.fn_text.as_str(), bucket, e.fd)).await?;
            }
        }
        Ok(())
    }

    /// Moves an entry blocking the cursor to the parked table.
    async fn park(&self, partition: i16, e: &Entry) -> Result<(), StoreError> {
        let fd = keys::fd_from_value(e.fd)?;
        let attempts = i32::try_from(e.attempts).unwrap_or(i32::MAX);
        self.write(
            &self.st.park_insert,
            (
                partition,
                e.hour,
                e.pos,
                e.fn_text.as_str(),
                e.fd,
                ts(e.queued_at),
                ts(e.next_attempt_at),
                attempts,
                ts(Timestamp::now()),
            ),
        )
        .await?;
        let wt = self.read_delivery(&e.fn_text, fd).await?.and_then(|r| r.writetime);
        let wts = keys::update_timestamp(wt);
        let p = vec![(e.hour, e.pos)];
        self.write(&self.st.dlv_park, (wts, p.clone(), p, e.fn_text.as_str(), fd_bucket(fd), e.fd)).await?;
        self.write(&self.st.ob_done, (wts, partition, e.hour, e.pos, e.fn_text.as_str(), e.fd)).await?;
        tracing::warn!(
            partition,
            fn_number = %e.fn_text.trim_end(),
            fd = e.fd,
            attempts = e.attempts,
            "FNS outbox entry parked off the cursor path"
        );
        Ok(())
    }

    async fn due_impl(&self, partition: u16, now: Timestamp, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let part = partition_of(partition)?;
        let limit = PageRequest::first(limit).effective_limit();
        let wall = keys::now_micros();
        let settle_us = i64::try_from(self.cfg.outbox_settle().as_micros()).unwrap_or(i64::MAX);
        let settled_before = wall.saturating_sub(settle_us);
        let last_hour = keys::hour_of_pos(wall) + 1;

        // parked entries (few)
        let parked: Vec<Entry> =
            self.all_rows::<ParkRow>(&self.st.park_list, (part,)).await?.into_iter().map(entry_from_park).collect();

        // scan from the cursor
        let cursor = self.read_cursor(part).await?;
        let mut scanned: Vec<Entry> = Vec::new();
        // hours whose rows were all read
        let mut complete_hours: Vec<i32> = Vec::new();
        let mut hour = cursor.0;
        let mut hours_seen = 0;
        while hour <= last_hour && hours_seen < SCAN_HOURS && scanned.len() < SCAN_ROWS {
            let from: (i64, &str, i64) =
                if hour == cursor.0 { (cursor.1, cursor.2.as_str(), cursor.3) } else { (i64::MIN, "", -1) };
            let mut s = self.stream::<ObRow>(&self.st.ob_after, (part, hour, from.0, from.1, from.2)).await?;
            let mut complete = true;
            while let Some(r) = self.next_row(&mut s).await? {
                scanned.push(entry_from_ob(hour, r));
                if scanned.len() >= SCAN_ROWS {
                    complete = false;
                    break;
                }
            }
            if complete {
                complete_hours.push(hour);
            }
            hour += 1;
            hours_seen += 1;
        }

        // verify the due entries, oldest first, a bounded number
        let max_candidates = limit * 2 + 16;
        let candidates: Vec<&Entry> = parked
            .iter()
            .chain(scanned.iter().filter(|e| !e.done))
            .filter(|e| e.next_attempt_at <= now)
            .take(max_candidates)
            .collect();
        let futs: Vec<_> = candidates
            .into_iter()
            .map(|e| async move {
                let v = self.verify(part, e).await?;
                Ok::<_, StoreError>(((e.hour, e.pos, e.fn_text.clone(), e.fd, e.parked), v))
            })
            .collect();
        let verdicts: Vec<(EntryId, Verdict)> = ordered(futs, FAN_OUT).await?;
        let mut verdict_of: HashMap<EntryId, &Verdict> = HashMap::new();
        for (k, v) in &verdicts {
            verdict_of.insert(k.clone(), v);
        }

        // orphans parked for longer than any write can take to land: drop
        for e in &parked {
            let k = (e.hour, e.pos, e.fn_text.clone(), e.fd, true);
            if matches!(verdict_of.get(&k), Some(Verdict::Orphan))
                && e.parked_at.is_some_and(|p| Timestamp::now().since(p) > ORPHAN_DROP_AFTER)
            {
                tracing::warn!(fn_number = %e.fn_text.trim_end(), fd = e.fd, "dropping orphan outbox entry");
                self.retire(part, e, keys::update_timestamp(None), true).await?;
            }
        }

        // move the cursor over the leading done entries; park what blocks it for long
        let mut parked_count = parked.len();
        let mut parked_now = 0;
        let mut advance: Option<Position> = None;
        let mut blocked = false;
        for e in &scanned {
            if e.pos >= settled_before {
                blocked = true;
                break;
            }
            let k = (e.hour, e.pos, e.fn_text.clone(), e.fd, false);
            let passable = e.done || matches!(verdict_of.get(&k), Some(Verdict::Done));
            if passable {
                advance = Some(e.position());
                continue;
            }
            let orphan = matches!(verdict_of.get(&k), Some(Verdict::Orphan));
            let failing = e.next_attempt_at > now && e.attempts >= PARK_AFTER_ATTEMPTS;
            if (orphan || failing) && parked_count < PARK_CAP && parked_now < PARK_PER_CALL {
                self.park(part, e).await?;
                parked_count += 1;
                parked_now += 1;
                advance = Some(e.position());
                continue;
            }
            blocked = true;
            break;
        }
        // whole settled hours read to the end without a blocking entry
        let mut new_cursor = advance;
        if !blocked {
            for h in &complete_hours {
                let end_of_hour = (i64::from(*h) + 1).saturating_mul(3_600_000_000);
                let past = match &new_cursor {
                    Some((ch, _, _, _)) => *h >= *ch,
                    None => *h >= cursor.0,
                };
                if past && end_of_hour <= settled_before {
                    new_cursor = Some((h + 1, i64::MIN, String::new(), -1));
                }
            }
        }
        if let Some(c) = new_cursor
            && c > cursor
        {
            self.write(&self.st.cur_set, (part, c.0, c.1, c.2.as_str(), c.3, ts(Timestamp::now()))).await?;
            // hour partitions wholly behind the cursor hold only done entries
            for h in cursor.0..c.0 {
                self.write(&self.st.ob_drop_hour, (part, h)).await?;
            }
        }

        // the answer: deliverable, one per document, oldest first
        let mut seen = HashSet::new();
        let mut out: Vec<Delivery> = verdicts
            .into_iter()
            .filter_map(|(_, v)| match v {
                Verdict::Deliver(d) => Some(d),
                _ => None,
            })
            .filter(|d| seen.insert(d.key))
            .collect();
        out.sort_by_key(|d| (d.next_attempt_at, d.queued_at, d.key));
        out.truncate(limit);
        Ok(out)
    }

    async fn mark_one_delivered(&self, key: &DocumentKey, at: Timestamp) -> Result<(), StoreError> {
        let f = fn_text(&key.fn_number)?;
        let part = partition_of(delivery_partition(&key.fn_number))?;
        let Some(row) = self.read_delivery(&f, key.fd).await? else {
            return Ok(()); // nothing queued under this key
        };
        if row.delivered {
            return Ok(()); // idempotent: keep the first delivery time
        }
        let wts = keys::update_timestamp(row.writetime);
        let bucket = fd_bucket(key.fd);
        let fd = keys::fd_value(key.fd);
        self.write(&self.st.dlv_delivered, (wts, ts(at), ts(at), f.as_str(), bucket, fd)).await?;
        for (h, p) in &row.positions {
            self.write(&self.st.ob_done, (wts, part, *h, *p, f.as_str(), fd)).await?;
        }
        for (h, p) in &row.parked_positions {
            self.write(&self.st.park_delete, (part, *h, *p, f.as_str(), fd)).await?;
            self.write(&self.st.dlv_unpark, (wts, vec![(*h, *p)], f.as_str(), bucket, fd)).await?;
        }
        Ok(())
    }

    /// Interprets the result of a conditional statement: `[applied]` and the current
    /// holder (ScyllaDB always returns the old row, whether applied or not).
    fn lwt_result(
        &self,
        qr: scylla::response::query_result::QueryResult,
    ) -> Result<(bool, Option<String>), StoreError> {
        let rows = qr.into_rows_result().map_err(|e| super::errors::from_into_rows(&e))?;
        let specs = rows.column_specs();
        let applied_ix = specs
            .get_by_name("[applied]")
            .map(|(i, _)| i)
            .ok_or_else(|| StoreError::Io("conditional statement without [applied]".into()))?;
        let holder_ix = specs.get_by_name("holder").map(|(i, _)| i);
        let row = rows
            .maybe_first_row::<Row>()
            .map_err(|e| super::errors::from_maybe_first_row(&e))?
            .ok_or_else(|| StoreError::Io("conditional statement without a result row".into()))?;
        let applied = match row.columns.get(applied_ix) {
            Some(Some(v)) => v.as_boolean().ok_or_else(|| StoreError::Corrupt("[applied] is not a boolean".into()))?,
            _ => return Err(StoreError::Corrupt("[applied] is null".into())),
        };
        let holder = holder_ix.and_then(|i| row.columns.get(i).cloned().flatten()).and_then(|v| v.into_string());
        Ok((applied, holder))
    }
}

#[async_trait]
impl DeliveryStore for ScyllaStore {
    async fn due_deliveries(&self, partition: u16, now: Timestamp, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let _t = OpTimer::start("due_deliveries");
        self.due_impl(partition, now, limit).await
    }

    async fn mark_delivered(&self, keys: &[DocumentKey], at: Timestamp) -> Result<(), StoreError> {
        let _t = OpTimer::start("mark_delivered");
        self.check_open()?;
        let futs: Vec<_> = keys.iter().map(|k| self.mark_one_delivered(k, at)).collect();
        unordered(futs, FAN_OUT).await?;
        Ok(())
    }

    async fn record_delivery_failure(
        &self,
        key: &DocumentKey,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        let _t = OpTimer::start("record_delivery_failure");
        let f = fn_text(&key.fn_number)?;
        let part = partition_of(delivery_partition(&key.fn_number))?;
        let row = self
            .read_delivery(&f, key.fd)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("delivery of {}/{}", key.fn_number, key.fd)))?;
        let wts = keys::update_timestamp(row.writetime);
        let attempts = row.attempts.saturating_add(1);
        let attempts_i = i32::try_from(attempts).unwrap_or(i32::MAX);
        let bucket = fd_bucket(key.fd);
        let fd = keys::fd_value(key.fd);
        self.write(
            &self.st.dlv_failed,
            (wts, attempts_i, error, ts(Timestamp::now()), ts(next_attempt_at), f.as_str(), bucket, fd),
        )
        .await?;
        if row.delivered {
            return Ok(());
        }
        for (h, p) in &row.positions {
            self.write(&self.st.ob_retry, (wts, ts(next_attempt_at), attempts_i, part, *h, *p, f.as_str(), fd)).await?;
        }
        for (h, p) in &row.parked_positions {
            self.write(&self.st.park_retry, (ts(next_attempt_at), attempts_i, part, *h, *p, f.as_str(), fd)).await?;
        }
        Ok(())
    }

    async fn get_delivery(&self, key: &DocumentKey) -> Result<Option<Delivery>, StoreError> {
        let _t = OpTimer::start("get_delivery");
        let f = fn_text(&key.fn_number)?;
        let (row, doc_at) = futures::try_join!(self.read_delivery(&f, key.fd), self.doc_received_at(&f, key.fd))?;
        // a delivery row without its document belongs to an append that never committed
        Ok(match (row, doc_at) {
            (Some(row), Some(doc_at)) => Some(delivery_of(*key, &row, doc_at)),
            _ => None,
        })
    }

    /// Counts not-done entries from each partition's cursor plus parked ones. O(backlog):
    /// call it at metric-scrape frequency, not per document. Entries superseded by a
    /// concurrent attempt count until a forwarder retires them.
    async fn backlog(&self) -> Result<BacklogStats, StoreError> {
        let _t = OpTimer::start("backlog");
        self.check_open()?;
        let last_hour = keys::hour_of_pos(keys::now_micros()) + 1;
        let per: Vec<(u64, Option<Timestamp>)> = stream::iter((0..DELIVERY_PARTITIONS).map(|p| async move {
            let part = partition_of(p)?;
            let mut pending = 0u64;
            let mut oldest: Option<Timestamp> = None;
            for r in self.all_rows::<ParkRow>(&self.st.park_list, (part,)).await? {
                let e = entry_from_park(r);
                pending += 1;
                oldest = Some(oldest.map_or(e.queued_at, |o| o.min(e.queued_at)));
            }
            let cursor = self.read_cursor(part).await?;
            for hour in cursor.0..=last_hour {
                let from: (i64, &str, i64) =
                    if hour == cursor.0 { (cursor.1, cursor.2.as_str(), cursor.3) } else { (i64::MIN, "", -1) };
                let mut s = self.stream::<ObRow>(&self.st.ob_after, (part, hour, from.0, from.1, from.2)).await?;
                while let Some(r) = self.next_row(&mut s).await? {
                    let e = entry_from_ob(hour, r);
                    if !e.done {
                        pending += 1;
                        oldest = Some(oldest.map_or(e.queued_at, |o| o.min(e.queued_at)));
                    }
                }
            }
            Ok::<_, StoreError>((pending, oldest))
        }))
        .buffer_unordered(8)
        .try_collect()
        .await?;
        Ok(BacklogStats {
            pending: per.iter().map(|(n, _)| n).sum(),
            oldest_queued_at: per.iter().filter_map(|(_, o)| *o).min(),
        })
    }

    /// Takes or renews a lease with a lightweight transaction and a TTL. LWT is
    /// acceptable here, unlike on the document path: a lease only decides which node
    /// works on a partition; the work (FNS delivery) is idempotent by (FN, FD) at the
    /// receiver, so even a split-brain lease (the LWT anomalies Jepsen found) costs
    /// duplicate deliveries, never a lost or overwritten document. A timeout is an
    /// unknown outcome: the caller must treat it as "not held".
    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let _t = OpTimer::start("try_lease");
        let ttl_s = keys::ttl_secs(ttl);
        let qr = self.exec(&self.st.lease_take, (name, holder, ttl_s)).await?;
        let (applied, current) = self.lwt_result(qr)?;
        if applied {
            return Ok(true);
        }
        if current.as_deref() != Some(holder) {
            return Ok(false);
        }
        let qr = self.exec(&self.st.lease_renew, (ttl_s, holder, name, holder)).await?;
        Ok(self.lwt_result(qr)?.0)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let _t = OpTimer::start("release_lease");
        let qr = self.exec(&self.st.lease_release, (name, holder)).await?;
        // not applied = held by someone else (or expired): nothing to release
        self.lwt_result(qr).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_range_checked() {
        assert_eq!(partition_of(0).expect("0"), 0);
        assert_eq!(partition_of(DELIVERY_PARTITIONS - 1).expect("63"), 63);
        assert_eq!(partition_of(DELIVERY_PARTITIONS).expect_err("64").code(), "invalid");
    }

    #[test]
    fn outbox_rows_decode_with_defaults() {
        let e = entry_from_ob(5, (10, "9999078900005488".into(), 7, Some(CqlTimestamp(1000)), None, Some(-1), None));
        assert_eq!(e.position(), (5, 10, "9999078900005488".to_owned(), 7));
        assert_eq!(e.next_attempt_at, Timestamp(1000), "due when queued");
        assert_eq!(e.attempts, 0);
        assert!(!e.done && !e.parked);
        let p = entry_from_park((
            1,
            2,
            "9999078900005488".into(),
            3,
            Some(CqlTimestamp(5)),
            Some(CqlTimestamp(9)),
            Some(4),
            Some(CqlTimestamp(6)),
        ));
        assert!(p.parked);
        assert_eq!(p.attempts, 4);
        assert_eq!(p.parked_at, Some(Timestamp(6)));
    }

    #[test]
    fn positions_order_like_the_outbox_clustering() {
        // the cursor compares (hour, pos, fn, fd) tuples like the table orders rows
        let start_of_hour: Position = (7, i64::MIN, String::new(), -1);
        let row: Position = (7, 0, "9999078900005488".into(), 1);
        let next_hour: Position = (8, i64::MIN, String::new(), -1);
        assert!(start_of_hour < row && row < next_hour);
    }
}
