//! `ReportStore`: reads of the report aggregates the deriver folds (`fold`) into
//! `fn_reports` (one partition per FN) and `gapped_fns` (FNs with holes, by FN prefix).
//! They lag the appends by about a deriver round; `settle()` waits for them.

use std::collections::HashSet;
use std::ops::RangeInclusive;

use async_trait::async_trait;
use ffd::FnNumber;

use super::fold::{row_from, totals_from};
use super::keys::{Cursor, fn_from_text, fn_prefix, fn_text};
use super::rows::from_json;
use super::state::{Agg, kind};
use super::store::{OpTimer, ScyllaStore, ordered};
use crate::error::StoreError;
use crate::ids::Rnm;
use crate::model::{Bucket, BucketTotals, Continuity, FnContinuity, ShiftSummary};
use crate::store::{Page, PageRequest, ReportStore};

/// Reads in flight at once for one call.
const READS_AT_ONCE: usize = 32;
/// `gapped_fns` rows one call examines at most (a short page with a cursor beyond).
const GAPPED_EXAMINED_MAX: usize = 20_000;

/// The FNs of a request, each once, in the order given.
fn distinct(fns: &[FnNumber]) -> Vec<FnNumber> {
    let mut seen = HashSet::new();
    fns.iter().copied().filter(|f| seen.insert(*f)).collect()
}

impl ScyllaStore {
    /// The totals rows of one FN in a bucket range of one kind.
    async fn bucket_rows(&self, f: &FnNumber, k: i16, lo: i64, hi: i64) -> Result<Vec<BucketTotals>, StoreError> {
        if lo > hi {
            return Ok(Vec::new());
        }
        let t = fn_text(f)?;
        let rows: Vec<(i64, Option<String>, Option<Vec<u8>>)> =
            self.all_rows(&self.st.rep_range, (t.as_str(), k, lo, hi)).await?;
        rows.into_iter()
            .map(|(b, _, totals)| {
                let what = format!("report row {}/{k}/{b}", t.trim_end());
                let bucket = if k == kind::DAY {
                    Bucket::Day(i32::try_from(b).map_err(|_| StoreError::Corrupt(format!("{what}: day")))?)
                } else {
                    Bucket::UtcHour(b)
                };
                Ok(BucketTotals { fn_number: *f, bucket, totals: totals_from(totals.as_deref(), &what)? })
            })
            .collect()
    }

    /// Day buckets of `days`, then hour buckets from the day before to the day after.
    async fn fn_totals(&self, f: FnNumber, days: RangeInclusive<i32>) -> Result<Vec<BucketTotals>, StoreError> {
        let (lo, hi) = (i64::from(*days.start()), i64::from(*days.end()));
        if lo > hi {
            return Ok(Vec::new());
        }
        let mut out = self.bucket_rows(&f, kind::DAY, lo, hi).await?;
        out.extend(self.bucket_rows(&f, kind::HOUR, (lo - 1) * 24, (hi + 2) * 24 - 1).await?);
        Ok(out)
    }

    /// The continuity of one FN (stored form), `None` when nothing was received.
    async fn fn_continuity(&self, f: &str) -> Result<Option<FnContinuity>, StoreError> {
        let row: Option<(Option<String>, Option<String>)> = self.one(&self.st.rep_cont_get, (f,)).await?;
        let Some((rnm, Some(body))) = row else { return Ok(None) };
        let what = format!("continuity of {}", f.trim_end());
        let continuity: Continuity = from_json(&what, &body)?;
        if !continuity.is_consistent() {
            return Err(StoreError::Corrupt(format!("{what}: inconsistent holes")));
        }
        if continuity.received == 0 {
            return Ok(None);
        }
        let rnm = Rnm::parse(rnm.as_deref().unwrap_or_default())
            .map_err(|e| StoreError::Corrupt(format!("{what}: register: {e}")))?;
        Ok(Some(FnContinuity { fn_number: fn_from_text(f)?, rnm, continuity }))
    }
}

#[async_trait]
impl ReportStore for ScyllaStore {
    async fn report_totals(
        &self,
        fns: &[FnNumber],
        days: RangeInclusive<i32>,
    ) -> Result<Vec<BucketTotals>, StoreError> {
        let _t = OpTimer::start("report_totals");
        let futs: Vec<_> = distinct(fns).into_iter().map(|f| self.fn_totals(f, days.clone())).collect();
        Ok(ordered(futs, READS_AT_ONCE).await?.into_iter().flatten().collect())
    }

