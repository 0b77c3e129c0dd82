//! Reports on the embedded store: revenue totals, shifts and FD continuity, derived from
//! the stored documents off the acknowledgment path.
//!
//! The writer hands each committed group's new documents to [`Hub::feed`] (a bounded
//! channel; moving the records costs nothing) and goes on. One thread, `storage-reports`
//! ([`aggregator`]), folds them with the shared fold of `model::report` into per-FN state
//! and, every five seconds, writes what changed — each FN's [`Continuity`] together with the
//! totals and shifts it guards — as one mutation through the writer (so the single-writer,
//! full-disk and poisoning rules hold for it too). Continuity and aggregates are thus
//! always persisted together: after a crash, a document is folded if and only if the
//! persisted continuity of its FN holds its FD, and the thread's first job on start is to
//! fold every stored document that it does not hold (a skip-scan over the FNs of `docs`:
//! per FN, a range scan below the lowest FD, one per hole and one above the highest — a
//! few seeks when nothing is missing). If the channel is ever full, the writer drops the
//! hand-off and raises a flag; the thread then runs the same scan. A retransmission or a
//! conflicting copy is never handed over (the writer stored nothing), so it never counts.
//!
//! Keyspace `reports` (values binary, `codec`):
//!
//! | key                                              | value                  |
//! |--------------------------------------------------|------------------------|
//! | `c` · FN (16)                                    | RNM and continuity     |
//! | `b` · FN · 0 · local day (i64, ordered)          | `Totals` (binary)      |
//! | `b` · FN · 1 · UTC hour (i64, ordered)           | `Totals` (binary)      |
//! | `s` · FN · shift (u32 BE)                        | shift summary          |
//! | `g` · FN                                         | empty: the FN has holes |

mod aggregator;
mod codec;

use std::ops::{Bound, RangeInclusive};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};

use async_trait::async_trait;
use ffd::FnNumber;
use tokio::sync::watch;

use super::documents::scan_page;
use super::{EmbeddedStore, Engine, Ks, fj};
use crate::error::StoreError;
use crate::model::{Bucket, BucketTotals, DocumentRecord, FnContinuity, ShiftSummary, Totals};
use crate::store::{Page, PageRequest, ReportStore};

pub(crate) use aggregator::spawn;

/// Groups of new documents the channel holds before the writer stops handing them over
/// (the aggregator then finds them by a scan).
const CHANNEL_GROUPS: usize = 256;

/// What the writer, the aggregator thread and `settle` share.
pub(crate) struct Hub {
    tx: Mutex<Option<mpsc::SyncSender<Group>>>,
    /// The sequence number of the last group handed over (or dropped). The scan at start
    /// counts as group 1, so a `settle` right after opening waits for it.
    fed: AtomicU64,
    /// A group was dropped: the aggregator must scan.
    overflow: AtomicBool,
    /// Someone waits in `settle`: flush now.
    flush_now: AtomicBool,
    /// The highest sequence number whose group (and every earlier one) is persisted in
    /// the aggregates.
    flushed: watch::Sender<u64>,
}

/// A committed group's new documents, numbered in commit order.
pub(crate) type Group = (u64, Vec<DocumentRecord>);

impl Hub {
    pub(crate) fn new() -> (Self, mpsc::Receiver<Group>) {
        let (tx, rx) = mpsc::sync_channel(CHANNEL_GROUPS);
        let hub = Self {
            tx: Mutex::new(Some(tx)),
            fed: AtomicU64::new(1),
            overflow: AtomicBool::new(false),
            flush_now: AtomicBool::new(false),
            flushed: watch::channel(0).0,
        };
        (hub, rx)
    }

