//! Tariff plans and billing of registers: create/list/show plans; assign a plan to
//! registers (one, a list, or a filter), effective now or at the end of the paid period;
//! renew (extend `paid_until` by the plan period, one or in bulk).
//!
//! Rules (documented in `docs/admin-api.md`):
//! * assign `now`: `tariff` = plan, `next_tariff` cleared; a register with no paid period
//!   yet starts its first one now (`paid_until` = now + period);
//! * assign `period_end`: `next_tariff` = plan; it becomes `tariff` at the next renewal,
//!   whose period is the new plan's (a register with no paid period switches now);
//! * renew: plan = `next_tariff` or `tariff` (none → error); `paid_until` =
//!   max(paid_until, now) + periods × plan period — a register that expired starts its new
//!   period on the day of renewal, one still paid is extended from its end;
//! * bulk changes are all-or-nothing per call when any selected register is in error
//!   (422, nothing applied); they are written in chunks of 1,000 registers, each chunk
//!   audited as one entry with per-register before/after; `dry_run` only reports.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use storage::model::{Register, RegisterStatus, TariffPlan};
use storage::{Inn, PageRequest, RegisterFilter, Rnm, Timestamp};

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiJson, ApiPath, ApiResult, FieldError};
use super::registers::diff;
use super::{Ctx, Route, audit, parse_time};

/// Registers one bulk call may select at most.
pub const MAX_SELECTED: usize = 100_000;
/// Registers written (and audited) per chunk.
const CHUNK: usize = 1_000;
/// Registers listed in a bulk answer at most.
const MAX_LISTED: usize = 1_000;

/// Routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/v1/tariffs", Role::Viewer, "List tariff plans", list),
        Route::post("/v1/tariffs", "tariff.create", "Create a tariff plan", create)
            .body::<CreatePlan>()
            .answers(StatusCode::CREATED),
        Route::get("/v1/tariffs/{name}", Role::Viewer, "One tariff plan", show),
        Route::post(
            "/v1/tariffs/assign",
            "tariff.assign",
            "Assign a plan to registers (rnms or filter), now or at the end of the paid period",
            assign,
        )
        .body::<AssignRequest>(),
        Route::post(
            "/v1/tariffs/renew",
            "tariff.renew",
            "Extend paid_until by the plan period (rnms or filter)",
            renew,
        )
        .body::<RenewRequest>(),
    ]
}

// ---------------------------------------------------------------- plans

/// Body of `POST /v1/tariffs` (numbers as JSON values so that a wrong type is reported
/// with its field name).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreatePlan {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    period_days: Option<Value>,
    #[serde(default)]
    price_kopecks: Option<Value>,
    #[serde(default)]
    description: Option<String>,
}

fn whole(field: &str, v: &Option<Value>, errs: &mut Vec<FieldError>, rule: &str) -> Option<u64> {
    match v {
        None | Some(Value::Null) => {
            errs.push(FieldError::new(field, "is required"));
            None
        }
        Some(v) => match v.as_u64() {
            Some(n) => Some(n),
            None => {
                errs.push(FieldError::new(field, format!("{v} is not {rule}")));
                None
            }
        },
    }
}

