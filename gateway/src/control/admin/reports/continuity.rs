//! Shifts and FD continuity of one register, and the fleet's FNs with gaps.

use axum::Json;
use axum::extract::State;
use ffd::FnNumber;
use serde::Deserialize;
use serde_json::{Value, json};
use storage::model::{FnContinuity, Register, ShiftSummary};
use storage::{Rnm, Timestamp};

use crate::control::admin::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use crate::control::admin::{Ctx, page_request};

/// Query of `GET /v1/registers/{rnm}/shifts`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ShiftsQuery {
    /// The FN (default: the register's current FN; any FN of its history).
    #[serde(rename = "fn")]
    #[param(rename = "fn")]
    fn_number: Option<String>,
    /// Lowest shift number (default 0).
    from_shift: Option<u32>,
    /// Highest shift number (default the highest).
    to_shift: Option<u32>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Query of `GET /v1/gaps`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct GapsQuery {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn load(ctx: &Ctx, rnm: &str) -> ApiResult<Register> {
    let rnm = Rnm::parse(rnm).map_err(|e| ApiError::invalid_param("rnm", e.to_string()))?;
    ctx.shared
        .store
        .get_register(&rnm)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("register {rnm} does not exist")).with_field("rnm"))
}

/// A 1012 time (local wall clock as Unix seconds) as written on the receipt.
fn local_time(secs: Option<i64>) -> Value {
    secs.and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| json!(jiff::tz::TimeZone::UTC.to_datetime(t).to_string()))
        .unwrap_or(Value::Null)
}

fn shift_json(s: &ShiftSummary) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("opened_local".into(), local_time(s.opened_at));
        o.insert("closed_local".into(), local_time(s.closed_at));
        o.insert("received_receipts".into(), json!(s.received.receipts()));
        o.insert("received_corrections".into(), json!(s.received.correction_count()));
        o.insert("check".into(), serde_json::to_value(s.check()).unwrap_or(Value::Null));
    }
    v
}

pub(super) async fn shifts(
    State(ctx): State<Ctx>,
    ApiPath(rnm): ApiPath<String>,
    ApiQuery(q): ApiQuery<ShiftsQuery>,
) -> ApiResult<Json<Value>> {
    let page = page_request(q.limit, q.cursor)?;
    let r = load(&ctx, &rnm).await?;
    let fn_number = match q.fn_number.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => r.fn_number,
        Some(s) => {
            let f = FnNumber::parse_strict(s).map_err(|e| ApiError::invalid_param("fn", e.to_string()))?;
            if !r.all_fns().any(|x| *x == f) {
                return Err(ApiError::not_found(format!("FN {f} is not an FN of register {}", r.rnm)).with_field("fn"));
            }
            f
        }
    };
    let (lo, hi) = (q.from_shift.unwrap_or(0), q.to_shift.unwrap_or(u32::MAX));
    if lo > hi {
        return Err(ApiError::invalid_param("to_shift", format!("{hi} is below from_shift ({lo})")));
    }
    let p = ctx.shared.store.shifts(&fn_number, lo..=hi, page).await?;
    let items: Vec<Value> = p.items.iter().map(shift_json).collect();
    let mismatches = p.items.iter().filter(|s| s.check().mismatch).count();
    Ok(Json(json!({
        "rnm": r.rnm,
        "fn_number": fn_number,
        "fns": r.all_fns().collect::<Vec<_>>(),
        "items": items,
        "mismatches": mismatches,
        "next": p.next,
    })))
}

fn continuity_json(c: &FnContinuity, now: Timestamp) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        let oldest = c.continuity.oldest_hole_since();
        o.insert("missing".into(), json!(c.continuity.missing()));
        o.insert("oldest_hole_since".into(), json!(oldest));
        o.insert("oldest_hole_age_secs".into(), json!(oldest.map(|t| now.since(t).as_secs())));
    }
    v
}

pub(super) async fn register_gaps(State(ctx): State<Ctx>, ApiPath(rnm): ApiPath<String>) -> ApiResult<Json<Value>> {
    let r = load(&ctx, &rnm).await?;
    let fns: Vec<FnNumber> = r.all_fns().copied().collect();
    let found = ctx.shared.store.continuity(&fns).await?;
    let now = Timestamp::now();
    let mut missing = 0;
    let items: Vec<Value> = fns
        .iter()
        .map(|f| match found.iter().find(|c| c.fn_number == *f) {
            Some(c) => {
                missing += c.continuity.missing();
                let mut v = continuity_json(c, now);
                v["current"] = json!(*f == r.fn_number);
                v
            }
            None => json!({"fn_number": f, "rnm": r.rnm, "current": *f == r.fn_number, "received": 0,
                "missing": 0, "holes": [], "low": null, "high": null}),
        })
        .collect();
    Ok(Json(json!({"rnm": r.rnm, "items": items, "missing": missing})))
}

pub(super) async fn fleet_gaps(State(ctx): State<Ctx>, ApiQuery(q): ApiQuery<GapsQuery>) -> ApiResult<Json<Value>> {
    let page = page_request(q.limit, q.cursor)?;
    let p = ctx.shared.store.gapped_fns(page).await?;
    let now = Timestamp::now();
    let missing: u64 = p.items.iter().map(|c| c.continuity.missing()).sum();
    let items: Vec<Value> = p.items.iter().map(|c| continuity_json(c, now)).collect();
    Ok(Json(json!({"items": items, "fns": items.len(), "missing": missing, "next": p.next})))
}
