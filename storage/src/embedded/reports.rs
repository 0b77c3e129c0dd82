//! Reports (`ReportStore`): NOT BUILT YET for this backend — every call answers
//! `Unavailable`. Work in progress of issue 21.

use std::ops::RangeInclusive;

use async_trait::async_trait;
use ffd::FnNumber;

use super::EmbeddedStore;
use crate::error::StoreError;
use crate::model::{BucketTotals, FnContinuity, ShiftSummary};
use crate::store::{Page, PageRequest, ReportStore};

fn not_yet() -> StoreError {
    StoreError::Unavailable("reports are not built for this backend yet".into())
}

#[async_trait]
impl ReportStore for EmbeddedStore {
    async fn report_totals(
        &self,
        _fns: &[FnNumber],
        _days: RangeInclusive<i32>,
    ) -> Result<Vec<BucketTotals>, StoreError> {
        Err(not_yet())
    }

    async fn shifts(
        &self,
        _fn_number: &FnNumber,
        _shifts: RangeInclusive<u32>,
        _page: PageRequest,
    ) -> Result<Page<ShiftSummary>, StoreError> {
        Err(not_yet())
    }

    async fn continuity(&self, _fns: &[FnNumber]) -> Result<Vec<FnContinuity>, StoreError> {
        Err(not_yet())
    }

    async fn gapped_fns(&self, _page: PageRequest) -> Result<Page<FnContinuity>, StoreError> {
        Err(not_yet())
    }
}