async fn create(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<CreatePlan>,
) -> ApiResult<(StatusCode, Json<TariffPlan>)> {
    let mut errs = Vec::new();
    let name = body.name.as_deref().map(str::trim).unwrap_or("").to_owned();
    let period = whole("period_days", &body.period_days, &mut errs, "a whole number of days");
    let price = whole("price_kopecks", &body.price_kopecks, &mut errs, "a whole non-negative number of kopecks");
    let description = body.description.unwrap_or_default();
    if description.chars().count() > 1000 {
        errs.push(FieldError::new("description", "must be at most 1000 characters"));
    }
    let plan = TariffPlan {
        name,
        period_days: period.and_then(|p| u32::try_from(p).ok()).unwrap_or(1),
        price_kopecks: price.unwrap_or(0),
        description,
        created_at: Timestamp::now(),
    };
    if let Err(storage::model::ValidationError::Field { field, rule }) = plan.validate() {
        // name and period_days rules live in the model
        if !(field == "period_days" && period.is_none()) {
            errs.insert(0, FieldError::new(field, rule));
        }
    }
    if period.is_some_and(|p| p == 0 || p > 3660) && !errs.iter().any(|e| e.field == "period_days") {
        errs.push(FieldError::new("period_days", "must be between 1 and 3660"));
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    if ctx.shared.store.get_tariff(&plan.name).await?.is_some() {
        return Err(ApiError::conflict("already_exists", format!("tariff plan {:?} already exists", plan.name))
            .with_field("name"));
    }
    let target = plan.name.clone();
    audit::audited(&ctx, &caller, &target, None, Some(serde_json::to_value(&plan).unwrap_or(Value::Null)), async {
        ctx.shared.store.create_tariff(&plan).await.map_err(ApiError::from)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(plan)))
}

/// A list of plans.
#[derive(Debug, Serialize)]
struct PlanList {
    items: Vec<TariffPlan>,
    next: Option<String>,
}

async fn list(State(ctx): State<Ctx>) -> ApiResult<Json<PlanList>> {
    let mut items = ctx.shared.store.list_tariffs().await?;
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(PlanList { items, next: None }))
}

async fn show(State(ctx): State<Ctx>, ApiPath(name): ApiPath<String>) -> ApiResult<Json<TariffPlan>> {
    ctx.shared
        .store
        .get_tariff(&name)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("tariff plan {name:?} does not exist")))
}

// ---------------------------------------------------------------- selection

/// Which registers a bulk call is about: a list of RNMs, or a filter.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Explicit registers.
    #[serde(default)]
    pub rnms: Option<Vec<String>>,
    /// Registers matching a filter.
    #[serde(default)]
    pub filter: Option<FilterInput>,
}

/// A register filter in a request body (at least one field, or `all: true`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterInput {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    owner_inn: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    tariff: Option<String>,
    #[serde(default)]
    paid_until_before: Option<String>,
    /// Every register (must be explicit).
    #[serde(default)]
    all: bool,
}

/// One register that cannot be changed.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterError {
    /// Register (as given).
    pub rnm: String,
    /// Why.
    pub message: String,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

async fn select(ctx: &Ctx, sel: &Selector) -> ApiResult<(Vec<Register>, Vec<RegisterError>)> {
    let store = &ctx.shared.store;
    match (&sel.rnms, &sel.filter) {
        (Some(_), Some(_)) | (None, None) => {
            Err(ApiError::bad_request("invalid_selector", "give exactly one of rnms (a list) or filter")
                .with_field("rnms"))
        }
        (Some(list), None) => {
            if list.is_empty() {
                return Err(ApiError::invalid_param("rnms", "must not be empty"));
            }
            if list.len() > MAX_SELECTED {
                return Err(ApiError::invalid_param("rnms", format!("at most {MAX_SELECTED} registers per call")));
            }
            let mut regs = Vec::new();
            let mut errs = Vec::new();
            let mut seen = HashSet::new();
            for s in list {
                match Rnm::parse(s) {
                    Err(e) => errs.push(RegisterError { rnm: s.clone(), message: e.to_string() }),
                    Ok(rnm) if !seen.insert(rnm.clone()) => {}
                    Ok(rnm) => match store.get_register(&rnm).await? {
                        Some(r) => regs.push(r),
                        None => errs
                            .push(RegisterError { rnm: s.clone(), message: format!("register {rnm} does not exist") }),
                    },
                }
            }
            Ok((regs, errs))
        }
        (None, Some(f)) => {
            let status = match nonempty(&f.status) {
                None => None,
                Some("active") => Some(RegisterStatus::Active),
                Some("suspended") => Some(RegisterStatus::Suspended),
                Some(o) => {
                    return Err(ApiError::invalid_param(
                        "filter.status",
                        format!("{o:?} is not a status (active or suspended)"),
                    ));
                }
            };
            let filter = RegisterFilter {
                status,
                owner_inn: nonempty(&f.owner_inn)
                    .map(|s| Inn::parse(s).map_err(|e| ApiError::invalid_param("filter.owner_inn", e.to_string())))
                    .transpose()?,
                group: nonempty(&f.group).map(str::to_owned),
                tariff: nonempty(&f.tariff).map(str::to_owned),
                paid_until_before: nonempty(&f.paid_until_before)
                    .map(|s| parse_time("filter.paid_until_before", s))
                    .transpose()?,
            };
            if filter == RegisterFilter::default() && !f.all {
                return Err(ApiError::invalid_param(
                    "filter",
                    "is empty: give at least one condition, or all: true to select every register",
                ));
            }
            let mut regs = Vec::new();
            let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
            loop {
                let p = store.list_registers(&filter, page.clone()).await?;
                regs.extend(p.items);
                if regs.len() > MAX_SELECTED {
                    return Err(ApiError::invalid_param(
                        "filter",
                        format!("selects more than {MAX_SELECTED} registers; narrow it"),
                    ));
                }
                match p.next {
                    Some(n) => page.cursor = Some(n),
                    None => break,
                }
            }
            Ok((regs, Vec::new()))
        }
    }
}

