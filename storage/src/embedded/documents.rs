//! Documents (the hot path) and FNS delivery (the outbox) of the embedded store.

use std::ops::{Bound, RangeInclusive};
use std::time::{Duration, Instant};

use ffd::FnNumber;
use fjall::Keyspace;
use tokio::sync::oneshot;

use super::writer::{Request, Tx};
use super::{EmbeddedStore, Engine, Ks, META_PENDING, codec, fj, keys};
use crate::error::StoreError;
use crate::ids::{Rnm, Timestamp};
use crate::model::{BacklogStats, Delivery, DeliveryStatus, DocumentKey, DocumentRecord, delivery_partition};
use crate::store::{Committed, DeliveryStore, DocumentStore, Durability, Page, PageRequest};

/// Most deliveries one `due_deliveries` call returns.
const MAX_DUE: u32 = 10_000;

/// Scans `[lo, hi]` of `ks` (ascending, or descending when `reverse`), continuing after
/// the page's cursor, mapping each entry with `f` (which may skip it by returning
/// `None`). The cursor of the next page is the key of the last item returned; it is
/// `None` when no further matching item exists.
pub(crate) fn scan_page<T>(
    ks: &Keyspace,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    reverse: bool,
    page: &PageRequest,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<Option<T>, StoreError>,
) -> Result<Page<T>, StoreError> {
    let limit = page.effective_limit();
    let (lo, hi) = match &page.cursor {
        None => (lo, hi),
        Some(c) => {
            let c = keys::cursor_decode(c)?;
            let inside = match &lo {
                Bound::Included(l) => c >= *l,
                Bound::Excluded(l) => c > *l,
                Bound::Unbounded => true,
            } && match &hi {
                Bound::Included(h) => c <= *h,
                Bound::Excluded(h) => c < *h,
                Bound::Unbounded => true,
            };
            if !inside {
                return Err(StoreError::Invalid("page cursor does not belong to this query".into()));
            }
            if reverse { (lo, Bound::Excluded(c)) } else { (Bound::Excluded(c), hi) }
        }
    };
    let iter = ks.range::<Vec<u8>, _>((lo, hi));
    let iter: Box<dyn Iterator<Item = fjall::Guard>> = if reverse { Box::new(iter.rev()) } else { Box::new(iter) };
    let mut items = Vec::new();
    let mut last_key: Option<Vec<u8>> = None;
    let mut more = false;
    for g in iter {
        let (k, v) = g.into_inner().map_err(fj("scan"))?;
        if let Some(item) = f(&k, &v)? {
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(item);
            last_key = Some(k.to_vec());
        }
    }
    Ok(Page { items, next: if more { last_key.map(|k| keys::cursor_encode(&k)) } else { None } })
}

fn read_document(eng: &Engine, key: &DocumentKey) -> Result<Option<DocumentRecord>, StoreError> {
    match eng.ks(Ks::Docs).get(keys::doc(key)).map_err(fj("get document"))? {
        Some(v) => Ok(Some(codec::decode_document(key, &v)?)),
        None => Ok(None),
    }
}

