//! `DocumentStore`: the append path and document reads.
//!
//! # The append protocol (per new document)
//!
//! 1. **Dedup read** of `documents` at the read consistency (LOCAL_QUORUM). Found: the
//!    outcome is `Duplicate` with the stored ack; nothing is written. A document found at
//!    LOCAL_QUORUM is on a quorum afterwards (the coordinator's blocking read repair), so
//!    even the leftovers of an earlier failed attempt are durable once we answer with them.
//! 2. **Side rows**, concurrently: the time-index row, the outbox entry, the delivery state
//!    (adding the entry to its `positions`), and the bucket directories. Every cell is
//!    written with the *attempt timestamp* (receive time in µs + a tie-breaker).
//! 3. **Commit**: one logged batch per register holding the `documents` rows and the
//!    register's activity (read once, folded with `RegisterActivity::absorb`). The
//!    `documents` row is the commit record: it is written only after every side row was
//!    acknowledged at the configured consistency, so "the document exists" implies "it is
//!    queued for the FNS and indexed", and a retry that finds it (step 1) can answer at once.
//!    The batch log makes the document row and the activity update apply together.
//! 4. **Read-back** of the document row: if another attempt (a retransmission that raced
//!    on another node) won the last-write-wins race, answer with *its* ack as a duplicate.
//!
//! Any error in 1–4 fails the whole call (unknown outcome: the gateway acknowledges
//! nothing and the register retries; every write above is an idempotent upsert). The call
//! returns `Durability::Durable` only after every write returned at the configured
//! consistency.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use ffd::FnNumber;
use scylla::serialize::row::SerializeRow;
use scylla::value::CqlTimestamp;

use super::keys::{self, Cursor, day_of, fd_bucket, fn_text};
use super::rows::{DocRow, EncodedDoc, from_json, to_json, ts};
use super::store::{OpTimer, ScyllaStore, dir_ttl, ordered, unordered};
use crate::error::StoreError;
use crate::ids::{Rnm, Timestamp};
use crate::model::{AppendOutcome, DocumentKey, DocumentRecord, RegisterActivity, delivery_partition};
use crate::store::{Committed, DocumentStore, Durability, Page, PageRequest};

/// At most this many documents (or bytes of containers) go into one commit batch;
/// ScyllaDB warns above 128 KiB per batch and fails above 1 MiB by default.
const COMMIT_BATCH_DOCS: usize = 32;
const COMMIT_BATCH_BYTES: usize = 96 * 1024;

/// The stored (ack, raw) a key resolved to, for in-call duplicates.
#[derive(Debug, Clone)]
struct Winner {
    ack: Bytes,
    raw: Bytes,
}

impl ScyllaStore {
    /// Reads a whole document.
    pub(super) async fn read_doc(&self, fn_text: &str, fd: u32) -> Result<Option<DocRow>, StoreError> {
        self.one::<DocRow>(&self.st.doc_get, (fn_text, fd_bucket(fd), keys::fd_value(fd))).await
    }

    /// Reads a register's activity and the write time of its row.
    pub(super) async fn read_activity(&self, rnm: &Rnm) -> Result<(RegisterActivity, Option<i64>), StoreError> {
        let row: Option<(Option<String>, Option<i64>)> = self.one(&self.st.act_get, (rnm.as_str(),)).await?;
        match row {
            Some((Some(body), wt)) => Ok((from_json(&format!("activity of {rnm}"), &body)?, wt)),
            _ => Ok((RegisterActivity::default(), None)),
        }
    }

    /// Step 2 of the protocol for one document.
    async fn write_side_rows(&self, d: &EncodedDoc<'_>) -> Result<(), StoreError> {
        let doc = d.doc;
        let day = day_of(doc.received_at);
        let pos = keys::monotonic_now();
        let hour = keys::hour_of_pos(pos);
        let partition = i16::try_from(delivery_partition(&doc.fn_number))
            .map_err(|_| StoreError::Invalid("delivery partition out of range".into()))?;
        let received = ts(doc.received_at);
        let idx = self.write(
            &self.st.idx_insert,
            (doc.rnm.as_str(), day, received, d.fn_text.as_str(), d.fd, i16::from(doc.doc_type), d.write_ts),
        );
        let outbox = self.write(
            &self.st.ob_insert,
            (partition, hour, pos, d.fn_text.as_str(), d.fd, received, received, d.write_ts),
        );
        let delivery = self.write(
            &self.st.dlv_queue,
            (d.write_ts, received, received, vec![(hour, pos)], d.fn_text.as_str(), d.bucket, d.fd),
        );
        let fn_dir = self.dir_int("fn_docs", &d.fn_text, i64::from(d.bucket), dir_ttl::fn_docs());
        let reg_dir = self.dir_int("reg_docs", doc.rnm.as_str(), i64::from(day), dir_ttl::reg_docs());
        futures::try_join!(idx, outbox, delivery, fn_dir, reg_dir)?;
        Ok(())
    }