// ---------------------------------------------------------------- bulk apply

/// Answer of assign and renew.
#[derive(Debug, Default, Serialize)]
pub struct BulkOutcome {
    /// Registers selected.
    pub matched: u64,
    /// Registers changed (or that would be, with dry_run).
    pub changed: u64,
    /// Registers already as requested.
    pub unchanged: u64,
    /// Registers in error (then nothing was applied).
    pub errors: Vec<RegisterError>,
    /// Nothing was written.
    pub dry_run: bool,
    /// The changed registers' billing after the call (at most 1,000 listed).
    pub registers: Vec<Value>,
}

fn billing(r: &Register) -> Value {
    json!({
        "rnm": r.rnm,
        "tariff": r.tariff,
        "next_tariff": r.next_tariff,
        "paid_until": r.paid_until,
    })
}

async fn apply_bulk(
    ctx: &Ctx,
    caller: &Caller,
    matched: usize,
    pairs: Vec<(Register, Register)>,
    errors: Vec<RegisterError>,
    dry_run: bool,
    extra: Value,
) -> ApiResult<Json<BulkOutcome>> {
    let mut out = BulkOutcome { matched: matched as u64, dry_run, ..BulkOutcome::default() };
    if !errors.is_empty() {
        let first = &errors[0];
        let fe: Vec<FieldError> =
            errors.iter().map(|e| FieldError::new("rnm", format!("{}: {}", e.rnm, e.message))).collect();
        let mut err = ApiError::validation(fe);
        err.code = "invalid_registers";
        err.message = format!(
            "{} of the selected registers cannot be changed; nothing was applied (first: {}: {})",
            errors.len(),
            first.rnm,
            first.message
        );
        return Err(err.with_extra("register_errors", serde_json::to_value(&errors).unwrap_or(Value::Null)));
    }
    let now = Timestamp::now();
    let mut changed = Vec::new();
    for (before, mut after) in pairs {
        if after == before {
            out.unchanged += 1;
            continue;
        }
        after.version = before.version + 1;
        after.updated_at = now.max(before.updated_at);
        changed.push((before, after));
    }
    out.changed = changed.len() as u64;
    out.registers = changed.iter().take(MAX_LISTED).map(|(_, a)| billing(a)).collect();
    if dry_run || changed.is_empty() {
        return Ok(Json(out));
    }
    for chunk in changed.chunks(CHUNK) {
        let diffs: Vec<Value> = chunk
            .iter()
            .map(|(b, a)| {
                let (db, da) = diff(
                    &serde_json::to_value(b).unwrap_or(Value::Null),
                    &serde_json::to_value(a).unwrap_or(Value::Null),
                );
                json!({"rnm": a.rnm, "before": db, "after": da})
            })
            .collect();
        let target = if chunk.len() == 1 { chunk[0].1.rnm.to_string() } else { format!("{} registers", chunk.len()) };
        let regs: Vec<Register> = chunk.iter().map(|(_, a)| a.clone()).collect();
        let expected: Vec<Option<u64>> = chunk.iter().map(|(b, _)| Some(b.version)).collect();
        let written = regs.clone();
        audit::audited(ctx, caller, &target, None, Some(json!({"request": extra, "changes": diffs})), async {
            ctx.shared.store.put_registers(written, expected).await.map_err(ApiError::from)
        })
        .await?;
        for r in &regs {
            ctx.shared.data.apply_register(r);
        }
    }
    Ok(Json(out))
}

