//! The acknowledgment path: two replicated writes per document, one after the other.
//!
//! 1. **The document, first writer wins**: `INSERT INTO documents … IF NOT EXISTS` (a
//!    lightweight transaction at LOCAL_SERIAL, committed at LOCAL_QUORUM whatever the
//!    configured `consistency`: a first-writer decision must reach a quorum).
//!    Applied: this attempt's document and acknowledgment are stored. Not applied: the
//!    server returns the stored row in the same round trip — the answer is the stored
//!    acknowledgment (`Duplicate`), byte for byte, whichever gateway wrote it first. A
//!    driver retry of our own insert that finds our own row counts as applied.
//! 2. **The journal entry** of the document that is stored (ours, or the winner's for a
//!    duplicate): what the time index, the register activity and the FNS forwarder are
//!    derived from, after the acknowledgment. Written before answering, so every
//!    answered document has an entry; a crash between 1 and 2 answers nothing, and the
//!    register's retry (a duplicate) writes the entry.
//!
//! No read before the write, no logged batch, no read-back: a logged batch needed its
//! batch log on two other live nodes, which turned one dead node of three into a stall.
//! Any error is an unknown outcome: nothing is acknowledged and the register retries.
//! An entry that took more than half the settle time to write is not answered either
//! (a journal follower could have passed its position); the retry writes a fresh one.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use scylla::response::query_result::QueryResult;
use scylla::value::{CqlValue, Row};

use super::keys;
use super::rows::{DocRow, EncodedDoc};
use super::store::{ScyllaStore, unordered};
use crate::error::StoreError;
use crate::metrics::APPENDS_REFUSED_TOTAL;
use crate::model::{AppendOutcome, DocumentKey, DocumentRecord};
use crate::store::{Committed, Durability};

/// The stored (ack, raw) a key resolved to, for in-call duplicates.
#[derive(Debug, Clone)]
struct Winner {
    ack: Bytes,
    raw: Bytes,
}

/// What the conditional insert found.
#[derive(Debug)]
enum Insert {
    /// Our row is stored.
    Applied,
    /// Another attempt's row is stored.
    Existing(Box<DocumentRecord>),
}

impl ScyllaStore {
    pub(super) async fn append_impl(&self, docs: Vec<DocumentRecord>) -> Result<Committed, StoreError> {
        self.check_open()?;
        if let Err(e) = self.check_clock() {
            metrics::counter!(APPENDS_REFUSED_TOTAL, "reason" => "clock_skew").increment(1);
            return Err(e);
        }
        self.check_derived_lag(docs.iter().map(|d| crate::model::delivery_partition(&d.fn_number)))?;
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

        // Appends of the same (FN, FD) in this process run one after the other (the
        // conditional insert decides between processes). Stripes are locked in ascending
        // order, so overlapping calls cannot deadlock.
        let mut stripes: Vec<usize> = unique.iter().map(|&i| lock_stripe(&docs[i].key())).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut _guards = Vec::with_capacity(stripes.len());
        for s in stripes {
            if let Some(m) = self.key_locks.get(s) {
                _guards.push(m.lock().await);
            }
        }

        let futs: Vec<_> = unique
            .iter()
            .map(|&i| {
                let d = &encoded[i];
                async move { self.append_one(d).await.map(|r| (i, r)) }
            })
            .collect();
        let results = unordered(futs, self.cfg.append_concurrency).await?;
        let mut outcomes: Vec<Option<AppendOutcome>> = vec![None; docs.len()];
        let mut winners: HashMap<DocumentKey, Winner> = HashMap::new();
        for (i, (outcome, winner)) in results {
            winners.insert(docs[i].key(), winner);
            outcomes[i] = Some(outcome);
        }
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
        self.wake.notify_one();
        // Both writes of every stored document returned at the configured (majority)
        // consistency; a caller asking for `Buffered` gets the same: there is nothing
        // cheaper that is safe to offer.
        Ok(Committed { outcomes: out, durability: Durability::Durable })
    }