    /// Hands a committed group's new documents to the aggregator; never blocks. Called by
    /// the writer thread only, so sequence numbers follow the channel's order.
    pub(crate) fn feed(&self, docs: Vec<DocumentRecord>) {
        if docs.is_empty() {
            return;
        }
        let seq = self.fed.fetch_add(1, Ordering::SeqCst) + 1;
        let sent = match self.tx.lock() {
            Ok(tx) => tx.as_ref().is_some_and(|tx| tx.try_send((seq, docs)).is_ok()),
            Err(_) => false,
        };
        if !sent {
            self.overflow.store(true, Ordering::SeqCst);
        }
    }

    /// Asks the aggregator for a scan: a group's documents may be stored without having
    /// been handed over (a commit that failed with ENOSPC can still reach the journal).
    pub(crate) fn rescan(&self) {
        self.overflow.store(true, Ordering::SeqCst);
    }

    /// Stops the hand-off: the aggregator flushes what it has and exits.
    pub(crate) fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
    }

    /// Waits until every group handed over before the call is persisted in the aggregates.
    pub(crate) async fn settle(&self) -> Result<(), StoreError> {
        let target = self.fed.load(Ordering::SeqCst);
        let mut rx = self.flushed.subscribe();
        self.flush_now.store(true, Ordering::SeqCst);
        tokio::time::timeout(std::time::Duration::from_secs(60), rx.wait_for(|f| *f >= target))
            .await
            .map_err(|_| StoreError::Unavailable("report aggregates did not catch up within 60 s".into()))?
            .map_err(|_| StoreError::Closed)?;
        Ok(())
    }
}

/// Key builders of the `reports` keyspace.
pub(crate) mod key {
    use ffd::FnNumber;

    use crate::model::Bucket;

    pub(crate) fn continuity(f: &FnNumber) -> Vec<u8> {
        [b"c".as_slice(), f.as_bytes()].concat()
    }

    pub(crate) fn gapped(f: &FnNumber) -> Vec<u8> {
        [b"g".as_slice(), f.as_bytes()].concat()
    }

    pub(crate) fn bucket(f: &FnNumber, b: Bucket) -> Vec<u8> {
        let (kind, v) = match b {
            Bucket::Day(d) => (0u8, i64::from(d)),
            Bucket::UtcHour(h) => (1u8, h),
        };
        let v = ((v as u64) ^ (1 << 63)).to_be_bytes();
        [b"b".as_slice(), f.as_bytes(), &[kind], &v].concat()
    }

    pub(crate) fn shift(f: &FnNumber, s: u32) -> Vec<u8> {
        [b"s".as_slice(), f.as_bytes(), &s.to_be_bytes()].concat()
    }

    /// The bucket of a `b` key.
    pub(crate) fn bucket_of(k: &[u8]) -> Option<Bucket> {
        let kind = *k.get(17)?;
        let v = (u64::from_be_bytes(k.get(18..26)?.try_into().ok()?) ^ (1 << 63)) as i64;
        match kind {
            0 => Some(Bucket::Day(i32::try_from(v).ok()?)),
            1 => Some(Bucket::UtcHour(v)),
            _ => None,
        }
    }

    /// The FN of any key.
    pub(crate) fn fn_of(k: &[u8]) -> Option<FnNumber> {
        let b: [u8; 16] = k.get(1..17)?.try_into().ok()?;
        Some(FnNumber::from_ascii(&b))
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("reports: unreadable {what}"))
}

pub(crate) fn read_continuity(eng: &Engine, f: &FnNumber) -> Result<Option<FnContinuity>, StoreError> {
    match eng.ks(Ks::Reports).get(key::continuity(f)).map_err(fj("read continuity"))? {
        Some(v) => codec::decode_continuity(&v)
            .map(|(rnm, continuity)| Some(FnContinuity { fn_number: *f, rnm, continuity }))
            .ok_or_else(|| corrupt("continuity")),
        None => Ok(None),
    }
}