/// Body of assign.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AssignRequest {
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    rnms: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<FilterInput>,
    /// `now` (default) or `period_end`.
    #[serde(default)]
    effective: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

async fn assign(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> ApiResult<Json<BulkOutcome>> {
    let Some(plan_name) = nonempty(&req.plan).map(str::to_owned) else {
        return Err(ApiError::validation(vec![FieldError::new("plan", "is required")]));
    };
    let at_period_end = match nonempty(&req.effective).unwrap_or("now") {
        "now" => false,
        "period_end" | "period-end" => true,
        other => {
            return Err(ApiError::validation(vec![FieldError::new(
                "effective",
                format!("{other:?} is not one of now, period_end"),
            )]));
        }
    };
    let Some(plan) = ctx.shared.store.get_tariff(&plan_name).await? else {
        return Err(ApiError::validation(vec![FieldError::new("plan", format!("unknown tariff plan {plan_name:?}"))]));
    };
    let selector = Selector { rnms: req.rnms, filter: req.filter };
    let (regs, errors) = select(&ctx, &selector).await?;
    let now = Timestamp::now();
    let matched = regs.len();
    let pairs = regs
        .into_iter()
        .map(|before| {
            let mut after = before.clone();
            let no_period = before.paid_until.is_none();
            if at_period_end && !no_period {
                after.next_tariff = (before.tariff.as_deref() != Some(plan.name.as_str())).then(|| plan.name.clone());
            } else {
                after.tariff = Some(plan.name.clone());
                after.next_tariff = None;
                if no_period {
                    after.paid_until = Some(now.plus(plan.period()));
                }
            }
            (before, after)
        })
        .collect();
    let extra = json!({
        "plan": plan.name,
        "effective": if at_period_end { "period_end" } else { "now" },
    });
    apply_bulk(&ctx, &caller, matched, pairs, errors, req.dry_run, extra).await
}

/// Body of renew.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RenewRequest {
    #[serde(default)]
    rnms: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<FilterInput>,
    /// Periods to add (default 1, at most 120).
    #[serde(default)]
    periods: Option<Value>,
    #[serde(default)]
    dry_run: bool,
}

async fn renew(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<RenewRequest>,
) -> ApiResult<Json<BulkOutcome>> {
    let periods = match &req.periods {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=120) => n as u32,
            _ => {
                return Err(ApiError::validation(vec![FieldError::new(
                    "periods",
                    format!("{v} is not a whole number between 1 and 120"),
                )]));
            }
        },
    };
    let plans: std::collections::HashMap<String, TariffPlan> =
        ctx.shared.store.list_tariffs().await?.into_iter().map(|p| (p.name.clone(), p)).collect();
    let selector = Selector { rnms: req.rnms, filter: req.filter };
    let (regs, mut errors) = select(&ctx, &selector).await?;
    let now = Timestamp::now();
    let matched = regs.len();
    let mut pairs = Vec::with_capacity(regs.len());
    for before in regs {
        let name = before.next_tariff.clone().or_else(|| before.tariff.clone());
        let Some(plan) = name.as_ref().and_then(|n| plans.get(n)) else {
            errors.push(RegisterError {
                rnm: before.rnm.to_string(),
                message: match name {
                    None => "has no tariff plan; assign one first (tariffs assign)".into(),
                    Some(n) => format!("its tariff plan {n:?} does not exist"),
                },
            });
            continue;
        };
        let mut after = before.clone();
        let base = before.paid_until.map_or(now, |p| p.max(now));
        let mut until = base;
        for _ in 0..periods {
            until = until.plus(plan.period());
        }
        after.paid_until = Some(until);
        after.tariff = Some(plan.name.clone());
        after.next_tariff = None;
        pairs.push((before, after));
    }
    let extra = json!({"periods": periods});
    apply_bulk(&ctx, &caller, matched, pairs, errors, req.dry_run, extra).await
}
