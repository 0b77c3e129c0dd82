//! List registers with filters; show one with its FN history, activity and counts.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use storage::model::{Register, RegisterActivity, RegisterStatus};
use storage::{Inn, Page, PageRequest, RegisterFilter, Rnm, Timestamp};

use super::input::present;
use super::view::{RegisterView, acceptance, load, parse_rnm, view};
use crate::control::admin::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use crate::control::admin::{Ctx, page_request, parse_duration, parse_time};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    status: Option<String>,
    owner_inn: Option<String>,
    group: Option<String>,
    tariff: Option<String>,
    silent_for: Option<String>,
    paid_until_before: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// One row of a register list.
#[derive(Debug, Serialize)]
pub struct ListItem {
    /// The register.
    #[serde(flatten)]
    pub register: Register,
    /// Acceptance now.
    pub acceptance: &'static str,
    /// Last document received.
    pub last_seen: Option<Timestamp>,
    /// Highest FD of the last FN.
    pub last_fd: Option<u32>,
    /// Documents stored.
    pub documents: u64,
}

/// Registers scanned at most by one silent_for request (the filter needs activity, which
/// the store cannot filter on); the page is cut there and `next` continues.
pub(super) const MAX_SCAN: usize = 20_000;

pub(super) async fn list(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<ListQuery>) -> ApiResult<Json<Page<ListItem>>> {
    let status = match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some("active") => Some(RegisterStatus::Active),
        Some("suspended") => Some(RegisterStatus::Suspended),
        Some(other) => {
            return Err(ApiError::invalid_param("status", format!("{other:?} is not a status (active or suspended)")));
        }
    };
    let owner_inn = match present(&q.owner_inn) {
        Some(s) => Some(Inn::parse(s).map_err(|e| ApiError::invalid_param("owner_inn", e.to_string()))?),
        None => None,
    };
    let filter = RegisterFilter {
        status,
        owner_inn,
        group: present(&q.group).map(str::to_owned),
        tariff: present(&q.tariff).map(str::to_owned),
        paid_until_before: present(&q.paid_until_before).map(|s| parse_time("paid_until_before", s)).transpose()?,
    };
    let silent_for = present(&q.silent_for).map(|s| parse_duration("silent_for", s)).transpose()?;
    let page = page_request(q.limit, q.cursor)?;
    let limit = page.effective_limit();
    let now = Timestamp::now();
    let grace = ctx.shared.config.ingest.tariff_grace;
    let store = &ctx.shared.store;
    let mut items = Vec::new();
    let mut cursor = page.cursor.clone();
    let mut scanned = 0usize;
    loop {
        let want = u32::try_from(limit - items.len()).unwrap_or(PageRequest::MAX_LIMIT);
        let p = store.list_registers(&filter, PageRequest { limit: want, cursor: cursor.clone() }).await?;
        scanned += p.items.len();
        let rnms: Vec<Rnm> = p.items.iter().map(|r| r.rnm.clone()).collect();
        let acts: HashMap<Rnm, RegisterActivity> = store.get_activities(&rnms).await?.into_iter().collect();
        for r in p.items {
            let act = acts.get(&r.rnm);
            if let Some(d) = silent_for {
                let last = act.and_then(|a| a.last_seen).unwrap_or(r.created_at);
                if now.since(last) < d {
                    continue;
                }
            }
            items.push(ListItem {
                acceptance: acceptance(&r, now, grace),
                last_seen: act.and_then(|a| a.last_seen),
                last_fd: act.and_then(|a| a.last_fd),
                documents: act.map_or(0, |a| a.documents),
                register: r,
            });
        }
        cursor = p.next;
        if cursor.is_none() || items.len() >= limit || silent_for.is_none() || scanned >= MAX_SCAN {
            break;
        }
    }
    Ok(Json(Page { items, next: cursor }))
}

pub(super) async fn show(State(ctx): State<Ctx>, ApiPath(rnm): ApiPath<String>) -> ApiResult<Json<RegisterView>> {
    let rnm = parse_rnm(&rnm)?;
    let reg = load(&ctx, &rnm).await?;
    let activity = ctx.shared.store.get_activity(&rnm).await?.unwrap_or_default();
    Ok(Json(view(&ctx, reg, Some(activity))))
}

/// Every register `filter` selects, page after page; `None` once there are more than `max`
/// (the caller says how to narrow the request).
pub(crate) async fn collect(
    store: &dyn storage::Store,
    filter: &storage::RegisterFilter,
    max: usize,
) -> Result<Option<Vec<storage::model::Register>>, storage::StoreError> {
    let mut out = Vec::new();
    let mut page = storage::PageRequest::first(storage::PageRequest::MAX_LIMIT);
    loop {
        let p = store.list_registers(filter, page.clone()).await?;
        out.extend(p.items);
        if out.len() > max {
            return Ok(None);
        }
        match p.next {
            Some(c) => page.cursor = Some(c),
            None => return Ok(Some(out)),
        }
    }
}
