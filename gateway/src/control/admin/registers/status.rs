//! Suspend, resume, replace the FN, set the time zone.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use ffd::FnNumber;
use serde::Deserialize;
use serde_json::Value;
use storage::Timestamp;
use storage::model::RegisterStatus;

use super::input::{apply_to_index, clear_backlog, present, replace, time_zone_rule};
use super::view::{RegisterView, audit_value, load, parse_rnm, view, write_one};
use crate::control::admin::auth::Caller;
use crate::control::admin::error::{ApiError, ApiJson, ApiPath, ApiResult, FieldError};
use crate::control::admin::{Ctx, audit, optional_json};

/// Optional body of suspend/resume.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusChange {
    /// Why (recorded in the audit log).
    #[serde(default)]
    reason: Option<String>,
}

pub(super) async fn set_status(
    ctx: Ctx,
    caller: Caller,
    rnm: String,
    body: Bytes,
    status: RegisterStatus,
) -> ApiResult<Json<RegisterView>> {
    let rnm = parse_rnm(&rnm)?;
    let change: StatusChange = optional_json(&body)?;
    let before = load(&ctx, &rnm).await?;
    let mut after = before.clone();
    after.status = status;
    if before.status != status {
        after.version += 1;
        after.updated_at = Timestamp::now().max(before.updated_at);
    }
    let target = rnm.to_string();
    let mut after_json = audit_value(&after);
    if let (Some(r), Some(o)) = (change.reason, after_json.as_object_mut()) {
        o.insert("reason".into(), Value::from(r));
    }
    let expected = Some(before.version);
    let stored = after.clone();
    let changed = before.status != status;
    audit::audited(&ctx, &caller, &target, Some(audit_value(&before)), Some(after_json), async {
        if changed {
            ctx.shared.store.put_registers(vec![stored], vec![expected]).await?;
        }
        Ok(())
    })
    .await?;
    apply_to_index(&ctx, std::slice::from_ref(&after));
    Ok(Json(view(&ctx, after, None)))
}

pub(super) async fn suspend(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiPath(rnm): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<RegisterView>> {
    set_status(ctx, caller, rnm, body, RegisterStatus::Suspended).await
}

pub(super) async fn resume(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiPath(rnm): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<RegisterView>> {
    set_status(ctx, caller, rnm, body, RegisterStatus::Active).await
}

/// Body of replace-fn.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplaceFn {
    /// The new FN (16 digits).
    #[serde(default)]
    fn_number: Option<String>,
    /// When the replacement happened (default now; not in the future).
    #[serde(default)]
    at: Option<String>,
}

pub(super) async fn replace_fn(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiPath(rnm): ApiPath<String>,
    ApiJson(body): ApiJson<ReplaceFn>,
) -> ApiResult<Json<RegisterView>> {
    let rnm = parse_rnm(&rnm)?;
    let mut errs = Vec::new();
    let new_fn = match present(&body.fn_number) {
        None => {
            errs.push(FieldError::new("fn_number", "is required"));
            None
        }
        Some(s) => FnNumber::parse_strict(s).map_err(|e| errs.push(FieldError::new("fn_number", e.to_string()))).ok(),
    };
    let now = Timestamp::now();
    let at = match present(&body.at) {
        None => Some(now),
        Some(s) => match Timestamp::parse_rfc3339(s) {
            Ok(t) if t > now.plus(Duration::from_secs(60)) => {
                errs.push(FieldError::new("at", "must not be in the future"));
                None
            }
            Ok(t) => Some(t),
            Err(_) => {
                errs.push(FieldError::new("at", format!("{s:?} is not an RFC 3339 time")));
                None
            }
        },
    };
    let (Some(new_fn), Some(at), true) = (new_fn, at, errs.is_empty()) else {
        return Err(ApiError::validation(errs));
    };
    let before = load(&ctx, &rnm).await?;
    if before.fn_number == new_fn {
        return Err(ApiError::validation(vec![FieldError::new(
            "fn_number",
            format!("FN {new_fn} is already the current FN of register {rnm}"),
        )]));
    }
    if before.all_fns().any(|f| *f == new_fn) {
        return Err(ApiError::validation(vec![FieldError::new(
            "fn_number",
            format!("FN {new_fn} was already replaced on register {rnm}; a replaced FN cannot become current again"),
        )]));
    }
    if let Some(owner) = ctx.shared.store.register_by_fn(&new_fn).await? {
        return Err(ApiError::validation(vec![FieldError::new(
            "fn_number",
            format!("FN {new_fn} already belongs to register {}", owner.rnm),
        )]));
    }
    let mut after = before.clone();
    replace(&mut after, new_fn, at);
    after.version += 1;
    after.updated_at = now.max(before.updated_at);
    let after = write_one(&ctx, &caller, Some(&before), after).await?;
    clear_backlog(&ctx, vec![new_fn]).await;
    Ok(Json(view(&ctx, after, None)))
}

/// Body of set-time-zone.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TimeZoneChange {
    /// IANA time zone (e.g. `Asia/Vladivostok`); empty or null: back to
    /// `[reports] default_time_zone`.
    #[serde(default)]
    time_zone: Option<String>,
}

pub(super) async fn set_time_zone(
    State(ctx): State<Ctx>,
    Extension(caller): Extension<Caller>,
    ApiPath(rnm): ApiPath<String>,
    ApiJson(body): ApiJson<TimeZoneChange>,
) -> ApiResult<Json<RegisterView>> {
    let rnm = parse_rnm(&rnm)?;
    let zone = present(&body.time_zone).map(str::to_owned);
    if let Some(z) = &zone {
        time_zone_rule(z).map_err(|m| ApiError::invalid_param("time_zone", m))?;
    }
    let before = load(&ctx, &rnm).await?;
    if before.time_zone == zone {
        return Ok(Json(view(&ctx, before, None)));
    }
    let mut after = before.clone();
    after.time_zone = zone;
    after.version += 1;
    after.updated_at = Timestamp::now().max(before.updated_at);
    let after = write_one(&ctx, &caller, Some(&before), after).await?;
    Ok(Json(view(&ctx, after, None)))
}