pub(crate) fn read_totals(eng: &Engine, f: &FnNumber, b: Bucket) -> Result<Option<Totals>, StoreError> {
    match eng.ks(Ks::Reports).get(key::bucket(f, b)).map_err(fj("read totals"))? {
        Some(v) => Totals::decode(&v).map(|(t, _)| Some(t)).ok_or_else(|| corrupt("totals")),
        None => Ok(None),
    }
}

pub(crate) fn read_shift(eng: &Engine, f: &FnNumber, s: u32) -> Result<Option<ShiftSummary>, StoreError> {
    match eng.ks(Ks::Reports).get(key::shift(f, s)).map_err(fj("read shift"))? {
        Some(v) => codec::decode_shift(&v).map(Some).ok_or_else(|| corrupt("shift")),
        None => Ok(None),
    }
}

fn bucket_rows(
    eng: &Engine,
    f: &FnNumber,
    lo: Bucket,
    hi: Bucket,
    out: &mut Vec<BucketTotals>,
) -> Result<(), StoreError> {
    for g in eng.ks(Ks::Reports).range(key::bucket(f, lo)..=key::bucket(f, hi)) {
        let (k, v) = g.into_inner().map_err(fj("scan totals"))?;
        let bucket = key::bucket_of(&k).ok_or_else(|| corrupt("totals key"))?;
        let (totals, _) = Totals::decode(&v).ok_or_else(|| corrupt("totals"))?;
        out.push(BucketTotals { fn_number: *f, bucket, totals });
    }
    Ok(())
}

#[async_trait]
impl ReportStore for EmbeddedStore {
    async fn report_totals(
        &self,
        fns: &[FnNumber],
        days: RangeInclusive<i32>,
    ) -> Result<Vec<BucketTotals>, StoreError> {
        let fns = fns.to_vec();
        self.read(move |eng| {
            let mut out = Vec::new();
            if days.start() > days.end() {
                return Ok(out);
            }
            let (first, last) = (i64::from(*days.start()), i64::from(*days.end()));
            for f in &fns {
                bucket_rows(eng, f, Bucket::Day(*days.start()), Bucket::Day(*days.end()), &mut out)?;
                let hours = Bucket::UtcHour((first - 1) * 24)..=Bucket::UtcHour((last + 2) * 24 - 1);
                bucket_rows(eng, f, *hours.start(), *hours.end(), &mut out)?;
            }
            Ok(out)
        })
        .await
    }

    async fn shifts(
        &self,
        fn_number: &FnNumber,
        shifts: RangeInclusive<u32>,
        page: PageRequest,
    ) -> Result<Page<ShiftSummary>, StoreError> {
        let f = *fn_number;
        self.read(move |eng| {
            if shifts.start() > shifts.end() {
                return Ok(Page { items: Vec::new(), next: None });
            }
            let lo = Bound::Included(key::shift(&f, *shifts.start()));
            let hi = Bound::Included(key::shift(&f, *shifts.end()));
            scan_page(eng.ks(Ks::Reports), lo, hi, false, &page, |_, v| {
                codec::decode_shift(v).map(Some).ok_or_else(|| corrupt("shift"))
            })
        })
        .await
    }

    async fn continuity(&self, fns: &[FnNumber]) -> Result<Vec<FnContinuity>, StoreError> {
        let fns = fns.to_vec();
        self.read(move |eng| {
            let mut out = Vec::with_capacity(fns.len());
            for f in &fns {
                out.extend(read_continuity(eng, f)?);
            }
            Ok(out)
        })
        .await
    }

    async fn gapped_fns(&self, page: PageRequest) -> Result<Page<FnContinuity>, StoreError> {
        self.read(move |eng| {
            let lo = Bound::Included(b"g".to_vec());
            let hi = Bound::Excluded(b"h".to_vec());
            scan_page(eng.ks(Ks::Reports), lo, hi, false, &page, |k, _| {
                let f = key::fn_of(k).ok_or_else(|| corrupt("gap index key"))?;
                read_continuity(eng, &f)
            })
        })
        .await
    }
}