#[async_trait::async_trait]
impl DocumentStore for EmbeddedStore {
    async fn append_documents(
        &self,
        docs: Vec<DocumentRecord>,
        durability: Durability,
    ) -> Result<Committed, StoreError> {
        self.shared.check()?;
        if docs.is_empty() {
            return Ok(Committed { outcomes: Vec::new(), durability });
        }
        let (reply, rx) = oneshot::channel();
        self.submit(Request::Append { docs, durability, reply }).await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn settle(&self) -> Result<(), StoreError> {
        // the time index and activity are written with the documents; the report
        // aggregates follow them
        self.shared.reports.settle().await
    }

    async fn get_document(&self, key: &DocumentKey) -> Result<Option<DocumentRecord>, StoreError> {
        let key = *key;
        self.read(move |eng| read_document(eng, &key)).await
    }

    async fn documents_by_fn(
        &self,
        fn_number: &FnNumber,
        fds: RangeInclusive<u32>,
        page: PageRequest,
    ) -> Result<Page<DocumentRecord>, StoreError> {
        let fn_number = *fn_number;
        self.read(move |eng| {
            if fds.start() > fds.end() {
                return Ok(Page { items: Vec::new(), next: None });
            }
            let lo = keys::doc_parts(&fn_number, *fds.start()).to_vec();
            let hi = keys::doc_parts(&fn_number, *fds.end()).to_vec();
            scan_page(eng.ks(Ks::Docs), Bound::Included(lo), Bound::Included(hi), false, &page, |k, v| {
                let key = keys::doc_decode_tail(k)?;
                Ok(Some(codec::decode_document(&key, v)?))
            })
        })
        .await
    }

    async fn documents_by_register(
        &self,
        rnm: &Rnm,
        from: Timestamp,
        to: Timestamp,
        page: PageRequest,
    ) -> Result<Page<DocumentRecord>, StoreError> {
        let rnm = rnm.clone();
        self.read(move |eng| {
            if from >= to {
                return Ok(Page { items: Vec::new(), next: None });
            }
            scan_page(
                eng.ks(Ks::DocsByRnm),
                Bound::Included(keys::by_rnm_bound(&rnm, from)),
                Bound::Excluded(keys::by_rnm_bound(&rnm, to)),
                false,
                &page,
                |k, _| {
                    let key = keys::doc_decode_tail(k)?;
                    match read_document(eng, &key)? {
                        Some(d) => Ok(Some(d)),
                        None => Err(StoreError::Corrupt(format!(
                            "register index names document {}/{} which is missing",
                            key.fn_number, key.fd
                        ))),
                    }
                },
            )
        })
        .await
    }
}

/// The delivery state of a document: its record, or — for a stored document without one
/// — never attempted, queued when it was received (see `DeliveryRec::untried`). `None`:
/// no such document.
fn read_delivery(eng: &Engine, key: &DocumentKey) -> Result<Option<Delivery>, StoreError> {
    let dk = keys::doc(key);
    if let Some(v) = eng.ks(Ks::Deliveries).get(dk).map_err(fj("get delivery"))? {
        return Ok(Some(codec::decode_delivery(&v)?.into_delivery(*key)));
    }
    match eng.ks(Ks::Docs).get(dk).map_err(fj("get document"))? {
        Some(v) => Ok(Some(codec::DeliveryRec::untried(codec::document_received_at(&v)?).into_delivery(*key))),
        None => Ok(None),
    }
}

/// The delivery state of a stored document as the writer sees it (staged writes first),
/// and whether it has a delivery record. With a record (attempted before — or stored by
/// the layout before untried entries) it is queued in `outbox` at its next attempt and,
/// while pending, in `outbox_age`; without one it was never attempted and is queued in
/// `outbox_untried` at its receive time. `None`: no such document.
fn staged_delivery(tx: &Tx<'_>, dk: &[u8]) -> Result<Option<(codec::DeliveryRec, bool)>, StoreError> {
    if let Some(v) = tx.get(Ks::Deliveries, dk)? {
        return Ok(Some((codec::decode_delivery(&v)?, true)));
    }
    match tx.get(Ks::Docs, dk)? {
        Some(v) => Ok(Some((codec::DeliveryRec::untried(codec::document_received_at(&v)?), false))),
        None => Ok(None),
    }
}

/// Up to `limit` entries of one partition of an outbox keyspace due at or before `now`,
/// oldest first, as (time, document key).
fn due_entries(
    eng: &Engine,
    ks: Ks,
    partition: u16,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<(Timestamp, DocumentKey)>, StoreError> {
    let lo = keys::outbox_bound(partition, Timestamp(i64::MIN));
    // Keys are partition · time · FN · FD: everything due at or before `now` sorts at or
    // below `partition · now · FF…FF`.
    let mut hi = keys::outbox_bound(partition, now);
    hi.extend_from_slice(&[0xFF; keys::DOC_KEY_LEN]);
    let mut out = Vec::new();
    for g in eng.ks(ks).range::<Vec<u8>, _>((Bound::Included(lo), Bound::Included(hi))).take(limit) {
        let k = g.key().map_err(fj("scan outbox"))?;
        out.push((keys::outbox_time(&k)?, keys::doc_decode_tail(&k)?));
    }
    Ok(out)
}

#[async_trait::async_trait]
impl DeliveryStore for EmbeddedStore {
    async fn due_deliveries(&self, partition: u16, now: Timestamp, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let limit = limit.min(MAX_DUE) as usize;
        self.read(move |eng| {
            // never attempted (no record to read) and attempted ones, merged by time
            let mut due: Vec<(Timestamp, DocumentKey, bool)> = Vec::new();
            due.extend(due_entries(eng, Ks::Untried, partition, now, limit)?.into_iter().map(|(t, k)| (t, k, false)));
            due.extend(due_entries(eng, Ks::Outbox, partition, now, limit)?.into_iter().map(|(t, k)| (t, k, true)));
            due.sort_unstable_by_key(|(t, k, _)| (*t, *k));
            due.truncate(limit);
            let mut out = Vec::with_capacity(due.len());
            for (at, key, attempted) in due {
                let rec = if attempted {
                    match eng.ks(Ks::Deliveries).get(keys::doc(&key)).map_err(fj("get delivery"))? {
                        Some(r) => codec::decode_delivery(&r)?,
                        None => {
                            return Err(StoreError::Corrupt(format!(
                                "outbox names {}/{} which has no delivery record",
                                key.fn_number, key.fd
                            )));
                        }
                    }
                } else {
                    codec::DeliveryRec::untried(at)
                };
                if rec.status != DeliveryStatus::Pending {
                    return Err(StoreError::Corrupt(format!(
                        "outbox names {}/{} which is not pending",
                        key.fn_number, key.fd
                    )));
                }
                out.push(rec.into_delivery(key));
            }
            Ok(out)
        })
        .await
    }

    async fn mark_delivered(&self, keys_: &[DocumentKey], at: Timestamp) -> Result<(), StoreError> {
        let list = keys_.to_vec();
        self.mutate_upkeep(move |tx| {
            for key in list {
                let dk = keys::doc(&key);
                let Some((mut d, recorded)) = staged_delivery(tx, &dk)? else {
                    continue;
                };
                if d.status != DeliveryStatus::Pending {
                    continue;
                }
                let partition = delivery_partition(&key.fn_number);
                if recorded {
                    tx.del(Ks::Outbox, keys::outbox(partition, d.next_attempt_at, &key));
                    tx.del(Ks::OutboxAge, keys::outbox_age(d.queued_at, &key));
                } else {
                    tx.del(Ks::Untried, keys::outbox(partition, d.queued_at, &key));
                }
                d.status = DeliveryStatus::Delivered;
                d.attempts = d.attempts.saturating_add(1);
                d.last_attempt_at = Some(at);
                d.delivered_at = Some(at);
                tx.put(Ks::Deliveries, dk, codec::encode_delivery(&d));
                tx.pending_delta(-1);
            }
            Ok(())
        })
        .await
    }

    async fn record_delivery_failure(
        &self,
        key: &DocumentKey,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        let key = *key;
        let error = error.to_owned();
        self.mutate_upkeep(move |tx| {
            let dk = keys::doc(&key);
            let Some((mut d, recorded)) = staged_delivery(tx, &dk)? else {
                return Err(StoreError::NotFound(format!("delivery of document {}/{}", key.fn_number, key.fd)));
            };
            if d.status != DeliveryStatus::Pending {
                // Delivered meanwhile (another attempt succeeded): nothing to reschedule.
                return Ok(());
            }
            let partition = delivery_partition(&key.fn_number);
            if recorded {
                tx.del(Ks::Outbox, keys::outbox(partition, d.next_attempt_at, &key));
            } else {
                // first failure: from the untried outbox to the retry outbox and the age index
                tx.del(Ks::Untried, keys::outbox(partition, d.queued_at, &key));
                tx.put(Ks::OutboxAge, keys::outbox_age(d.queued_at, &key), Vec::new());
            }
            tx.put(Ks::Outbox, keys::outbox(partition, next_attempt_at, &key), Vec::new());
            d.attempts = d.attempts.saturating_add(1);
            d.last_attempt_at = Some(Timestamp::now());
            d.next_attempt_at = next_attempt_at;
            d.last_error = Some(error);
            tx.put(Ks::Deliveries, dk, codec::encode_delivery(&d));
            Ok(())
        })
        .await
    }

    async fn get_delivery(&self, key: &DocumentKey) -> Result<Option<Delivery>, StoreError> {
        let key = *key;
        self.read(move |eng| read_delivery(eng, &key)).await
    }

    async fn backlog(&self) -> Result<BacklogStats, StoreError> {
        self.read(|eng| {
            let pending = match eng.ks(Ks::Meta).get(META_PENDING).map_err(fj("read outbox counter"))? {
                None => 0,
                Some(v) => u64::from_be_bytes(
                    (*v).try_into().map_err(|_| StoreError::Corrupt("outbox counter is not 8 bytes".into()))?,
                ),
            };
            // The oldest queued document: attempted ones are in the age index (first key);
            // never attempted ones sit in their partition's untried outbox in queue-time
            // order, so the first entry of each of the 64 partitions bounds them.
            let mut oldest_queued_at: Option<Timestamp> = None;
            let mut consider = |t: Timestamp| {
                oldest_queued_at = Some(oldest_queued_at.map_or(t, |o: Timestamp| o.min(t)));
            };
            if let Some(g) = eng.ks(Ks::OutboxAge).first_key_value() {
                let k = g.key().map_err(fj("scan outbox age"))?;
                let t: [u8; 8] = k
                    .get(..8)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| StoreError::Corrupt("outbox age key too short".into()))?;
                consider(keys::ts_decode(t));
            }
            if pending > 0 {
                for partition in 0..crate::model::DELIVERY_PARTITIONS {
                    if let Some(g) = eng.ks(Ks::Untried).prefix(partition.to_be_bytes()).next() {
                        consider(keys::outbox_time(&g.key().map_err(fj("scan untried outbox"))?)?);
                    }
                }
            }
            Ok(BacklogStats { pending, oldest_queued_at })
        })
        .await
    }

    async fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        // One process owns the directory, so leases live in memory: they only arbitrate
        // between tasks of this process.
        let mut leases = self.leases.lock().map_err(|_| StoreError::Io("lease table lock poisoned".into()))?;
        let now = Instant::now();
        match leases.get(name) {
            Some((h, until)) if h != holder && *until > now => Ok(false),
            _ => {
                leases.insert(name.to_owned(), (holder.to_owned(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut leases = self.leases.lock().map_err(|_| StoreError::Io("lease table lock poisoned".into()))?;
        if leases.get(name).is_some_and(|(h, _)| h == holder) {
            leases.remove(name);
        }
        Ok(())
    }
}