    /// Both writes of one document.
    async fn append_one(&self, d: &EncodedDoc<'_>) -> Result<(AppendOutcome, Winner), StoreError> {
        let doc = d.doc;
        let insert = {
            let _t = super::store::OpTimer::start("document_insert");
            self.insert_document(d).await?
        };
        let (outcome, stored, winner) = match insert {
            Insert::Applied => {
                (AppendOutcome::Stored, doc.clone(), Winner { ack: doc.ack.clone(), raw: doc.raw.clone() })
            }
            Insert::Existing(existing) => {
                let winner = Winner { ack: existing.ack.clone(), raw: existing.raw.clone() };
                let outcome =
                    AppendOutcome::Duplicate { ack: existing.ack.clone(), identical: existing.raw == doc.raw };
                (outcome, *existing, winner)
            }
        };
        let started = Instant::now();
        {
            let _t = super::store::OpTimer::start("journal_insert");
            let (part, _) = self.write_entry(&stored, matches!(outcome, AppendOutcome::Duplicate { .. })).await?;
            self.follow.mark_dirty(part);
        }
        if started.elapsed() > self.cfg.journal_settle() / 2 {
            metrics::counter!(APPENDS_REFUSED_TOTAL, "reason" => "slow_journal").increment(1);
            return Err(StoreError::Timeout(format!(
                "the journal entry took {} ms, more than half of journal_settle_ms; not acknowledged",
                started.elapsed().as_millis()
            )));
        }
        Ok((outcome, winner))
    }

    /// The conditional insert of step 1.
    async fn insert_document(&self, d: &EncodedDoc<'_>) -> Result<Insert, StoreError> {
        let attempt = uuid::Uuid::now_v7();
        let qr = self.exec(&self.st.doc_insert, d.insert_values(attempt)).await?;
        match conditional_row(qr)? {
            None => Ok(Insert::Applied),
            // a retry of our own insert (the driver repeats it on another coordinator
            // after a timeout, or a speculative execution raced it) finds our own row
            Some((_, Some(a))) if a == attempt => Ok(Insert::Applied),
            Some((row, _)) => Ok(Insert::Existing(Box::new(row.into_record()?))),
        }
    }
}

/// The result of `INSERT … IF NOT EXISTS`: `None` when applied, else the existing row and
/// the append call that wrote it. Columns are found by name: servers return the existing
/// row in table order, not in the insert's.
fn conditional_row(qr: QueryResult) -> Result<Option<(DocRow, Option<uuid::Uuid>)>, StoreError> {
    let rows = qr.into_rows_result().map_err(|e| super::errors::from_into_rows(&e))?;
    let names: Vec<String> = rows.column_specs().iter().map(|c| c.name().to_owned()).collect();
    let row = rows
        .maybe_first_row::<Row>()
        .map_err(|e| super::errors::from_maybe_first_row(&e))?
        .ok_or_else(|| StoreError::Io("conditional insert without a result row".into()))?;
    let mut cols: HashMap<&str, CqlValue> = HashMap::new();
    for (name, v) in names.iter().zip(row.columns) {
        if let Some(v) = v {
            cols.insert(name.as_str(), v);
        }
    }
    match cols.get("[applied]").and_then(CqlValue::as_boolean) {
        Some(true) => return Ok(None),
        Some(false) => {}
        None => return Err(StoreError::Corrupt("conditional insert without a boolean [applied]".into())),
    }
    let text = |n: &str| cols.get(n).and_then(|v| v.clone().into_string());
    let small = |n: &str| cols.get(n).and_then(CqlValue::as_smallint);
    let big = |n: &str| cols.get(n).and_then(CqlValue::as_bigint);
    let ts = |n: &str| cols.get(n).and_then(|v| v.as_cql_timestamp());
    let blob = |n: &str| cols.get(n).and_then(|v| v.clone().into_blob()).map(Bytes::from);
    let attempt = cols.get("attempt").and_then(CqlValue::as_uuid);
    Ok(Some((
        DocRow {
            fn_text: text("fn").ok_or_else(|| StoreError::Corrupt("existing document without fn".into()))?,
            fd: big("fd").ok_or_else(|| StoreError::Corrupt("existing document without fd".into()))?,
            rnm: text("rnm"),
            doc_type: small("doc_type"),
            ffd_version: small("ffd_version"),
            doc_time: ts("doc_time"),
            received_at: ts("received_at"),
            total: big("total"),
            fiscal_sign: big("fiscal_sign"),
            response_code: small("response_code"),
            flk_error: text("flk_error"),
            opaque: cols.get("opaque").and_then(CqlValue::as_boolean),
            telemetry: text("telemetry"),
            raw: blob("raw"),
            ack: blob("ack"),
        },
        attempt,
    )))
}

/// The lock stripe of a document key.
fn lock_stripe(k: &DocumentKey) -> usize {
    let mut bytes = [0u8; 20];
    bytes[..16].copy_from_slice(k.fn_number.as_bytes());
    bytes[16..].copy_from_slice(&k.fd.to_be_bytes());
    (keys::fnv1a(&bytes) % super::store::KEY_LOCK_STRIPES as u64) as usize
}