    /// Steps 2–4 for the new documents of one register, in their order in the call.
    async fn append_register(
        &self,
        rnm: &Rnm,
        docs: Vec<(usize, &EncodedDoc<'_>)>,
    ) -> Result<Vec<(usize, AppendOutcome, Winner)>, StoreError> {
        // One activity read-modify-write per register at a time in this process. A task
        // holds at most one register stripe and takes it after all its key stripes, so
        // this cannot deadlock. (Two gateway nodes appending for one register at the same
        // moment can still lose an activity update: see docs/scylla.md.)
        let stripe = (keys::fnv1a(rnm.as_str().as_bytes()) % super::store::KEY_LOCK_STRIPES as u64) as usize;
        let _register_guard = match self.register_locks.get(stripe) {
            Some(m) => Some(m.lock().await),
            None => None,
        };
        let (mut activity, act_wt) = self.read_activity(rnm).await?;

        let started = Instant::now();
        let futs: Vec<_> = docs.iter().map(|(_, d)| self.write_side_rows(d)).collect();
        unordered(futs, self.cfg.append_concurrency).await?;
        // The outbox cursor of the forwarders passes positions older than
        // `outbox_settle`; an entry must be visible well before that, or its document
        // must not be committed (so the register's retry writes a fresh entry).
        if started.elapsed() > self.cfg.outbox_settle() / 2 {
            return Err(StoreError::Timeout(format!(
                "queueing took {} ms, more than half of outbox_settle_ms; not committed",
                started.elapsed().as_millis()
            )));
        }

        let mut act_ts = keys::update_timestamp(act_wt);
        let mut out = Vec::with_capacity(docs.len());
        for chunk in chunks(&docs) {
            for (_, d) in chunk {
                activity.absorb(d.doc);
            }
            let body = to_json(&activity)?;
            let mut stmts = Vec::with_capacity(chunk.len() + 1);
            let mut values: Vec<Box<dyn SerializeRow + Send + Sync + '_>> = Vec::with_capacity(chunk.len() + 1);
            for (_, d) in chunk {
                stmts.push(&self.st.doc_insert);
                values.push(Box::new(d.insert_values()));
            }
            stmts.push(&self.st.act_put);
            values.push(Box::new((rnm.as_str(), body, act_ts)));
            self.logged_batch(stmts, values).await?;
            act_ts = act_ts.saturating_add(1);

            let futs: Vec<_> = chunk
                .iter()
                .map(|(i, d)| async move {
                    let stored = self.read_doc(&d.fn_text, d.doc.fd).await?.ok_or_else(|| {
                        StoreError::Io(format!(
                            "document {}/{} not visible after a successful write",
                            d.doc.fn_number, d.doc.fd
                        ))
                    })?;
                    let stored_ack = stored.ack.unwrap_or_default();
                    let stored_raw = stored.raw.unwrap_or_default();
                    let ours =
                        stored.received_at == Some(CqlTimestamp(d.doc.received_at.millis())) && stored_ack == d.doc.ack;
                    let outcome = if ours {
                        AppendOutcome::Stored
                    } else {
                        tracing::info!(
                            fn_number = %d.doc.fn_number,
                            fd = d.doc.fd,
                            "a concurrent attempt for the same document won; answering with its ack"
                        );
                        AppendOutcome::Duplicate { ack: stored_ack.clone(), identical: stored_raw == d.doc.raw }
                    };
                    Ok::<_, StoreError>((*i, outcome, Winner { ack: stored_ack, raw: stored_raw }))
                })
                .collect();
            out.extend(ordered(futs, self.cfg.append_concurrency).await?);
        }
        Ok(out)
    }

    async fn append_impl(&self, docs: Vec<DocumentRecord>) -> Result<Committed, StoreError> {
        self.check_open()?;
        let encoded = docs.iter().map(EncodedDoc::new).collect::<Result<Vec<_>, _>>()?;

        // First occurrence of each key; later ones are answered from it.
        let mut first: HashMap<DocumentKey, usize> = HashMap::new();
        let mut unique = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            if let std::collections::hash_map::Entry::Vacant(e) = first.entry(d.key()) {
                e.insert(i);
                unique.push(i);
            }
        }

        // Appends of the same (FN, FD) in this process run one after the other: the
        // second one's dedup read then finds the first one's document. (Across gateway
        // nodes the race is resolved by last-write-wins plus the read-back of step 4.)
        // Stripes are locked in ascending order, so overlapping calls cannot deadlock.
        let mut stripes: Vec<usize> = unique.iter().map(|&i| lock_stripe(&docs[i].key())).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut _guards = Vec::with_capacity(stripes.len());
        for s in stripes {
            if let Some(m) = self.key_locks.get(s) {
                _guards.push(m.lock().await);
            }
        }

        // 1. dedup reads
        let futs: Vec<_> = unique
            .iter()
            .map(|&i| {
                let d = &encoded[i];
                async move { Ok::<_, StoreError>((i, self.read_doc(&d.fn_text, d.doc.fd).await?)) }
            })
            .collect();
        let existing: Vec<(usize, Option<DocRow>)> = ordered(futs, self.cfg.append_concurrency).await?;

        let mut outcomes: Vec<Option<AppendOutcome>> = vec![None; docs.len()];
        let mut winners: HashMap<DocumentKey, Winner> = HashMap::new();
        let mut by_register: Vec<(Rnm, Vec<(usize, &EncodedDoc<'_>)>)> = Vec::new();
        for (i, row) in existing {
            let d = &encoded[i];
            match row {
                Some(stored) => {
                    let ack = stored.ack.unwrap_or_default();
                    let raw = stored.raw.unwrap_or_default();
                    outcomes[i] = Some(AppendOutcome::Duplicate { ack: ack.clone(), identical: raw == d.doc.raw });
                    winners.insert(d.doc.key(), Winner { ack, raw });
                }
                None => match by_register.iter_mut().find(|(r, _)| *r == d.doc.rnm) {
                    Some((_, v)) => v.push((i, d)),
                    None => by_register.push((d.doc.rnm.clone(), vec![(i, d)])),
                },
            }
        }

        // 2–4, registers concurrently, each register's documents in order
        let futs: Vec<_> = by_register.iter().map(|(rnm, list)| self.append_register(rnm, list.clone())).collect();
        let results = unordered(futs, self.cfg.append_concurrency).await?;
        for (i, outcome, winner) in results.into_iter().flatten() {
            winners.insert(docs[i].key(), winner);
            outcomes[i] = Some(outcome);
        }

        // in-call duplicates
        let mut out = Vec::with_capacity(docs.len());
        for (i, d) in docs.iter().enumerate() {
            let o = match outcomes[i].take() {
                Some(o) => o,
                None => {
                    let w = winners
                        .get(&d.key())
                        .ok_or_else(|| StoreError::Io(format!("no outcome for document {}/{}", d.fn_number, d.fd)))?;
                    AppendOutcome::Duplicate { ack: w.ack.clone(), identical: w.raw == d.raw }
                }
            };
            out.push(o);
        }
        Ok(Committed {
            outcomes: out,
            // Every write above returned at the configured (majority) consistency; a
            // caller asking for `Buffered` gets the same: there is nothing cheaper that is
            // safe to offer.
            durability: Durability::Durable,
        })
    }
}

/// The lock stripe of a document key.
fn lock_stripe(k: &DocumentKey) -> usize {
    let mut bytes = [0u8; 20];
    bytes[..16].copy_from_slice(k.fn_number.as_bytes());
    bytes[16..].copy_from_slice(&k.fd.to_be_bytes());
    (keys::fnv1a(&bytes) % super::store::KEY_LOCK_STRIPES as u64) as usize
}

/// Splits a register's documents into commit batches bounded in count and bytes.
fn chunks<'a, 'b>(docs: &'a [(usize, &'b EncodedDoc<'b>)]) -> Vec<&'a [(usize, &'b EncodedDoc<'b>)]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, (_, d)) in docs.iter().enumerate() {
        let size = d.doc.raw.len() + d.doc.ack.len() + 256;
        if i > start && (i - start >= COMMIT_BATCH_DOCS || bytes + size > COMMIT_BATCH_BYTES) {
            out.push(&docs[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < docs.len() {
        out.push(&docs[start..]);
    }
    out
}

#[async_trait]
impl DocumentStore for ScyllaStore {
    async fn append_documents(
        &self,
        docs: Vec<DocumentRecord>,
        _durability: Durability,
    ) -> Result<Committed, StoreError> {
        let _t = OpTimer::start("append_documents");
        if docs.is_empty() {
            self.check_open()?;
            return Ok(Committed { outcomes: Vec::new(), durability: Durability::Durable });
        }
        self.append_impl(docs).await
    }

    async fn get_document(&self, key: &DocumentKey) -> Result<Option<DocumentRecord>, StoreError> {
        let _t = OpTimer::start("get_document");
        let f = fn_text(&key.fn_number)?;
        self.read_doc(&f, key.fd).await?.map(DocRow::into_record).transpose()
    }

    async fn documents_by_fn(
        &self,
        fn_number: &FnNumber,
        fds: RangeInclusive<u32>,
        page: PageRequest,
    ) -> Result<Page<DocumentRecord>, StoreError> {
        let _t = OpTimer::start("documents_by_fn");
        let limit = page.effective_limit();
        let after = Cursor::decode_as(page.cursor.as_deref(), |c| match c {
            Cursor::FnDocs { fd } => Some(fd),
            _ => None,
        })?;
        let start = match after {
            Some(fd) => match fd.checked_add(1) {
                Some(s) => s.max(*fds.start()),
                None => return Ok(Page { items: Vec::new(), next: None }),
            },
            None => *fds.start(),
        };
        let end = *fds.end();
        if start > end {
            return Ok(Page { items: Vec::new(), next: None });
        }
        let f = fn_text(fn_number)?;
        let buckets =
            self.dir_int_range("fn_docs", &f, i64::from(fd_bucket(start)), i64::from(fd_bucket(end)), false).await?;
        let mut items: Vec<DocumentRecord> = Vec::new();
        for b in buckets {
            let b = i32::try_from(b).map_err(|_| StoreError::Corrupt(format!("FD bucket {b} out of range")))?;
            let lo = i64::from(b) * i64::from(keys::FD_BUCKET);
            let hi = lo + i64::from(keys::FD_BUCKET) - 1;
            let want = i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX);
            let rows: Vec<DocRow> = self
                .rows(&self.st.doc_range, (f.as_str(), b, lo.max(i64::from(start)), hi.min(i64::from(end)), want))
                .await?;
            for r in rows {
                items.push(r.into_record()?);
            }
            if items.len() > limit {
                break;
            }
        }
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|d| Cursor::FnDocs { fd: d.fd }.encode())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn documents_by_register(
        &self,
        rnm: &Rnm,
        from: Timestamp,
        to: Timestamp,
        page: PageRequest,
    ) -> Result<Page<DocumentRecord>, StoreError> {
        let _t = OpTimer::start("documents_by_register");
        let limit = page.effective_limit();
        let after = Cursor::decode_as(page.cursor.as_deref(), |c| match c {
            Cursor::RegDocs { at, fn_text, fd } => Some((at, fn_text, fd)),
            _ => None,
        })?;
        if from >= to {
            return Ok(Page { items: Vec::new(), next: None });
        }
        // Exclusive lower bound (received_at, fn, fd); "" sorts before every FN.
        let (mut at, mut fnt, mut fdv): (i64, String, i64) = match after {
            Some((at, f, fd)) if at >= from.millis() => (at, f, i64::from(fd)),
            _ => (from.millis(), String::new(), -1),
        };
        let days = self
            .dir_int_range(
                "reg_docs",
                rnm.as_str(),
                i64::from(day_of(Timestamp(at))),
                i64::from(day_of(Timestamp(to.millis() - 1))),
                false,
            )
            .await?;
        // Index rows looked at before this call gives up and returns a cursor (rows whose
        // document is missing or superseded are skipped; they are rare).
        let mut budget = limit * 10 + 1000;
        let mut items: Vec<DocumentRecord> = Vec::new();
        let mut out_of_budget = false;
        'days: for day in days {
            let day = i32::try_from(day).map_err(|_| StoreError::Corrupt(format!("day {day} out of range")))?;
            loop {
                let fetch = (limit + 1 - items.len()).clamp(16, 1000);
                let rows: Vec<(CqlTimestamp, String, i64)> = self
                    .rows(
                        &self.st.idx_after,
                        (rnm.as_str(), day, CqlTimestamp(at), fnt.as_str(), fdv, i32::try_from(fetch).unwrap_or(1000)),
                    )
                    .await?;
                let got = rows.len();
                let in_range: Vec<_> = rows.into_iter().take_while(|(t, _, _)| t.0 < to.millis()).collect();
                let passed_to = in_range.len() < got;
                let futs: Vec<_> = in_range
                    .into_iter()
                    .map(|(t, f, fd)| async move {
                        let doc = self.read_doc(&f, keys::fd_from_value(fd)?).await?;
                        Ok::<_, StoreError>((t, f, fd, doc))
                    })
                    .collect();
                let checked = ordered(futs, self.cfg.append_concurrency).await?;
                for (t, f, fd, doc) in checked {
                    budget = budget.saturating_sub(1);
                    (at, fnt, fdv) = (t.0, f, fd);
                    let Some(doc) = doc else { continue };
                    // index rows of attempts that lost a race, or never committed
                    if doc.received_at == Some(t) && doc.rnm.as_deref() == Some(rnm.as_str()) {
                        items.push(doc.into_record()?);
                        if items.len() > limit {
                            break 'days;
                        }
                    }
                }
                if passed_to {
                    break 'days;
                }
                if budget == 0 {
                    out_of_budget = true;
                    break 'days;
                }
                if got < fetch {
                    break; // this day is exhausted
                }
            }
        }
        let next = if items.len() > limit {
            items.truncate(limit);
            match items.last() {
                Some(d) => Some(
                    Cursor::RegDocs { at: d.received_at.millis(), fn_text: fn_text(&d.fn_number)?, fd: d.fd }.encode(),
                ),
                None => None,
            }
        } else if out_of_budget {
            // gave up early: continue after the last index row looked at
            Some(Cursor::RegDocs { at, fn_text: fnt, fd: keys::fd_from_value(fdv)? }.encode())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DocumentRecord;

    fn doc(fd: u32, raw_len: usize) -> DocumentRecord {
        DocumentRecord {
            fn_number: FnNumber::parse_strict("9999078900005488").expect("fn"),
            fd,
            rnm: Rnm::parse("0000000005008570").expect("rnm"),
            doc_type: 3,
            ffd_version: None,
            doc_time: None,
            received_at: Timestamp(1),
            total: None,
            fiscal_sign: None,
            response_code: 0,
            flk_error: None,
            opaque: false,
            telemetry: None,
            raw: Bytes::from(vec![0u8; raw_len]),
            ack: Bytes::from_static(b"a"),
        }
    }

    #[test]
    fn commit_batches_are_bounded_in_count_and_bytes() {
        let docs: Vec<DocumentRecord> = (0..70).map(|i| doc(i, 100)).collect();
        let enc: Vec<EncodedDoc<'_>> = docs.iter().map(|d| EncodedDoc::new(d).expect("enc")).collect();
        let list: Vec<(usize, &EncodedDoc<'_>)> = enc.iter().enumerate().collect();
        let c = chunks(&list);
        assert_eq!(c.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![32, 32, 6]);
        // big containers: bounded by bytes, but never an empty batch
        let big: Vec<DocumentRecord> = (0..5).map(|i| doc(i, 40_000)).collect();
        let enc: Vec<EncodedDoc<'_>> = big.iter().map(|d| EncodedDoc::new(d).expect("enc")).collect();
        let list: Vec<(usize, &EncodedDoc<'_>)> = enc.iter().enumerate().collect();
        let c = chunks(&list);
        assert_eq!(c.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![2, 2, 1]);
        let huge = [doc(1, 2_000_000)];
        let enc: Vec<EncodedDoc<'_>> = huge.iter().map(|d| EncodedDoc::new(d).expect("enc")).collect();
        let list: Vec<(usize, &EncodedDoc<'_>)> = enc.iter().enumerate().collect();
        assert_eq!(chunks(&list).len(), 1);
        assert!(chunks(&[]).is_empty());
    }
}