    async fn shifts(
        &self,
        fn_number: &FnNumber,
        shifts: RangeInclusive<u32>,
        page: PageRequest,
    ) -> Result<Page<ShiftSummary>, StoreError> {
        let _t = OpTimer::start("shifts");
        let limit = page.effective_limit();
        let after = Cursor::decode_as(page.cursor.as_deref(), |c| match c {
            Cursor::Shifts { shift } => Some(shift),
            _ => None,
        })?;
        let lo = match after {
            Some(s) => i64::from(s) + 1,
            None => i64::from(*shifts.start()),
        }
        .max(i64::from(*shifts.start()));
        let hi = i64::from(*shifts.end());
        if lo > hi {
            return Ok(Page { items: Vec::new(), next: None });
        }
        let f = fn_text(fn_number)?;
        let mut s = self
            .stream::<(i64, Option<String>, Option<Vec<u8>>)>(&self.st.rep_range, (f.as_str(), kind::SHIFT, lo, hi))
            .await?;
        let mut items = Vec::new();
        let mut more = false;
        while let Some((b, body, totals)) = self.next_row(&mut s).await? {
            if items.len() == limit {
                more = true;
                break;
            }
            match row_from(&f, (kind::SHIFT, b), body, totals, None)?.agg {
                Agg::Shift(summary) => items.push(summary),
                Agg::Bucket(_) => return Err(StoreError::Corrupt(format!("shift row {}/{b}", f.trim_end()))),
            }
        }
        let next = match (more, items.last()) {
            (true, Some(s)) => Some(Cursor::Shifts { shift: s.shift }.encode()),
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn continuity(&self, fns: &[FnNumber]) -> Result<Vec<FnContinuity>, StoreError> {
        let _t = OpTimer::start("continuity");
        let texts = distinct(fns).iter().map(fn_text).collect::<Result<Vec<_>, _>>()?;
        let futs: Vec<_> = texts.iter().map(|f| self.fn_continuity(f)).collect();
        Ok(ordered(futs, READS_AT_ONCE).await?.into_iter().flatten().collect())
    }

    /// Walks `gapped_fns` in FN order (prefixes through `directory_text`) and returns the
    /// FNs whose continuity still has holes (a row left behind by a failed deletion is
    /// skipped). Examines at most [`GAPPED_EXAMINED_MAX`] rows per call: the page may be
    /// short, with a cursor.
    async fn gapped_fns(&self, page: PageRequest) -> Result<Page<FnContinuity>, StoreError> {
        let _t = OpTimer::start("gapped_fns");
        let limit = page.effective_limit();
        let after = Cursor::decode_as(page.cursor.as_deref(), |c| match c {
            Cursor::GappedFns { fn_text } => Some(fn_text),
            _ => None,
        })?
        .unwrap_or_default();
        let start = fn_prefix(&after);
        let prefixes = self.dir_text_from("gapped_fns", "", &start).await?;
        let chunk = limit.min(READS_AT_ONCE * 4);
        let mut items = Vec::new();
        let mut examined = 0usize;
        let mut last: Option<String> = None;
        let mut more = false;
        'p: for p in prefixes {
            let from = if p == start { after.as_str() } else { "" };
            let mut s = self.stream::<(String,)>(&self.st.gap_after, (p.as_str(), from)).await?;
            let mut done = false;
            while !done {
                let mut batch = Vec::with_capacity(chunk);
                while batch.len() < chunk {
                    match self.next_row(&mut s).await? {
                        Some((f,)) => batch.push(f),
                        None => {
                            done = true;
                            break;
                        }
                    }
                }
                let futs: Vec<_> = batch.iter().map(|f| self.fn_continuity(f)).collect();
                let found = ordered(futs, READS_AT_ONCE).await?;
                for (f, c) in batch.into_iter().zip(found) {
                    if items.len() == limit || examined == GAPPED_EXAMINED_MAX {
                        more = true;
                        break 'p;
                    }
                    examined += 1;
                    last = Some(f);
                    items.extend(c.filter(|c| c.continuity.missing() > 0));
                }
            }
        }
        let next = match (more, last) {
            (true, Some(f)) => Some(Cursor::GappedFns { fn_text: f }.encode()),
            _ => None,
        };
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_each_fn_once_in_their_order() {
        let a = FnNumber::parse_strict("9999078900005488").expect("fn");
        let b = FnNumber::parse_strict("9999078900005489").expect("fn");
        assert_eq!(distinct(&[b, a, b, a]), vec![b, a]);
    }
}
