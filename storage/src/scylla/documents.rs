//! `DocumentStore`: the trait, and the reads of documents. The append path is in
//! `append`; the time index behind `documents_by_register` is written by the deriver
//! (`derive`) from the journal, a few hundred milliseconds after the acknowledgment.

use std::ops::RangeInclusive;

use async_trait::async_trait;
use ffd::FnNumber;
use scylla::value::CqlTimestamp;

use super::keys::{self, Cursor, day_of, fd_bucket, fn_text};
use super::rows::DocRow;
use super::store::{OpTimer, ScyllaStore, ordered};
use crate::error::StoreError;
use crate::ids::{Rnm, Timestamp};
use crate::model::{DocumentKey, DocumentRecord};
use crate::store::{Committed, DocumentStore, Durability, Page, PageRequest};

impl ScyllaStore {
    /// Reads a whole document.
    pub(super) async fn read_doc(&self, fn_text: &str, fd: u32) -> Result<Option<DocRow>, StoreError> {
        self.one::<DocRow>(&self.st.doc_get, (fn_text, fd_bucket(fd), keys::fd_value(fd))).await
    }
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

    async fn settle(&self) -> Result<(), StoreError> {
        self.settle_derived().await
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
